// Opening the store on either engine. Everything engine-specific about
// connections lives here: the SQLite file's mode and pragmas, its statement
// cache and IMMEDIATE transactions, and PostgreSQL's pool and number parsing.
import BetterSqlite3 from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  SqliteAdapter,
  SqliteDriver,
  type DialectAdapter,
  sql,
  type RawBuilder,
  type DatabaseConnection,
  type Driver,
  type SqliteDatabase,
  type SqliteDialectConfig,
  type SqliteStatement,
} from 'kysely';
import type { Pool } from 'pg';

/** pg is loaded by the first PostgreSQL store opened: on SQLite its modules (~4 MB of heap, measured) are never needed. */
const pgModule = (): typeof import('pg') => require('pg') as typeof import('pg');
import type { Database } from './schema';
import { migrateToLatest, type MigrationOutcome } from './migrations';

export type Engine = 'sqlite' | 'postgres';

export interface Db {
  readonly engine: Engine;
  readonly kysely: Kysely<Database>;
  /**
   * For a replica's liveness (its heartbeat, who else is alive): on
   * PostgreSQL a pool of its own, so that a heartbeat never queues behind
   * the session writes of thousands of agents registering at once (it did:
   * heartbeats 8-140 s late, and the other replicas swept a live replica's
   * sessions). SQLite: the same as `kysely`.
   */
  readonly liveness: Kysely<Database>;
  /** PostgreSQL only: the pool under Kysely (RateLimiterPostgres shares it). */
  readonly pool: Pool | undefined;
  /** The SQLite file, or the URL without its password: for logs. */
  readonly where: string;
  /** Applies pending migrations (openDb does unless told not to). */
  migrate(): Promise<MigrationOutcome>;
  close(): Promise<void>;
}

export type DbTarget = string | { sqliteFile: string };

export interface OpenOptions {
  /** Run pending migrations before returning (default true). */
  migrate?: boolean;
  /** PostgreSQL connections per process (default 10). */
  poolSize?: number;
  /** SQLite: how long a write waits for another process's lock (default 10 s). */
  busyTimeoutMs?: number;
}

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//i.test(s);
}

/**
 * `{ sqliteFile }`: the embedded default, one file (created 0600, in a 0700
 * directory). A `postgres://` URL: a pool on that database.
 */
export async function openDb(target: DbTarget, opts: OpenOptions = {}): Promise<Db> {
  let db: Db;
  if (typeof target === 'string') {
    if (!isPostgresUrl(target)) throw new Error(`the store must be a postgres:// URL (got ${JSON.stringify(redact(target))})`);
    db = openPostgres(target, opts);
  } else {
    db = openSqlite(target.sqliteFile, opts);
  }
  if (opts.migrate ?? true) {
    try {
      await db.migrate();
    } catch (e) {
      await db.close().catch(() => {});
      throw e;
    }
  }
  return db;
}

// ---- SQLite

function openSqlite(file: string, opts: OpenOptions): Db {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // Token hashes, OAuth grants and the audit log: private to the server's
  // user from the first byte (SQLite gives its -wal and -shm files the same
  // mode). chmod too, for a file that exists with a looser mode.
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  fs.chmodSync(file, 0o600);
  const raw = new BetterSqlite3(file, { timeout: opts.busyTimeoutMs ?? 10_000 });
  // WAL: state writes (one per transition) never block readers.
  raw.pragma('journal_mode = WAL');
  raw.pragma('synchronous = NORMAL');
  // Enforced, as PostgreSQL does: a write that passes here passes there.
  raw.pragma('foreign_keys = ON');
  const kysely = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: new CachingSqlite(raw) }) });
  let closed: Promise<void> | undefined;
  const db: Db = {
    engine: 'sqlite',
    kysely,
    liveness: kysely,
    pool: undefined,
    where: file,
    migrate: () => migrateToLatest(db),
    close: () => (closed ??= kysely.destroy()),
  };
  return db;
}

/**
 * Kysely's SQLite connection prepares every statement it runs; better-sqlite3
 * statements are reusable, so keep the last few hundred by their SQL text
 * (Kysely's text for one query shape is always the same; values are bound).
 */
class CachingSqlite implements SqliteDatabase {
  private cache = new Map<string, SqliteStatement>();
  constructor(private readonly raw: BetterSqlite3.Database) {}

  prepare(text: string): SqliteStatement {
    let s = this.cache.get(text);
    if (!s) {
      s = this.raw.prepare(text) as unknown as SqliteStatement;
      if (this.cache.size >= 500) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(text, s);
    }
    return s;
  }

  close(): void {
    this.cache.clear();
    this.raw.close();
  }
}

/**
 * Transactions begin IMMEDIATE: the write lock is taken at BEGIN, so two
 * processes on one file queue on the busy timeout instead of one failing
 * with SQLITE_BUSY when both try to upgrade a read (a deferred BEGIN's
 * deadlock). With the adapter below, this is what makes concurrent
 * migration safe on SQLite.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly config: SqliteDialectConfig) {
    super(config);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.config);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/**
 * SQLite's DDL is transactional (ALTER TABLE and PRAGMA user_version
 * included), but Kysely's adapter says otherwise, so its Migrator would run
 * migrations outside a transaction, with no lock at all. Said truly, each
 * migration run is one IMMEDIATE transaction: all or nothing, and one
 * process at a time.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

// ---- PostgreSQL

/** int8 (bigint: the *_ms columns, identities, count(*)) as a number; one beyond 2^53 is an error, never a rounded value. */
function parseInt8(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`bigint ${v} does not fit a JavaScript number`);
  return n;
}

function newPool(url: string, max: number): Pool {
  const pg = pgModule();
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // Per pool, not pg.types (global): other users of pg in the process keep their parsers.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === pg.types.builtins.INT8 && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format as any)) as typeof pg.types.getTypeParser,
    },
  });
  // A client losing its connection (a server restart) must not crash the process: an idle one is the pool's
  // 'error'; one checked out between two statements of a transaction emits 'error' on itself, with nobody
  // listening (the pool listens only while it is idle) — that crashed replicas when PostgreSQL restarted
  // under load. The statement in flight fails to its caller; the pool drops the broken client on release.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

function openPostgres(url: string, opts: OpenOptions): Db {
  const pool = newPool(url, opts.poolSize ?? 10);
  const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const liveness = new Kysely<Database>({ dialect: new PostgresDialect({ pool: newPool(url, 2) }) });
  let closed: Promise<void> | undefined;
  const db: Db = {
    engine: 'postgres',
    kysely,
    liveness,
    pool,
    where: redact(url),
    migrate: () => migrateToLatest(db),
    close: () => (closed ??= Promise.all([kysely.destroy(), liveness.destroy()]).then(() => undefined)),
  };
  return db;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

/** Rows an INSERT/UPDATE/DELETE touched, as a number (Kysely reports a bigint). */
export function affected(n: bigint | undefined): number {
  return Number(n ?? 0n);
}

/**
 * A text column to ORDER BY, compared byte by byte on both engines (SQLite's
 * BINARY; PostgreSQL would otherwise use the database's locale, where
 * "a" < "B" < "b").
 */
export function textOrder(engine: Engine, column: string): RawBuilder<string> {
  return engine === 'postgres' ? sql<string>`${sql.ref(column)} collate "C"` : sql<string>`${sql.ref(column)}`;
}
