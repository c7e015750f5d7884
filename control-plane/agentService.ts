// The agent's stream: the first message registers or resumes a session; the
// rest are routed to that session. A refusal is a message (`refused`) and the
// end of the stream, so the agent can tell the user why.
import { AgentMessage, TokenKind } from '../protocol';
import { ApiError, denied } from './errors';
import type { Access, Principal } from './auth/access';
import type { Registry } from './registry';
import type { AgentCall, AgentSession } from './session';
import type { Logger } from '../lib/logger';

export function agentServiceHandlers(registry: Registry, access: Access, logger: Logger) {
  /** Only an agent credential connects an agent, and only as the machine it was issued for. */
  function checkAgent(p: Principal, machine: string): void {
    if (p.kind !== TokenKind.AGENT) {
      throw denied('this is not an agent credential: enroll the agent (`cmdop agents enroll`, then `cmdop agent --enroll-token`)');
    }
    if (p.machine !== machine) throw denied(`this credential is for machine ${p.machine}, not ${machine}`);
  }

  /** A refusal is a `refused` message and the end of the stream, so the agent can say why; refused credentials are audited. */
  function refuser(call: AgentCall, what: string, action: string) {
    const peer = call.getPeer();
    return (e: unknown, p?: Principal) => {
      const err = e instanceof ApiError ? e : new ApiError('INVALID_ARGUMENT', String(e));
      logger.warn({ peer, code: err.code }, `${what} refused: ${err.message}`);
      if (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED') {
        access.audit(p, { action, ok: false, detail: err.message, peer });
      }
      call.write({ msg: { $case: 'refused', value: { code: err.code, message: err.message } } });
      call.end();
    };
  }

  /** However the stream goes away, `lost` hears why once per event. */
  function onGone(call: AgentCall, what: string, lost: (reason: string) => void): void {
    call.on('end', () => {
      lost(`the agent closed its ${what}`);
      call.end();
    });
    call.on('cancelled', () => lost(`the agent's ${what} connection was lost`));
    call.on('error', (e) => lost(`agent ${what} error: ${e.message}`));
  }

  return {
    connect(call: AgentCall): void {
      let session: AgentSession | undefined;
      let starting = false;
      // Messages that arrive while the first one is being authenticated.
      const early: AgentMessage[] = [];
      const peer = call.getPeer();
      const refuse = refuser(call, 'agent', 'agent-connect');
      call.on('data', (m: AgentMessage) => {
        if (session) return session.onMessage(m);
        if (starting) return void early.push(m);
        starting = true;
        let principal: Principal | undefined;
        access
          .authenticate(call.metadata)
          .then((p) => {
            principal = p;
            if (m.msg?.$case === 'register') {
              checkAgent(p, m.msg.value.name);
              session = registry.register(call, m.msg.value);
            } else if (m.msg?.$case === 'resume') {
              const name = registry.sessionName(m.msg.value.sessionId);
              if (name) checkAgent(p, name);
              session = registry.resume(call, m.msg.value);
            } else {
              throw new ApiError('INVALID_ARGUMENT', 'the first message on the agent stream must be register or resume');
            }
            if (m.msg.$case === 'register') access.audit(p, { action: 'agent-register', machine: p.machine, peer });
            for (const e of early.splice(0)) session.onMessage(e);
          })
          .catch((e) => refuse(e, principal));
      });
      onGone(call, 'stream', (reason) => session?.streamLost(call, reason));
    },

    /** The session's file traffic on a connection of its own; its first message is bulk_hello (proto: AgentService.Bulk). */
    bulk(call: AgentCall): void {
      let session: AgentSession | undefined;
      let starting = false;
      const refuse = refuser(call, 'agent file stream', 'agent-bulk');
      call.on('data', (m: AgentMessage) => {
        if (session) return session.onBulkMessage(m);
        // The agent waits for bulk_ready before sending more: anything else first is refused.
        if (starting) return;
        starting = true;
        let principal: Principal | undefined;
        access
          .authenticate(call.metadata)
          .then((p) => {
            principal = p;
            if (m.msg?.$case !== 'bulkHello') throw new ApiError('INVALID_ARGUMENT', 'the first message on the bulk stream must be bulk_hello');
            const s = registry.bulkSession(m.msg.value);
            checkAgent(p, s.name);
            session = s;
            s.bindBulk(call);
          })
          .catch((e) => refuse(e, principal));
      });
      onGone(call, 'file stream', (reason) => session?.bulkLost(call, reason));
    },
  };
}
