// AgentService over gRPC: Connect and Bulk, each authenticated as it opens
// (transports/grpc/streams.ts), then served by the core (core/agentLink.ts).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AgentMessage, ControlMessage, Encoded } from '../../../protocol';
import type { Access } from '../../core/access';
import type { AgentLinks } from '../../core/agentLink';
import { agentStream, callContext, feed, whenAuthenticated } from './streams';

type AgentCall = ServerDuplexStream<AgentMessage, ControlMessage | Encoded>;

export function agentServiceHandlers(links: AgentLinks, access: Access) {
  // A refusal is the link's to audit and answer (links.refuse), below.
  const auth = { authenticate: (call: Parameters<typeof callContext>[1]) => callContext(access, call), refused: () => {} };
  const serve = (call: AgentCall, what: string, action: string, open: 'connect' | 'bulk') => {
    const stream = agentStream(call as ServerDuplexStream<unknown, ControlMessage | Encoded>);
    whenAuthenticated(
      auth,
      call,
      (ctx) => feed(call, links[open](ctx, stream), `agent's ${what}`),
      (e) => links.refuse(stream, what === 'stream' ? 'agent' : 'agent file stream', action, call.getPeer(), e),
    );
  };
  return {
    connect: (call: AgentCall) => serve(call, 'stream', 'agent-connect', 'connect'),
    /** The session's file traffic on a connection of its own; its first message is bulk_hello (proto: AgentService.Bulk). */
    bulk: (call: AgentCall) => serve(call, 'file stream', 'agent-bulk', 'bulk'),
  };
}
