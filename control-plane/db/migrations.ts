// Versioned schema changes, in code (nothing is read from disk at run time),
// applied in order by Kysely's Migrator, which records each in
// kysely_migration. Never edit a migration that has shipped: add one.
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Db, Engine } from './open';

export interface MigrationOutcome {
  /** Migrations this call applied, in order (empty when the store was up to date). */
  applied: string[];
}

/**
 * Column types that differ by engine, chosen here once. Times in ms since
 * the epoch outgrow a 32-bit integer, so they are bigint on PostgreSQL
 * (SQLite's INTEGER is 64-bit already); openDb reads bigint back as a number.
 */
function typesFor(engine: Engine) {
  return engine === 'postgres' ? ({ ms: 'bigint', bytes: 'bytea' } as const) : ({ ms: 'integer', bytes: 'blob' } as const);
}

/**
 * 1: the schema as the release before this layer left it (store.ts,
 * auth/store.ts and oauth/adapter.ts, with store.ts's PRAGMA user_version 1).
 *
 * A store file written by that code is adopted in place: every table and
 * index is created only if missing, under the same names, so its rows and
 * indexes stay as they are; a file from the release before sessions
 * survived restarts (user_version 0) first gets the columns that release's
 * migration 1 added. user_version is set to 1 so that release can still open
 * the file (a downgrade). On PostgreSQL there is nothing to adopt; IF NOT
 * EXISTS is harmless there.
 */
function baseline(engine: Engine): Migration {
  const t = typesFor(engine);
  const autoId = (db: Kysely<any>, table: string) => autoIdTable(engine, db, table);
  return {
    async up(db: Kysely<any>) {
      if (engine === 'sqlite') await adoptFirstRelease(db);

      // ---- sessions (store.ts)
      await db.schema
        .createTable('agents')
        .ifNotExists()
        .addColumn('agent_id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('capabilities', 'text', (c) => c.notNull())
        .addColumn('first_seen_ms', t.ms, (c) => c.notNull())
        .addColumn('last_seen_ms', t.ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('agents_name').ifNotExists().on('agents').column('name').execute();
      await db.schema
        .createTable('sessions')
        .ifNotExists()
        .addColumn('session_id', 'text', (c) => c.primaryKey())
        .addColumn('agent_id', 'text', (c) => c.notNull().references('agents.agent_id'))
        .addColumn('state', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .addColumn('updated_ms', t.ms, (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('resume_hash', t.bytes)
        .addColumn('deadline_ms', t.ms, (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('sessions_agent').ifNotExists().on('sessions').column('agent_id').execute();
      await db.schema.createIndex('sessions_state').ifNotExists().on('sessions').column('state').execute();
      await autoId(db, 'session_transitions')
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('from_state', 'integer', (c) => c.notNull())
        .addColumn('to_state', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('at_ms', t.ms, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('transitions_session').ifNotExists().on('session_transitions').column('session_id').execute();
      await db.schema
        .createTable('terminals')
        .ifNotExists()
        .addColumn('session_id', 'text', (c) => c.notNull())
        .addColumn('terminal_id', 'text', (c) => c.notNull())
        .addColumn('spec', t.bytes, (c) => c.notNull())
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .addColumn('cols', 'integer', (c) => c.notNull())
        .addColumn('rows', 'integer', (c) => c.notNull())
        .addColumn('operators', 'integer', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('terminals_pkey', ['session_id', 'terminal_id'])
        .execute();

      // ---- who may do what (auth/store.ts)
      await db.schema
        .createTable('users')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('password_hash', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('admin', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tokens')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'integer', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('machine', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('terminal_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .addColumn('expires_ms', t.ms, (c) => c.notNull().defaultTo(0))
        .addColumn('last_used_ms', t.ms, (c) => c.notNull().defaultTo(0))
        .addColumn('revoked_ms', t.ms, (c) => c.notNull().defaultTo(0))
        .addColumn('used_ms', t.ms, (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('tokens_user').ifNotExists().on('tokens').column('user_id').execute();
      await db.schema.createIndex('tokens_machine').ifNotExists().on('tokens').columns(['machine', 'kind']).execute();
      await db.schema
        .createTable('machines')
        .ifNotExists()
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('grants')
        .ifNotExists()
        .addColumn('machine', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
        .addColumn('role', 'integer', (c) => c.notNull())
        .addColumn('granted_by', 'text', (c) => c.notNull())
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .addPrimaryKeyConstraint('grants_pkey', ['machine', 'user_id'])
        .execute();
      await autoId(db, 'audit')
        .addColumn('at_ms', t.ms, (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('machine', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('terminal_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('mode', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('command_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('ok', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('detail', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('peer', 'text', (c) => c.notNull().defaultTo(''))
        // Its peer port's certificate (PEM), when it has TLS: the others pin it.
        .addColumn('peer_cert', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('audit_machine').ifNotExists().on('audit').columns(['machine', 'at_ms']).execute();
      await db.schema.createIndex('audit_at').ifNotExists().on('audit').column('at_ms').execute();

      // ---- oidc-provider's records (oauth/adapter.ts)
      await db.schema
        .createTable('oauth_models')
        .ifNotExists()
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text')
        .addColumn('user_code', 'text')
        .addColumn('uid', 'text')
        .addColumn('expires_at', t.ms) // epoch ms; NULL = no expiry
        .addColumn('consumed_at', t.ms) // epoch s, like oidc-provider's own 'consumed'
        .addPrimaryKeyConstraint('oauth_models_pkey', ['model', 'id'])
        .execute();
      const partial = (name: string, cols: string[], col: string) =>
        db.schema.createIndex(name).ifNotExists().on('oauth_models').columns(cols).where(sql.ref(col), 'is not', null).execute();
      await partial('oauth_models_grant', ['grant_id'], 'grant_id');
      await partial('oauth_models_user_code', ['model', 'user_code'], 'user_code');
      await partial('oauth_models_uid', ['model', 'uid'], 'uid');
      await partial('oauth_models_expires', ['expires_at'], 'expires_at');

      if (engine === 'sqlite') {
        const v = await userVersion(db);
        if (v < 1) await sql`pragma user_version = 1`.execute(db);
      }
    },
  };
}

/**
 * A file written by the first release (user_version 0) has sessions without
 * the columns its successor added; add them as that release's migration did.
 */
async function adoptFirstRelease(db: Kysely<any>): Promise<void> {
  const cols = await sql<{ name: string }>`select name from pragma_table_info('sessions')`.execute(db);
  if (cols.rows.length === 0) return; // a new file
  const have = new Set(cols.rows.map((r) => r.name));
  if (!have.has('name')) await sql`alter table sessions add column name text not null default ''`.execute(db);
  if (!have.has('resume_hash')) await sql`alter table sessions add column resume_hash blob`.execute(db);
  if (!have.has('deadline_ms')) await sql`alter table sessions add column deadline_ms integer not null default 0`.execute(db);
}

async function userVersion(db: Kysely<any>): Promise<number> {
  const r = await sql<{ user_version: number }>`pragma user_version`.execute(db);
  return r.rows[0]?.user_version ?? 0;
}

/**
 * 2: what replicas must share in cluster mode besides the tables above: the
 * OAuth signing and cookie keys (a file in the data directory on one
 * machine), and the rate limiter's counters (in memory on one machine;
 * RateLimiterPostgres's own layout, created here so replicas starting
 * together do not race to create it).
 */
function clusterState(engine: Engine): Migration {
  const t = typesFor(engine);
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('oauth_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('keys', 'text', (c) => c.notNull())
        .addColumn('created_ms', t.ms, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('rate_limits')
        .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expire', 'bigint')
        .execute();
    },
  };
}

/**
 * 3: replicas. Each control plane process is a replica with a heartbeat in
 * `replicas`; each live session has an owner (the replica holding its
 * agent's streams) and an epoch, raised by one whenever another replica
 * takes it over, so a replica that lost a session can tell (its writes,
 * made under the old epoch, change nothing: fencing).
 */
/** A table whose `id` the engine numbers. */
function autoIdTable(engine: Engine, db: Kysely<any>, table: string) {
  return engine === 'postgres'
    ? db.schema.createTable(table).ifNotExists().addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    : db.schema.createTable(table).ifNotExists().addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
}

function replicas(engine: Engine): Migration {
  const t = typesFor(engine);
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('replicas')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('peer', 'text', (c) => c.notNull().defaultTo(''))
        // Its peer port's certificate (PEM), when it has TLS: the others pin it.
        .addColumn('peer_cert', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('started_ms', t.ms, (c) => c.notNull())
        .addColumn('heartbeat_ms', t.ms, (c) => c.notNull())
        .execute();
      await db.schema.alterTable('sessions').addColumn('owner', 'text', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('sessions').addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      await db.schema.createIndex('sessions_owner').on('sessions').column('owner').execute();
      // Revocations as every replica polls them (cluster/revocations.ts): the bus is fast, the store is sure.
      await autoIdTable(engine, db, 'revocations')
        .addColumn('uid', 'text', (c) => c.notNull())
        .addColumn('at_ms', t.ms, (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .execute();
    },
  };
}

/** Every migration, by name; names sort in the order they apply. */
export function migrationsFor(engine: Engine): Record<string, Migration> {
  return {
    '0001_baseline': baseline(engine),
    '0002_cluster_state': clusterState(engine),
    '0003_replicas': replicas(engine),
  };
}

/** Any number; the same for every replica of every release. Kysely's Migrator takes its own lock inside ours. */
const PG_MIGRATION_LOCK = 0x636d646f70; // "cmdop"

/**
 * Brings the store to the newest schema. Safe when several processes start
 * together: on PostgreSQL the whole procedure (Kysely's bookkeeping tables
 * included) runs under a session-level pg_advisory_lock, so one replica
 * migrates and the others wait, then find nothing to do; on SQLite every
 * transaction begins IMMEDIATE (open.ts), so the file's write lock orders them.
 */
export async function migrateToLatest(db: Db): Promise<MigrationOutcome> {
  const provider: MigrationProvider = { getMigrations: async () => migrationsFor(db.engine) };
  const run = async (k: Kysely<any>): Promise<MigrationOutcome> => {
    const { error, results = [] } = await new Migrator({ db: k, provider }).migrateToLatest();
    if (error) {
      const failed = results.find((r) => r.status === 'Error')?.migrationName;
      const msg = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot migrate the store at ${db.where}${failed ? ` (migration ${failed})` : ''}: ${msg}`, { cause: error });
    }
    return { applied: results.filter((r) => r.status === 'Success').map((r) => r.migrationName) };
  };
  if (db.engine === 'sqlite') return run(db.kysely);
  return db.kysely.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(${sql.lit(PG_MIGRATION_LOCK)})`.execute(conn);
    try {
      return await run(conn);
    } finally {
      await sql`select pg_advisory_unlock(${sql.lit(PG_MIGRATION_LOCK)})`.execute(conn);
    }
  });
}
