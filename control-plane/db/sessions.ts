// The agents the control plane has seen, their sessions, every session state
// transition with its reason, and what a fresh process needs to take a
// session over (its name, the hash of its resume token, its grace deadline,
// its terminals' specs). The async twin of control-plane/store.ts, on either
// engine.
import type { Kysely, Selectable } from 'kysely';
import { Capabilities, SessionState, TerminalSpec } from '../../protocol';
import { textOrder, type Db, type Engine } from './open';
import type { Database, SessionsTable } from './schema';

export interface AgentRow {
  agentId: string;
  name: string;
  capabilities: Capabilities;
  firstSeenMs: number;
  lastSeenMs: number;
}

export interface SessionRow {
  sessionId: string;
  agentId: string;
  state: SessionState;
  reason: string;
  createdMs: number;
  updatedMs: number;
}

/** A live session as a restarted control plane takes it over. */
export interface OpenSessionRow extends SessionRow {
  name: string;
  /** SHA-256 of the resume token (the token itself is never stored). */
  resumeHash: Buffer;
  deadlineMs: number;
}

/** A terminal of a live session, as a restarted control plane rebuilds its relay. */
export interface TerminalRow {
  sessionId: string;
  terminalId: string;
  spec: TerminalSpec;
  createdMs: number;
  cols: number;
  rows: number;
  /** Operators attached when it was last written: a restart waits for them to come back. */
  operators: number;
}

export interface TransitionRow {
  sessionId: string;
  from: SessionState;
  to: SessionState;
  reason: string;
  atMs: number;
}

export class SessionsRepo {
  private readonly q: Kysely<Database>;
  private readonly engine: Engine;

  constructor(db: Db) {
    this.q = db.kysely;
    this.engine = db.engine;
  }

  async upsertAgent(agentId: string, name: string, capabilities: Capabilities): Promise<void> {
    const now = Date.now();
    const caps = JSON.stringify(capabilities);
    await this.q
      .insertInto('agents')
      .values({ agent_id: agentId, name, capabilities: caps, first_seen_ms: now, last_seen_ms: now })
      .onConflict((oc) => oc.column('agent_id').doUpdateSet({ name, capabilities: caps, last_seen_ms: now }))
      .execute();
  }

  async touchAgent(agentId: string): Promise<void> {
    await this.q.updateTable('agents').set({ last_seen_ms: Date.now() }).where('agent_id', '=', agentId).execute();
  }

  async agents(): Promise<AgentRow[]> {
    const rows = await this.q.selectFrom('agents').selectAll().orderBy(textOrder(this.engine, 'name')).execute();
    return rows.map((r) => ({
      agentId: r.agent_id,
      name: r.name,
      capabilities: Capabilities.fromPartial(JSON.parse(r.capabilities)),
      firstSeenMs: r.first_seen_ms,
      lastSeenMs: r.last_seen_ms,
    }));
  }

  /** The session and its first transition (from SESSION_STATE_UNSPECIFIED), together. */
  async createSession(sessionId: string, agentId: string, name: string, resumeHash: Buffer, state: SessionState, reason: string): Promise<void> {
    const now = Date.now();
    await this.q.transaction().execute(async (tx) => {
      await tx
        .insertInto('sessions')
        .values({ session_id: sessionId, agent_id: agentId, state, reason, created_ms: now, updated_ms: now, name, resume_hash: resumeHash })
        .execute();
      await tx
        .insertInto('session_transitions')
        .values({ session_id: sessionId, from_state: SessionState.SESSION_STATE_UNSPECIFIED, to_state: state, reason, at_ms: now })
        .execute();
    });
  }

  /** `deadlineMs`: when GRACE_PERIOD or BACKGROUND runs out (0 otherwise); an ended session's terminals are forgotten. */
  async transition(sessionId: string, from: SessionState, to: SessionState, reason: string, deadlineMs = 0): Promise<void> {
    const now = Date.now();
    await this.q.transaction().execute(async (tx) => {
      await tx
        .updateTable('sessions')
        .set({ state: to, reason, updated_ms: now, deadline_ms: deadlineMs })
        .where('session_id', '=', sessionId)
        .execute();
      await tx.insertInto('session_transitions').values({ session_id: sessionId, from_state: from, to_state: to, reason, at_ms: now }).execute();
      if (to === SessionState.DISCONNECTED) await tx.deleteFrom('terminals').where('session_id', '=', sessionId).execute();
    });
  }

  /** Sessions not DISCONNECTED: what a control plane starting up takes over. */
  async openSessions(): Promise<OpenSessionRow[]> {
    const rows = await this.q.selectFrom('sessions').selectAll().where('state', '!=', SessionState.DISCONNECTED).execute();
    return rows.map((r) => ({
      ...toSessionRow(r),
      name: r.name,
      resumeHash: r.resume_hash ?? Buffer.alloc(0),
      deadlineMs: r.deadline_ms,
    }));
  }

  async putTerminal(t: TerminalRow): Promise<void> {
    await this.q
      .insertInto('terminals')
      .values({
        session_id: t.sessionId,
        terminal_id: t.terminalId,
        spec: Buffer.from(TerminalSpec.encode(t.spec).finish()),
        created_ms: t.createdMs,
        cols: t.cols,
        rows: t.rows,
        operators: t.operators,
      })
      .onConflict((oc) => oc.columns(['session_id', 'terminal_id']).doUpdateSet({ cols: t.cols, rows: t.rows, operators: t.operators }))
      .execute();
  }

  async deleteTerminal(sessionId: string, terminalId: string): Promise<void> {
    await this.q.deleteFrom('terminals').where('session_id', '=', sessionId).where('terminal_id', '=', terminalId).execute();
  }

  async terminalsOf(sessionId: string): Promise<TerminalRow[]> {
    const rows = await this.q.selectFrom('terminals').selectAll().where('session_id', '=', sessionId).orderBy('created_ms').orderBy('terminal_id').execute();
    return rows.map((r) => ({
      sessionId: r.session_id,
      terminalId: r.terminal_id,
      spec: TerminalSpec.decode(r.spec),
      createdMs: r.created_ms,
      cols: r.cols,
      rows: r.rows,
      operators: r.operators,
    }));
  }

  /** The newest session of every agent (what `cmdop machines` shows for agents not connected now). */
  async latestSessions(): Promise<SessionRow[]> {
    const rows = await this.q
      .selectFrom('sessions as s')
      .selectAll('s')
      .where(({ eb, selectFrom }) =>
        eb(
          's.created_ms',
          '=',
          selectFrom('sessions as n')
            .select(({ fn }) => fn.max('n.created_ms').as('m'))
            .whereRef('n.agent_id', '=', 's.agent_id'),
        ),
      )
      .execute();
    return rows.map(toSessionRow);
  }

  async session(sessionId: string): Promise<SessionRow | undefined> {
    const r = await this.q.selectFrom('sessions').selectAll().where('session_id', '=', sessionId).executeTakeFirst();
    return r ? toSessionRow(r) : undefined;
  }

  async transitions(sessionId: string): Promise<TransitionRow[]> {
    const rows = await this.q.selectFrom('session_transitions').selectAll().where('session_id', '=', sessionId).orderBy('id').execute();
    return rows.map((r) => ({ sessionId: r.session_id, from: r.from_state, to: r.to_state, reason: r.reason, atMs: r.at_ms }));
  }
}

function toSessionRow(r: Selectable<SessionsTable>): SessionRow {
  return {
    sessionId: r.session_id,
    agentId: r.agent_id,
    state: r.state,
    reason: r.reason,
    createdMs: r.created_ms,
    updatedMs: r.updated_ms,
  };
}
