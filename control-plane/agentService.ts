// The agent's stream: the first message registers or resumes a session; the
// rest are routed to that session. A refusal is a message (`refused`) and the
// end of the stream, so the agent can tell the user why.
import { AgentMessage } from '../protocol';
import { ApiError } from './errors';
import type { Registry } from './registry';
import type { AgentCall, AgentSession } from './session';
import type { Logger } from '../lib/logger';

export function agentServiceHandlers(registry: Registry, logger: Logger) {
  return {
    connect(call: AgentCall): void {
      let session: AgentSession | undefined;
      const peer = call.getPeer();
      call.on('data', (m: AgentMessage) => {
        if (session) {
          session.onMessage(m);
          return;
        }
        try {
          if (m.msg?.$case === 'register') session = registry.register(call, m.msg.value);
          else if (m.msg?.$case === 'resume') session = registry.resume(call, m.msg.value);
          else throw new ApiError('INVALID_ARGUMENT', 'the first message on the agent stream must be register or resume');
        } catch (e) {
          const err = e instanceof ApiError ? e : new ApiError('INVALID_ARGUMENT', String(e));
          logger.warn({ peer, code: err.code }, `agent refused: ${err.message}`);
          call.write({ msg: { $case: 'refused', value: { code: err.code, message: err.message } } });
          call.end();
        }
      });
      const lost = (reason: string) => session?.streamLost(call, reason);
      call.on('end', () => {
        lost('the agent closed its stream');
        call.end();
      });
      call.on('cancelled', () => lost('the agent connection was lost'));
      call.on('error', (e) => lost(`agent stream error: ${e.message}`));
    },
  };
}
