// An agent's streams, whatever carries them: the first message on Connect
// registers or resumes a session, the rest are routed to it; the first on
// Bulk binds the session's file stream. A refusal is a `refused` message,
// then the end of the stream with the refusal's error (never a normal end),
// so the agent can tell the user why; refused credentials are audited.
import { AgentMessage, TokenKind } from '../../protocol';
import type { Access, Principal } from './access';
import { ApiError, asApiError, denied, isRefusal } from './errors';
import type { AgentStream, CallContext, Inbound } from './ports';
import type { Registry } from './registry';
import type { AgentSession } from './session';
import type { Logger } from '../../lib/logger';

/** Messages held while a resume is looked up, at most. */
const MAX_EARLY = 64;

export class AgentLinks {
  constructor(
    private readonly registry: Registry,
    private readonly access: Access,
    private readonly logger: Logger,
  ) {}

  /**
   * Refuses an agent stream: a `refused` message, then the stream ends with
   * the error. Also what a transport calls when the credential itself is
   * refused before the core sees the call (`p` unknown then).
   */
  refuse(stream: AgentStream, what: string, action: string, peer: string, e: unknown, p?: Principal): void {
    const err = asApiError(e);
    this.logger.warn({ peer, code: err.code }, `${what} refused: ${err.message}`);
    if (isRefusal(err)) this.access.audit(p, { action, ok: false, detail: err.message, peer });
    if (stream.closed) return;
    stream.write({ msg: { $case: 'refused', value: { code: err.code, message: err.message } } });
    stream.fail(err);
  }

  /** A stream just opened: refused at once unless its credential is an agent's; `refuse` ends it later. */
  private opened(ctx: CallContext, stream: AgentStream, what: string, action: string) {
    const state = {
      refused: false,
      refuse: (e: unknown) => {
        state.refused = true;
        this.refuse(stream, what, action, ctx.peer, e, ctx.principal);
      },
    };
    try {
      checkAgentKind(ctx.principal);
    } catch (e) {
      state.refuse(e);
    }
    return state;
  }

  /** The agent's main stream (AgentService.Connect). */
  connect(ctx: CallContext, stream: AgentStream): Inbound<AgentMessage> {
    const { principal, peer } = ctx;
    let session: AgentSession | undefined;
    let first = true;
    const opened = this.opened(ctx, stream, 'agent', 'agent-connect');
    const refuse = opened.refuse;
    /** What arrives while a resume is being looked up (the agent waits for `resumed`, but a late heartbeat may come). */
    const early: AgentMessage[] = [];
    const started = (s: AgentSession) => {
      session = s;
      this.watchCredential(s, principal);
      for (const m of early.splice(0)) s.onMessage(m);
    };
    return {
      message: (m) => {
        if (session) return session.onMessage(m);
        if (opened.refused) return;
        if (!first) {
          if (early.length < MAX_EARLY) early.push(m);
          return;
        }
        first = false;
        try {
          if (m.msg?.$case === 'register') {
            checkMachine(principal, m.msg.value.name);
            started(this.registry.register(stream, m.msg.value));
            this.access.audit(principal, { action: 'agent-register', machine: principal.machine, peer });
          } else if (m.msg?.$case === 'resume') {
            const name = this.registry.sessionName(m.msg.value.sessionId);
            if (name) checkMachine(principal, name);
            this.registry.resume(stream, m.msg.value).then(started, refuse);
          } else {
            throw new ApiError('INVALID_ARGUMENT', 'the first message on the agent stream must be register or resume');
          }
        } catch (e) {
          refuse(e);
        }
      },
      end: () => {
        session?.streamLost(stream, session.lostReason('the agent closed its stream'));
        if (!stream.closed) stream.end();
      },
      gone: (reason) => session?.streamLost(stream, session.lostReason(reason)),
    };
  }

  /** The session's file traffic on a connection of its own (AgentService.Bulk); its first message is bulk_hello. */
  bulk(ctx: CallContext, stream: AgentStream): Inbound<AgentMessage> {
    const { principal } = ctx;
    let session: AgentSession | undefined;
    let first = true;
    const opened = this.opened(ctx, stream, 'agent file stream', 'agent-bulk');
    const refuse = opened.refuse;
    return {
      message: (m) => {
        if (session) return session.onBulkMessage(m);
        // The agent waits for bulk_ready before sending more: anything else first is refused.
        if (!first || opened.refused) return;
        first = false;
        try {
          if (m.msg?.$case !== 'bulkHello') throw new ApiError('INVALID_ARGUMENT', 'the first message on the bulk stream must be bulk_hello');
          const s = this.registry.bulkSession(m.msg.value);
          checkMachine(principal, s.name);
          session = s;
          s.bindBulk(stream);
        } catch (e) {
          refuse(e);
        }
      },
      end: () => {
        session?.bulkLost(stream, 'the agent closed its file stream');
        if (!stream.closed) stream.end();
      },
      gone: (reason) => session?.bulkLost(stream, reason),
    };
  }

  /**
   * Revoking the credential the session's agent last presented (`cmdop
   * tokens revoke`, enrolling the machine again, signing the desktop app
   * out) ends the session at once, in whatever state it is: the agent could
   * never resume it, so a grace period would only keep its clients waiting.
   */
  private watchCredential(session: AgentSession, p: Principal): void {
    session.setCredentialWatch(
      this.access.track(p, session.name, (reason) => {
        const why = `credential revoked: ${reason}`;
        this.access.audit(p, { action: 'agent-revoked', machine: session.name, detail: `session ${session.sessionId} ended (${why})` });
        session.credentialRevoked(why);
      }),
    );
  }
}

/** Only an agent credential connects an agent ... */
function checkAgentKind(p: Principal): void {
  if (p.kind !== TokenKind.AGENT) {
    throw denied('this is not an agent credential: enroll the agent (`cmdop agents enroll`, then `cmdop agent --enroll-token`)');
  }
}

/** ... and only as the machine it was issued for. */
function checkMachine(p: Principal, machine: string): void {
  if (p.machine !== machine) throw denied(`this credential is for machine ${p.machine}, not ${machine}`);
}
