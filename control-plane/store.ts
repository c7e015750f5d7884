// The control plane's durable state in SQLite (the embedded default): the
// agents it has seen, their sessions, and every session state transition
// with its reason; and what a fresh process needs to take a session over
// after a restart (its name, the hash of its resume token, its grace
// deadline, its terminals' specs). Routing state (streams, buffers) lives in
// memory: the agent holds every byte not yet acknowledged.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { Capabilities, SessionState, TerminalSpec } from '../protocol';

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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS agents (
  agent_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS agents_name ON agents(name);
CREATE TABLE IF NOT EXISTS sessions (
  session_id TEXT PRIMARY KEY,
  agent_id TEXT NOT NULL REFERENCES agents(agent_id),
  state INTEGER NOT NULL,
  reason TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_agent ON sessions(agent_id);
CREATE TABLE IF NOT EXISTS session_transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  from_state INTEGER NOT NULL,
  to_state INTEGER NOT NULL,
  reason TEXT NOT NULL,
  at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_session ON session_transitions(session_id);
`;

/**
 * Schema changes since the first release, applied in order once each
 * (PRAGMA user_version counts them), so a store written by an older release
 * is brought up to date in place.
 */
const MIGRATIONS: string[] = [
  // 1: sessions survive a restart of the control plane.
  `ALTER TABLE sessions ADD COLUMN name TEXT NOT NULL DEFAULT '';
   ALTER TABLE sessions ADD COLUMN resume_hash BLOB;
   ALTER TABLE sessions ADD COLUMN deadline_ms INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX IF NOT EXISTS sessions_state ON sessions(state);
   CREATE TABLE IF NOT EXISTS terminals (
     session_id TEXT NOT NULL,
     terminal_id TEXT NOT NULL,
     spec BLOB NOT NULL,
     created_ms INTEGER NOT NULL,
     cols INTEGER NOT NULL,
     rows INTEGER NOT NULL,
     operators INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (session_id, terminal_id)
   );`,
];

export class Store {
  private db: Database.Database;
  private stmts;

  constructor(dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = path.join(dataDir, 'cmdop.sqlite');
    this.db = new Database(file);
    // Token hashes, OAuth grants and the audit log: private to the server's user
    // (SQLite gives its -wal and -shm files the same mode).
    fs.chmodSync(file, 0o600);
    // WAL: state writes (one per transition) never block readers.
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.migrate();
    this.stmts = {
      upsertAgent: this.db.prepare(
        `INSERT INTO agents (agent_id, name, capabilities, first_seen_ms, last_seen_ms)
         VALUES (@agentId, @name, @capabilities, @now, @now)
         ON CONFLICT(agent_id) DO UPDATE SET name = @name, capabilities = @capabilities, last_seen_ms = @now`,
      ),
      touchAgent: this.db.prepare(`UPDATE agents SET last_seen_ms = ? WHERE agent_id = ?`),
      agents: this.db.prepare(`SELECT * FROM agents ORDER BY name`),
      insertSession: this.db.prepare(
        `INSERT INTO sessions (session_id, agent_id, state, reason, created_ms, updated_ms, name, resume_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateSession: this.db.prepare(`UPDATE sessions SET state = ?, reason = ?, updated_ms = ?, deadline_ms = ? WHERE session_id = ?`),
      openSessions: this.db.prepare(`SELECT * FROM sessions WHERE state != ${SessionState.DISCONNECTED}`),
      putTerminal: this.db.prepare(
        `INSERT INTO terminals (session_id, terminal_id, spec, created_ms, cols, rows, operators)
         VALUES (@sessionId, @terminalId, @spec, @createdMs, @cols, @rows, @operators)
         ON CONFLICT(session_id, terminal_id) DO UPDATE SET cols = @cols, rows = @rows, operators = @operators`,
      ),
      deleteTerminal: this.db.prepare(`DELETE FROM terminals WHERE session_id = ? AND terminal_id = ?`),
      deleteTerminals: this.db.prepare(`DELETE FROM terminals WHERE session_id = ?`),
      terminalsOf: this.db.prepare(`SELECT * FROM terminals WHERE session_id = ? ORDER BY created_ms`),
      insertTransition: this.db.prepare(
        `INSERT INTO session_transitions (session_id, from_state, to_state, reason, at_ms) VALUES (?, ?, ?, ?, ?)`,
      ),
      latestSessions: this.db.prepare(
        `SELECT s.* FROM sessions s
         WHERE s.created_ms = (SELECT MAX(created_ms) FROM sessions WHERE agent_id = s.agent_id)`,
      ),
      session: this.db.prepare(`SELECT * FROM sessions WHERE session_id = ?`),
      transitions: this.db.prepare(`SELECT * FROM session_transitions WHERE session_id = ? ORDER BY id`),
    };
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  upsertAgent(agentId: string, name: string, capabilities: Capabilities): void {
    this.stmts.upsertAgent.run({
      agentId,
      name,
      capabilities: JSON.stringify(capabilities),
      now: Date.now(),
    });
  }

  touchAgent(agentId: string): void {
    this.stmts.touchAgent.run(Date.now(), agentId);
  }

  agents(): AgentRow[] {
    return (this.stmts.agents.all() as any[]).map((r) => ({
      agentId: r.agent_id,
      name: r.name,
      capabilities: Capabilities.fromPartial(JSON.parse(r.capabilities)),
      firstSeenMs: r.first_seen_ms,
      lastSeenMs: r.last_seen_ms,
    }));
  }

  createSession(sessionId: string, agentId: string, name: string, resumeHash: Buffer, state: SessionState, reason: string): void {
    const now = Date.now();
    this.db.transaction(() => {
      this.stmts.insertSession.run(sessionId, agentId, state, reason, now, now, name, resumeHash);
      this.stmts.insertTransition.run(sessionId, SessionState.SESSION_STATE_UNSPECIFIED, state, reason, now);
    })();
  }

  /** `deadlineMs`: when GRACE_PERIOD or BACKGROUND runs out (0 otherwise); an ended session's terminals are forgotten. */
  transition(sessionId: string, from: SessionState, to: SessionState, reason: string, deadlineMs = 0): void {
    const now = Date.now();
    this.db.transaction(() => {
      this.stmts.updateSession.run(to, reason, now, deadlineMs, sessionId);
      this.stmts.insertTransition.run(sessionId, from, to, reason, now);
      if (to === SessionState.DISCONNECTED) this.stmts.deleteTerminals.run(sessionId);
    })();
  }

  /** Sessions not DISCONNECTED: what a control plane starting up takes over. */
  openSessions(): OpenSessionRow[] {
    return (this.stmts.openSessions.all() as any[]).map((r) => ({
      ...toSessionRow(r),
      name: r.name,
      resumeHash: r.resume_hash ?? Buffer.alloc(0),
      deadlineMs: r.deadline_ms,
    }));
  }

  putTerminal(t: TerminalRow): void {
    this.stmts.putTerminal.run({ ...t, spec: Buffer.from(TerminalSpec.encode(t.spec).finish()) });
  }

  deleteTerminal(sessionId: string, terminalId: string): void {
    this.stmts.deleteTerminal.run(sessionId, terminalId);
  }

  terminalsOf(sessionId: string): TerminalRow[] {
    return (this.stmts.terminalsOf.all(sessionId) as any[]).map((r) => ({
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
  latestSessions(): SessionRow[] {
    return (this.stmts.latestSessions.all() as any[]).map(toSessionRow);
  }

  session(sessionId: string): SessionRow | undefined {
    const r = this.stmts.session.get(sessionId);
    return r ? toSessionRow(r) : undefined;
  }

  transitions(sessionId: string): TransitionRow[] {
    return (this.stmts.transitions.all(sessionId) as any[]).map((r) => ({
      sessionId: r.session_id,
      from: r.from_state,
      to: r.to_state,
      reason: r.reason,
      atMs: r.at_ms,
    }));
  }

  /** The shared database handle, for the auth tables and the OAuth adapter. */
  get database(): Database.Database {
    return this.db;
  }

  close(): void {
    this.db.close();
  }
}

function toSessionRow(r: any): SessionRow {
  return {
    sessionId: r.session_id,
    agentId: r.agent_id,
    state: r.state,
    reason: r.reason,
    createdMs: r.created_ms,
    updatedMs: r.updated_ms,
  };
}
