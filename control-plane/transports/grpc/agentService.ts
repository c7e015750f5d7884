// The agent's stream: the first message registers or resumes a session; the
// rest are routed to that session. A refusal is a message (`refused`) and the
// end of the stream with its status, so the agent can tell the user why.
//
// The credential is checked from the call's metadata the moment a stream
// opens, before any message is read: a stream with a bad token costs one
// lookup and is gone, instead of sitting open until it sends something
// (10,000 such streams once held ~100 MB). Nothing is read until then
// because no 'data' listener exists yet: grpc-js reads a stream only as its
// consumer asks, so what the client sends early waits in HTTP/2 flow control.
import { AgentMessage, TokenKind } from '../../../protocol';
import { ApiError, denied } from '../../core/errors';
import type { Access, Principal } from '../../core/access';
import type { Registry } from '../../core/registry';
import type { AgentCall, AgentSession } from '../../core/session';
import type { Logger } from '../../../lib/logger';

export function agentServiceHandlers(registry: Registry, access: Access, logger: Logger) {
  /** Only an agent credential connects an agent. */
  function checkAgentKind(p: Principal): void {
    if (p.kind !== TokenKind.AGENT) {
      throw denied('this is not an agent credential: enroll the agent (`cmdop agents enroll`, then `cmdop agent --enroll-token`)');
    }
  }
  /** ... and only as the machine it was issued for. */
  function checkMachine(p: Principal, machine: string): void {
    if (p.machine !== machine) throw denied(`this credential is for machine ${p.machine}, not ${machine}`);
  }

  /**
   * A refusal is a `refused` message, then the stream ends with the refusal's
   * status (never OK), so the agent can say why; refused credentials are audited.
   */
  function refuser(call: AgentCall, what: string, action: string) {
    const peer = call.getPeer();
    let done = false;
    return (e: unknown, p?: Principal) => {
      if (done) return;
      done = true;
      const err = e instanceof ApiError ? e : new ApiError('INVALID_ARGUMENT', String(e));
      logger.warn({ peer, code: err.code }, `${what} refused: ${err.message}`);
      if (err.code === 'UNAUTHENTICATED' || err.code === 'PERMISSION_DENIED') {
        access.audit(p, { action, ok: false, detail: err.message, peer });
      }
      if (call.cancelled || call.destroyed) return;
      call.write({ msg: { $case: 'refused', value: { code: err.code, message: err.message } } });
      call.emit('error', err.toStatus());
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

  /** Authenticates an agent stream as it opens; `start` runs only for an agent credential. */
  function authenticated(call: AgentCall, refuse: (e: unknown, p?: Principal) => void, start: (p: Principal) => void): void {
    access
      .authenticate(call.metadata)
      .then((p) => {
        if (call.cancelled || call.destroyed) return;
        try {
          checkAgentKind(p);
          start(p);
        } catch (e) {
          refuse(e, p);
        }
      })
      .catch((e) => refuse(e));
  }

  /**
   * Revoking the credential the session's agent last presented (`cmdop
   * tokens revoke`, enrolling the machine again, signing the desktop app
   * out) ends the session at once, in whatever state it is: the agent could
   * never resume it, so a grace period would only keep its clients waiting.
   */
  function watchCredential(session: AgentSession, p: Principal): void {
    session.setCredentialWatch(
      access.track(p, session.name, (reason) => {
        const why = `credential revoked: ${reason}`;
        access.audit(p, { action: 'agent-revoked', machine: session.name, detail: `session ${session.sessionId} ended (${why})` });
        session.credentialRevoked(why);
      }),
    );
  }

  return {
    connect(call: AgentCall): void {
      let session: AgentSession | undefined;
      const peer = call.getPeer();
      const refuse = refuser(call, 'agent', 'agent-connect');
      onGone(call, 'stream', (reason) => session?.streamLost(call, reason));
      authenticated(call, refuse, (principal) => {
        let first = true;
        call.on('data', (m: AgentMessage) => {
          if (session) return session.onMessage(m);
          // The agent sends nothing after register/resume until it is answered.
          if (!first) return;
          first = false;
          try {
            if (m.msg?.$case === 'register') {
              checkMachine(principal, m.msg.value.name);
              session = registry.register(call, m.msg.value);
              access.audit(principal, { action: 'agent-register', machine: principal.machine, peer });
            } else if (m.msg?.$case === 'resume') {
              const name = registry.sessionName(m.msg.value.sessionId);
              if (name) checkMachine(principal, name);
              session = registry.resume(call, m.msg.value);
            } else {
              throw new ApiError('INVALID_ARGUMENT', 'the first message on the agent stream must be register or resume');
            }
            watchCredential(session, principal);
          } catch (e) {
            refuse(e, principal);
          }
        });
      });
    },

    /** The session's file traffic on a connection of its own; its first message is bulk_hello (proto: AgentService.Bulk). */
    bulk(call: AgentCall): void {
      let session: AgentSession | undefined;
      const refuse = refuser(call, 'agent file stream', 'agent-bulk');
      onGone(call, 'file stream', (reason) => session?.bulkLost(call, reason));
      authenticated(call, refuse, (principal) => {
        let first = true;
        call.on('data', (m: AgentMessage) => {
          if (session) return session.onBulkMessage(m);
          // The agent waits for bulk_ready before sending more: anything else first is refused.
          if (!first) return;
          first = false;
          try {
            if (m.msg?.$case !== 'bulkHello') throw new ApiError('INVALID_ARGUMENT', 'the first message on the bulk stream must be bulk_hello');
            const s = registry.bulkSession(m.msg.value);
            checkMachine(principal, s.name);
            session = s;
            s.bindBulk(call);
          } catch (e) {
            refuse(e, principal);
          }
        });
      });
    },
  };
}
