// The agents the control plane has seen, their sessions, every session state
// transition with its reason, and what a fresh process needs to take a
// session over (its name, the hash of its resume token, its grace deadline,
// its terminals' specs). The async twin of control-plane/store.ts, on either
// engine.
import { sql, type Kysely, type Selectable } from 'kysely';
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

/** A live session as a restarted control plane (or another replica) takes it over. */
export interface OpenSessionRow extends SessionRow {
  name: string;
  /** SHA-256 of the resume token (the token itself is never stored). */
  resumeHash: Buffer;
  deadlineMs: number;
  /** The replica holding it ('' none), and the epoch of that holding. */
  owner: string;
  epoch: number;
}

/** A replica's claim on a session: its writes count only while the epoch is the store's. */
export interface Fence {
  owner: string;
  epoch: number;
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

  /** Liveness queries (heartbeats, who is alive) on a pool of their own (Db.liveness). */
  private live: Kysely<Database>;

  constructor(db: Db) {
    this.q = db.kysely;
    this.live = db.liveness;
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

  /** The session (held by `owner`, epoch 1) and its first transition (from SESSION_STATE_UNSPECIFIED), together. */
  async createSession(sessionId: string, agentId: string, name: string, resumeHash: Buffer, state: SessionState, reason: string, owner = ''): Promise<void> {
    const now = Date.now();
    await this.q.transaction().execute(async (tx) => {
      await tx
        .insertInto('sessions')
        .values({ session_id: sessionId, agent_id: agentId, state, reason, created_ms: now, updated_ms: now, name, resume_hash: resumeHash, owner, epoch: 1 })
        .execute();
      await tx
        .insertInto('session_transitions')
        .values({ session_id: sessionId, from_state: SessionState.SESSION_STATE_UNSPECIFIED, to_state: state, reason, at_ms: now })
        .execute();
    });
  }

  /**
   * `deadlineMs`: when GRACE_PERIOD or BACKGROUND runs out (0 otherwise); an
   * ended session's terminals are forgotten. With `fence`, only while that
   * replica still holds the session under that epoch: false when it does
   * not (another replica took it over), and nothing is written.
   */
  async transition(sessionId: string, from: SessionState, to: SessionState, reason: string, deadlineMs = 0, fence?: Fence): Promise<boolean> {
    const now = Date.now();
    return this.q.transaction().execute(async (tx) => {
      let update = tx.updateTable('sessions').set({ state: to, reason, updated_ms: now, deadline_ms: deadlineMs }).where('session_id', '=', sessionId);
      if (fence) update = update.where('owner', '=', fence.owner).where('epoch', '=', fence.epoch);
      const r = await update.executeTakeFirst();
      if (fence && Number(r.numUpdatedRows) === 0) return false;
      await tx.insertInto('session_transitions').values({ session_id: sessionId, from_state: from, to_state: to, reason, at_ms: now }).execute();
      if (to === SessionState.DISCONNECTED) await tx.deleteFrom('terminals').where('session_id', '=', sessionId).execute();
      return true;
    });
  }

  /** One live session, as a replica taking it over reads it (undefined: none, or it ended). */
  async openSession(sessionId: string): Promise<OpenSessionRow | undefined> {
    const r = await this.q
      .selectFrom('sessions')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('state', '!=', SessionState.DISCONNECTED)
      .executeTakeFirst();
    return r && toOpenRow(r);
  }

  /** Who holds each of these sessions now, by the store (sessions it does not have are left out). */
  async holders(sessionIds: string[]): Promise<{ sessionId: string; owner: string; epoch: number; state: SessionState }[]> {
    const out: { sessionId: string; owner: string; epoch: number; state: SessionState }[] = [];
    for (let i = 0; i < sessionIds.length; i += 1000) {
      const rows = await this.q
        .selectFrom('sessions')
        .select(['session_id', 'owner', 'epoch', 'state'])
        .where('session_id', 'in', sessionIds.slice(i, i + 1000))
        .execute();
      for (const r of rows) out.push({ sessionId: r.session_id, owner: r.owner, epoch: r.epoch, state: r.state });
    }
    return out;
  }

  /** The live session named `name`, if there is one (whichever replica holds it). */
  async openSessionNamed(name: string): Promise<OpenSessionRow | undefined> {
    const r = await this.q
      .selectFrom('sessions')
      .selectAll()
      .where('name', '=', name)
      .where('state', '!=', SessionState.DISCONNECTED)
      .orderBy('created_ms', 'desc')
      .executeTakeFirst();
    return r && toOpenRow(r);
  }

  /**
   * Takes a session over for `owner`: the epoch rises by one, only from
   * `fromEpoch` (a claim made on a stale read changes nothing) and only
   * while the session is live. Resolves with the new epoch, or undefined.
   */
  async claim(sessionId: string, owner: string, fromEpoch: number): Promise<number | undefined> {
    const r = await this.q
      .updateTable('sessions')
      .set({ owner, epoch: fromEpoch + 1, updated_ms: Date.now() })
      .where('session_id', '=', sessionId)
      .where('epoch', '=', fromEpoch)
      .where('state', '!=', SessionState.DISCONNECTED)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1 ? fromEpoch + 1 : undefined;
  }

  /** One agent's capabilities (what a takeover needs), if it is known. */
  async agentCapabilities(agentId: string): Promise<Capabilities | undefined> {
    const r = await this.q.selectFrom('agents').select('capabilities').where('agent_id', '=', agentId).executeTakeFirst();
    return r && Capabilities.fromPartial(JSON.parse(r.capabilities));
  }

  /** Forgets one replica's row (it is stopping): the sessions it held are orphans at once. */
  async forgetReplica(id: string): Promise<void> {
    await this.live.deleteFrom('replicas').where('id', '=', id).execute();
  }

  // ---- replicas

  /** A replica's heartbeat (and, first time, its row). */
  async beat(id: string, peer: string, startedMs: number, peerCert = ''): Promise<void> {
    const now = Date.now();
    await this.live
      .insertInto('replicas')
      .values({ id, peer, peer_cert: peerCert, started_ms: startedMs, heartbeat_ms: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ heartbeat_ms: now, peer, peer_cert: peerCert }))
      .execute();
  }

  /** Replicas whose heartbeat is not older than `sinceMs`. */
  async liveReplicas(sinceMs: number): Promise<{ id: string; peer: string; peerCert: string }[]> {
    return this.live.selectFrom('replicas').select(['id', 'peer', 'peer_cert as peerCert']).where('heartbeat_ms', '>=', sinceMs).execute();
  }

  /** Forgets replicas not heard from since `beforeMs` (their rows only: their sessions are swept apart). */
  async forgetReplicas(beforeMs: number): Promise<void> {
    await this.live.deleteFrom('replicas').where('heartbeat_ms', '<', beforeMs).execute();
  }

  /**
   * Sessions whose holder is gone (not among `live`): the live ones go to
   * GRACE_PERIOD now (their agent may come back to any replica within it),
   * and those whose grace period ran out end, each by exactly one caller
   * (the UPDATE decides). Resolves with what changed.
   */
  async sweepOrphans(live: string[], gracePeriodMs: number): Promise<{ graced: string[]; ended: OpenSessionRow[] }> {
    const now = Date.now();
    return this.q.transaction().execute(async (tx) => {
      // One replica sweeps at a time: several sweeping the same rows only wait on each other's locks (seen:
      // sweeps of 30,000 sessions queued 20-90 s behind one another). The lock ends with the transaction.
      if (this.engine === 'postgres') {
        const got = await sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${sql.lit(SWEEP_LOCK)}) as ok`.execute(tx);
        if (!got.rows[0]?.ok) return { graced: [], ended: [] };
      }
      const why = 'its control plane replica stopped answering';
      const graced = await tx
        .updateTable('sessions')
        .set({ state: SessionState.GRACE_PERIOD, reason: why, deadline_ms: now + gracePeriodMs, updated_ms: now, owner: '' })
        .where('state', 'in', [SessionState.CONNECTED, SessionState.BACKGROUND, SessionState.PENDING])
        .where((eb) => (live.length > 0 ? eb('owner', 'not in', live) : eb.val(true)))
        .returning(['session_id'])
        .execute();
      // In batches: one statement per row held every lock for as many round trips.
      for (const batch of chunks(graced, TRANSITION_BATCH)) {
        await tx
          .insertInto('session_transitions')
          // RETURNING gives the row as updated, not its state before: most were CONNECTED.
          .values(batch.map((g) => ({ session_id: g.session_id, from_state: SessionState.CONNECTED, to_state: SessionState.GRACE_PERIOD, reason: why, at_ms: now })))
          .execute();
      }
      const ended = await tx
        .updateTable('sessions')
        .set({ state: SessionState.DISCONNECTED, reason: 'its grace period ran out', updated_ms: now, deadline_ms: 0 })
        .where('state', '=', SessionState.GRACE_PERIOD)
        .where('deadline_ms', '<=', now)
        .where((eb) => (live.length > 0 ? eb.or([eb('owner', '=', ''), eb('owner', 'not in', live)]) : eb.val(true)))
        .returningAll()
        .execute();
      for (const batch of chunks(ended, TRANSITION_BATCH)) {
        await tx
          .insertInto('session_transitions')
          .values(batch.map((e) => ({ session_id: e.session_id, from_state: SessionState.GRACE_PERIOD, to_state: SessionState.DISCONNECTED, reason: 'its grace period ran out', at_ms: now })))
          .execute();
        await tx.deleteFrom('terminals').where('session_id', 'in', batch.map((e) => e.session_id)).execute();
      }
      return { graced: graced.map((g) => g.session_id), ended: ended.map(toOpenRow) };
    });
  }

  /** Sessions not DISCONNECTED: what a control plane starting up may take over. */
  async openSessions(): Promise<OpenSessionRow[]> {
    const rows = await this.q.selectFrom('sessions').selectAll().where('state', '!=', SessionState.DISCONNECTED).execute();
    return rows.map(toOpenRow);
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

function toOpenRow(r: Selectable<SessionsTable>): OpenSessionRow {
  return {
    ...toSessionRow(r),
    name: r.name,
    resumeHash: r.resume_hash ?? Buffer.alloc(0),
    deadlineMs: r.deadline_ms,
    owner: r.owner,
    epoch: r.epoch,
  };
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

/** Rows per INSERT in a sweep (well under either engine's limit on bound parameters: 5 per row). */
const TRANSITION_BATCH = 500;
/** The sweep's advisory lock on PostgreSQL: any number, the same for every replica. */
const SWEEP_LOCK = 0x636d6473; // "cmds"

function chunks<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
