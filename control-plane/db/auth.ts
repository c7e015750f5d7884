// Who may do what: users, the secrets issued to them (hashed), which user
// owns each machine, grants to other users, and the audit log. The async
// twin of control-plane/auth/store.ts, on either engine.
import type { Insertable, Kysely, Selectable } from 'kysely';
import { AttachMode, AuditEntry, TokenKind } from '../../protocol';
import { affected, textOrder, type Db, type Engine } from './open';
import type { AuditTable, Database, GrantsTable, TokensTable, UsersTable } from './schema';

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

export interface AuthRepoOptions {
  /** Audit rows wait at most this long to be written (ms, default 50). */
  auditFlushMs?: number;
  /** ...or until this many are waiting (default 1000). */
  auditMaxBatch?: number;
  /** A batch written from the timer failed (its rows are lost). Default: a process warning. */
  onAuditError?: (err: unknown, rows: number) => void;
}

const AUDIT_FLUSH_MS = 50;
const AUDIT_MAX_BATCH = 1000;

/**
 * Audit rows are written together, one transaction per flush interval. A
 * synchronous insert per keystroke cost ~0.17 ms of echo latency (and ~11 ms
 * when SQLite checkpointed); batched, a keystroke only pushes to an array.
 * A crash can lose the last interval's rows. Batches are written one after
 * another, in order, so ids keep the order rows were queued in.
 */
class AuditQueue {
  private pending: Insertable<AuditTable>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly onError: (err: unknown, rows: number) => void;

  constructor(
    private readonly q: Kysely<Database>,
    opts: AuthRepoOptions,
  ) {
    this.flushMs = opts.auditFlushMs ?? AUDIT_FLUSH_MS;
    this.maxBatch = opts.auditMaxBatch ?? AUDIT_MAX_BATCH;
    this.onError =
      opts.onAuditError ?? ((err, rows) => process.emitWarning(`audit: ${rows} rows not written: ${err instanceof Error ? err.message : err}`));
  }

  push(row: Insertable<AuditTable>): void {
    this.pending.push(row);
    if (this.pending.length >= this.maxBatch) this.background();
    else this.timer ??= setTimeout(() => this.background(), this.flushMs);
  }

  private background(): void {
    const rows = this.pending.length;
    this.flush().catch((err) => this.onError(err, rows));
  }

  /** Writes what is queued; resolves once it (and every batch before it) is in the store. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length > 0) {
      const rows = this.pending;
      this.pending = [];
      // A failed batch is reported to whoever awaited it; the next one still goes.
      this.chain = this.chain.catch(() => {}).then(() => this.write(rows));
    }
    return this.chain;
  }

  private async write(rows: Insertable<AuditTable>[]): Promise<void> {
    await this.q.transaction().execute(async (tx) => {
      // Bound parameters per statement stay far below both engines' limits.
      for (let i = 0; i < rows.length; i += 500) await tx.insertInto('audit').values(rows.slice(i, i + 500)).execute();
    });
  }
}

export class AuthRepo {
  private q: Kysely<Database>;
  private engine: Engine;
  private audits: AuditQueue;

  constructor(db: Db, opts: AuthRepoOptions = {}) {
    this.q = db.kysely;
    this.engine = db.engine;
    this.audits = new AuditQueue(db.kysely, opts);
  }

  // ---- revocations, for every replica (cluster/revocations.ts)

  async recordRevocation(uid: string, body: string): Promise<void> {
    await this.q.insertInto('revocations').values({ uid, body, at_ms: Date.now() }).execute();
  }

  /** Revocations recorded after row `afterId`, oldest first. */
  async revocationsAfter(afterId: number): Promise<{ id: number; uid: string; body: string }[]> {
    const rows = await this.q.selectFrom('revocations').select(['id', 'uid', 'body']).where('id', '>', afterId).orderBy('id').limit(1000).execute();
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  /** The newest revocation's row id (0: none): a replica starting reads on from there. */
  async lastRevocationId(): Promise<number> {
    const r = await this.q.selectFrom('revocations').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    return Number(r?.id ?? 0);
  }

  async pruneRevocations(beforeMs: number): Promise<void> {
    await this.q.deleteFrom('revocations').where('at_ms', '<', beforeMs).execute();
  }

  async user(id: string): Promise<UserRow | undefined> {
    const r = await this.q.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return r && userRow(r);
  }

  async userByName(name: string): Promise<UserRow | undefined> {
    const r = await this.q.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return r && userRow(r);
  }

  async users(): Promise<UserRow[]> {
    return (await this.q.selectFrom('users').selectAll().orderBy(textOrder(this.engine, 'name')).execute()).map(userRow);
  }

  async addUser(u: UserRow): Promise<void> {
    await this.q
      .insertInto('users')
      .values({ id: u.id, name: u.name, password_hash: u.passwordHash, admin: u.admin ? 1 : 0, created_ms: u.createdMs })
      .execute();
  }

  async setPassword(userId: string, hash: string): Promise<void> {
    await this.q.updateTable('users').set({ password_hash: hash }).where('id', '=', userId).execute();
  }

  async addToken(t: Omit<TokenRow, 'lastUsedMs' | 'revokedMs' | 'usedMs'>): Promise<void> {
    await this.q
      .insertInto('tokens')
      .values({
        id: t.id,
        kind: t.kind,
        hash: t.hash,
        name: t.name,
        user_id: t.userId,
        machine: t.machine,
        terminal_id: t.terminalId,
        created_ms: t.createdMs,
        expires_ms: t.expiresMs,
      })
      .execute();
  }

  /** Every authenticated call starts here: the hot path. */
  async tokenByHash(hash: string): Promise<TokenRow | undefined> {
    const r = await this.q.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
    return r && tokenRow(r);
  }

  async token(id: string): Promise<TokenRow | undefined> {
    const r = await this.q.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r && tokenRow(r);
  }

  async tokens(): Promise<TokenRow[]> {
    return (await this.q.selectFrom('tokens').selectAll().orderBy('created_ms').orderBy('id').execute()).map(tokenRow);
  }

  async touchToken(id: string, atMs: number): Promise<void> {
    await this.q.updateTable('tokens').set({ last_used_ms: atMs }).where('id', '=', id).execute();
  }

  /** False when it was already revoked. */
  async revokeToken(id: string): Promise<boolean> {
    const r = await this.q.updateTable('tokens').set({ revoked_ms: Date.now() }).where('id', '=', id).where('revoked_ms', '=', 0).executeTakeFirst();
    return affected(r.numUpdatedRows) === 1;
  }

  /** Marks a one-time token used; false when it already was (a race lost, on this replica or another). */
  async spendToken(id: string): Promise<boolean> {
    const r = await this.q.updateTable('tokens').set({ used_ms: Date.now() }).where('id', '=', id).where('used_ms', '=', 0).executeTakeFirst();
    return affected(r.numUpdatedRows) === 1;
  }

  async revokeAgentCredentials(machine: string): Promise<number> {
    const r = await this.q
      .updateTable('tokens')
      .set({ revoked_ms: Date.now() })
      .where('machine', '=', machine)
      .where('kind', '=', TokenKind.AGENT)
      .where('revoked_ms', '=', 0)
      .executeTakeFirst();
    return affected(r.numUpdatedRows);
  }

  async machineOwner(machine: string): Promise<string | undefined> {
    return (await this.q.selectFrom('machines').select('owner_id').where('name', '=', machine).executeTakeFirst())?.owner_id;
  }

  async machinesOf(userId: string): Promise<string[]> {
    const rows = await this.q.selectFrom('machines').select('name').where('owner_id', '=', userId).orderBy(textOrder(this.engine, 'name')).execute();
    return rows.map((r) => r.name);
  }

  async addMachine(name: string, ownerId: string): Promise<void> {
    await this.q.insertInto('machines').values({ name, owner_id: ownerId, created_ms: Date.now() }).execute();
  }

  async grant(g: GrantRow): Promise<void> {
    await this.q
      .insertInto('grants')
      .values({ machine: g.machine, user_id: g.userId, role: g.role, granted_by: g.grantedBy, created_ms: g.createdMs })
      .onConflict((oc) =>
        oc.columns(['machine', 'user_id']).doUpdateSet((eb) => ({
          role: eb.ref('excluded.role'),
          granted_by: eb.ref('excluded.granted_by'),
          created_ms: eb.ref('excluded.created_ms'),
        })),
      )
      .execute();
  }

  async grantOf(machine: string, userId: string): Promise<GrantRow | undefined> {
    const r = await this.q.selectFrom('grants').selectAll().where('machine', '=', machine).where('user_id', '=', userId).executeTakeFirst();
    return r && toGrant(r);
  }

  async grantsOn(machine: string): Promise<GrantRow[]> {
    return (await this.q.selectFrom('grants').selectAll().where('machine', '=', machine).orderBy('created_ms').orderBy('user_id').execute()).map(toGrant);
  }

  async grantsFor(userId: string): Promise<GrantRow[]> {
    return (await this.q.selectFrom('grants').selectAll().where('user_id', '=', userId).execute()).map(toGrant);
  }

  async deleteGrant(machine: string, userId: string): Promise<boolean> {
    const r = await this.q.deleteFrom('grants').where('machine', '=', machine).where('user_id', '=', userId).executeTakeFirst();
    return affected(r.numDeletedRows) === 1;
  }

  /** Queues an audit row (see AuditQueue): synchronous, no I/O. */
  audit(e: AuditInput): void {
    this.audits.push({
      at_ms: Date.now(),
      actor: e.actor,
      action: e.action,
      machine: e.machine,
      terminal_id: e.terminalId,
      mode: e.mode,
      command_id: e.commandId,
      ok: e.ok ? 1 : 0,
      detail: e.detail,
      peer: e.peer,
    });
  }

  /** Writes the queued audit rows now. */
  flushAudit(): Promise<void> {
    this.notInTransaction('flushAudit');
    return this.audits.flush();
  }

  /** The newest `limit` entries matching, oldest first; `machines` narrows to those (a non-admin's own). */
  async auditEntries(f: { machine?: string; machines?: string[]; sinceMs?: number; limit: number }): Promise<AuditEntry[]> {
    await this.flushAudit();
    let newest = this.q.selectFrom('audit').selectAll();
    if (f.machine) newest = newest.where('machine', '=', f.machine);
    // No machines: only rows about no machine, as auth/store.ts's `IN ('')` does.
    if (f.machines) newest = newest.where('machine', 'in', f.machines.length ? f.machines : ['']);
    if (f.sinceMs) newest = newest.where('at_ms', '>=', f.sinceMs);
    const rows = await this.q
      .selectFrom(newest.orderBy('id', 'desc').limit(f.limit).as('newest'))
      .selectAll()
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
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

  /**
   * Several writes as one: `fn` gets a repository bound to the transaction
   * and must use it, never this one (on SQLite the one connection belongs to
   * the transaction until it ends, so a query through `this` would wait for
   * ever). Inside a transaction already, `fn` joins it.
   */
  async atomically<T>(fn: (tx: AuthRepo) => Promise<T>): Promise<T> {
    if (this.q.isTransaction) return fn(this);
    return this.q.transaction().execute((tx) => fn(this.bound(tx)));
  }

  /** Writes the queued audit rows and stops the timer. */
  async close(): Promise<void> {
    await this.audits.flush();
  }

  private bound(tx: Kysely<Database>): AuthRepo {
    const r = Object.create(AuthRepo.prototype) as AuthRepo;
    r.q = tx;
    r.engine = this.engine;
    r.audits = this.audits;
    return r;
  }

  private notInTransaction(what: string): void {
    // The queue writes through its own connection: on SQLite that waits for this transaction to end.
    if (this.q.isTransaction) throw new Error(`${what} inside atomically() would wait for itself; call it after`);
  }
}

function userRow(r: Selectable<UsersTable>): UserRow {
  return { id: r.id, name: r.name, passwordHash: r.password_hash, admin: r.admin === 1, createdMs: r.created_ms };
}

function tokenRow(r: Selectable<TokensTable>): TokenRow {
  return {
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
  };
}

function toGrant(r: Selectable<GrantsTable>): GrantRow {
  return { machine: r.machine, userId: r.user_id, role: r.role, grantedBy: r.granted_by, createdMs: r.created_ms };
}
