// Who may do what, kept in the control plane's SQLite file next to the
// session tables: users, the secrets issued to them (hashed), which user owns
// each machine, grants to other users, and the audit log.
import type Database from 'better-sqlite3';
import { AttachMode, AuditEntry, TokenKind } from '../../protocol';

export interface UserRow {
  id: string;
  name: string;
  passwordHash: string;
  admin: boolean;
  createdMs: number;
}

export interface TokenRow {
  id: string;
  kind: TokenKind;
  hash: string;
  name: string;
  userId: string;
  machine: string;
  terminalId: string;
  createdMs: number;
  expiresMs: number;
  lastUsedMs: number;
  revokedMs: number;
  usedMs: number;
}

export interface GrantRow {
  machine: string;
  userId: string;
  role: AttachMode;
  grantedBy: string;
  createdMs: number;
}

export type AuditInput = Omit<AuditEntry, 'id' | 'atMs'>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL DEFAULT '',
  admin INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  kind INTEGER NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL REFERENCES users(id),
  machine TEXT NOT NULL DEFAULT '',
  terminal_id TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL DEFAULT 0,
  last_used_ms INTEGER NOT NULL DEFAULT 0,
  revoked_ms INTEGER NOT NULL DEFAULT 0,
  used_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user_id);
CREATE INDEX IF NOT EXISTS tokens_machine ON tokens(machine, kind);
CREATE TABLE IF NOT EXISTS machines (
  name TEXT PRIMARY KEY,
  owner_id TEXT NOT NULL REFERENCES users(id),
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
  machine TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  role INTEGER NOT NULL,
  granted_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  PRIMARY KEY (machine, user_id)
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  machine TEXT NOT NULL DEFAULT '',
  terminal_id TEXT NOT NULL DEFAULT '',
  mode INTEGER NOT NULL DEFAULT 0,
  command_id TEXT NOT NULL DEFAULT '',
  ok INTEGER NOT NULL DEFAULT 1,
  detail TEXT NOT NULL DEFAULT '',
  peer TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_machine ON audit(machine, at_ms);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at_ms);
`;

const userRow = (r: any): UserRow => ({
  id: r.id,
  name: r.name,
  passwordHash: r.password_hash,
  admin: r.admin === 1,
  createdMs: r.created_ms,
});

const tokenRow = (r: any): TokenRow => ({
  id: r.id,
  kind: r.kind,
  hash: r.hash,
  name: r.name,
  userId: r.user_id,
  machine: r.machine,
  terminalId: r.terminal_id,
  createdMs: r.created_ms,
  expiresMs: r.expires_ms,
  lastUsedMs: r.last_used_ms,
  revokedMs: r.revoked_ms,
  usedMs: r.used_ms,
});

const AUDIT_FLUSH_MS = 50;
const AUDIT_MAX_BATCH = 1000;

export class AuthStore {
  private s;
  private pendingAudit: Record<string, unknown>[] = [];
  private auditTimer: NodeJS.Timeout | undefined;

  constructor(private db: Database.Database) {
    db.exec(SCHEMA);
    this.s = {
      userById: db.prepare('SELECT * FROM users WHERE id = ?'),
      userByName: db.prepare('SELECT * FROM users WHERE name = ?'),
      users: db.prepare('SELECT * FROM users ORDER BY name'),
      insertUser: db.prepare('INSERT INTO users (id, name, password_hash, admin, created_ms) VALUES (?, ?, ?, ?, ?)'),
      setPassword: db.prepare('UPDATE users SET password_hash = ? WHERE id = ?'),
      insertToken: db.prepare(
        `INSERT INTO tokens (id, kind, hash, name, user_id, machine, terminal_id, created_ms, expires_ms)
         VALUES (@id, @kind, @hash, @name, @userId, @machine, @terminalId, @createdMs, @expiresMs)`,
      ),
      tokenByHash: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
      tokenById: db.prepare('SELECT * FROM tokens WHERE id = ?'),
      tokens: db.prepare('SELECT * FROM tokens ORDER BY created_ms'),
      touchToken: db.prepare('UPDATE tokens SET last_used_ms = ? WHERE id = ?'),
      revokeToken: db.prepare('UPDATE tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms = 0'),
      spendToken: db.prepare('UPDATE tokens SET used_ms = ? WHERE id = ? AND used_ms = 0'),
      revokeMachineTokens: db.prepare(
        `UPDATE tokens SET revoked_ms = ? WHERE machine = ? AND kind = ${TokenKind.AGENT} AND revoked_ms = 0`,
      ),
      machineOwner: db.prepare('SELECT owner_id FROM machines WHERE name = ?'),
      machinesOf: db.prepare('SELECT name FROM machines WHERE owner_id = ? ORDER BY name'),
      insertMachine: db.prepare('INSERT INTO machines (name, owner_id, created_ms) VALUES (?, ?, ?)'),
      grant: db.prepare(
        `INSERT INTO grants (machine, user_id, role, granted_by, created_ms) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(machine, user_id) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by, created_ms = excluded.created_ms`,
      ),
      grantOf: db.prepare('SELECT * FROM grants WHERE machine = ? AND user_id = ?'),
      grantsOn: db.prepare('SELECT * FROM grants WHERE machine = ? ORDER BY created_ms'),
      grantsFor: db.prepare('SELECT * FROM grants WHERE user_id = ?'),
      deleteGrant: db.prepare('DELETE FROM grants WHERE machine = ? AND user_id = ?'),
      audit: db.prepare(
        `INSERT INTO audit (at_ms, actor, action, machine, terminal_id, mode, command_id, ok, detail, peer)
         VALUES (@atMs, @actor, @action, @machine, @terminalId, @mode, @commandId, @ok, @detail, @peer)`,
      ),
    };
  }

  user(id: string): UserRow | undefined {
    const r = this.s.userById.get(id);
    return r ? userRow(r) : undefined;
  }

  userByName(name: string): UserRow | undefined {
    const r = this.s.userByName.get(name);
    return r ? userRow(r) : undefined;
  }

  users(): UserRow[] {
    return this.s.users.all().map(userRow);
  }

  addUser(u: UserRow): void {
    this.s.insertUser.run(u.id, u.name, u.passwordHash, u.admin ? 1 : 0, u.createdMs);
  }

  setPassword(userId: string, hash: string): void {
    this.s.setPassword.run(hash, userId);
  }

  addToken(t: Omit<TokenRow, 'lastUsedMs' | 'revokedMs' | 'usedMs'>): void {
    this.s.insertToken.run(t);
  }

  tokenByHash(hash: string): TokenRow | undefined {
    const r = this.s.tokenByHash.get(hash);
    return r ? tokenRow(r) : undefined;
  }

  token(id: string): TokenRow | undefined {
    const r = this.s.tokenById.get(id);
    return r ? tokenRow(r) : undefined;
  }

  tokens(): TokenRow[] {
    return this.s.tokens.all().map(tokenRow);
  }

  touchToken(id: string, atMs: number): void {
    this.s.touchToken.run(atMs, id);
  }

  /** False when it was already revoked. */
  revokeToken(id: string): boolean {
    return this.s.revokeToken.run(Date.now(), id).changes === 1;
  }

  /** Marks a one-time token used; false when it already was (a race lost). */
  spendToken(id: string): boolean {
    return this.s.spendToken.run(Date.now(), id).changes === 1;
  }

  revokeAgentCredentials(machine: string): number {
    return this.s.revokeMachineTokens.run(Date.now(), machine).changes;
  }

  machineOwner(machine: string): string | undefined {
    return (this.s.machineOwner.get(machine) as { owner_id: string } | undefined)?.owner_id;
  }

  machinesOf(userId: string): string[] {
    return (this.s.machinesOf.all(userId) as { name: string }[]).map((r) => r.name);
  }

  addMachine(name: string, ownerId: string): void {
    this.s.insertMachine.run(name, ownerId, Date.now());
  }

  grant(g: GrantRow): void {
    this.s.grant.run(g.machine, g.userId, g.role, g.grantedBy, g.createdMs);
  }

  grantOf(machine: string, userId: string): GrantRow | undefined {
    const r = this.s.grantOf.get(machine, userId) as any;
    return r ? toGrant(r) : undefined;
  }

  grantsOn(machine: string): GrantRow[] {
    return (this.s.grantsOn.all(machine) as any[]).map(toGrant);
  }

  grantsFor(userId: string): GrantRow[] {
    return (this.s.grantsFor.all(userId) as any[]).map(toGrant);
  }

  deleteGrant(machine: string, userId: string): boolean {
    return this.s.deleteGrant.run(machine, userId).changes === 1;
  }

  /**
   * Queues an audit row; rows are written together, one transaction per
   * AUDIT_FLUSH_MS. A synchronous insert per keystroke cost ~0.17 ms of echo
   * latency (and ~11 ms when SQLite checkpointed); batched, a keystroke only
   * pushes to an array. A crash can lose the last AUDIT_FLUSH_MS of rows.
   */
  audit(e: AuditInput): void {
    this.pendingAudit.push({ ...e, ok: e.ok ? 1 : 0, atMs: Date.now() });
    if (this.pendingAudit.length >= AUDIT_MAX_BATCH) this.flushAudit();
    else this.auditTimer ??= setTimeout(() => this.flushAudit(), AUDIT_FLUSH_MS);
  }

  flushAudit(): void {
    clearTimeout(this.auditTimer);
    this.auditTimer = undefined;
    if (this.pendingAudit.length === 0) return;
    const rows = this.pendingAudit;
    this.pendingAudit = [];
    this.db.transaction(() => {
      for (const r of rows) this.s.audit.run(r);
    })();
  }

  /** The newest `limit` entries matching, oldest first; `machines` narrows to those (a non-admin's own). */
  auditEntries(f: { machine?: string; machines?: string[]; sinceMs?: number; limit: number }): AuditEntry[] {
    this.flushAudit();
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.machine) {
      where.push('machine = ?');
      args.push(f.machine);
    }
    if (f.machines) {
      where.push(`machine IN (${f.machines.map(() => '?').join(',') || "''"})`);
      args.push(...f.machines);
    }
    if (f.sinceMs) {
      where.push('at_ms >= ?');
      args.push(f.sinceMs);
    }
    const sql = `SELECT * FROM (SELECT * FROM audit ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
                 ORDER BY id DESC LIMIT ?) ORDER BY id`;
    return (this.db.prepare(sql).all(...args, f.limit) as any[]).map((r) => ({
      id: r.id,
      atMs: r.at_ms,
      actor: r.actor,
      action: r.action,
      machine: r.machine,
      terminalId: r.terminal_id,
      mode: r.mode,
      commandId: r.command_id,
      ok: r.ok === 1,
      detail: r.detail,
      peer: r.peer,
    }));
  }

  /** Several writes as one (better-sqlite3 transactions are synchronous). */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}

function toGrant(r: any): GrantRow {
  return { machine: r.machine, userId: r.user_id, role: r.role, grantedBy: r.granted_by, createdMs: r.created_ms };
}
