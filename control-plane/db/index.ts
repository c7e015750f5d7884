// The control plane's store: one set of queries (Kysely) over two engines.
//
// Engines
// - SQLite (the embedded default; `npm run up`, the desktop app): one file,
//   DATA_DIR/cmdop.sqlite, mode 0600, WAL, better-sqlite3 under Kysely's
//   SqliteDialect (transactions BEGIN IMMEDIATE, statements cached). It holds
//   the agents, sessions, transitions and terminals; users, tokens (hashed),
//   machines, grants and the audit log; and oidc-provider's records. The
//   OAuth signing keys stay in DATA_DIR/oauth-keys.json and the rate limiter
//   counts in memory: one process needs nothing more.
// - PostgreSQL (`cmdop server --store postgres://…`, several replicas): the
//   same tables, through a pg Pool, plus what replicas must share: the OAuth
//   signing and cookie keys (oauth_keys, SigningKeysRepo) and the rate
//   limiter's counters (rate_limits, createRateLimiter).
//   Both engines run every query the same way: numbers are numbers
//   (bigint is read back as a number, open.ts), bytes are Buffers (BLOB /
//   bytea), flags are 0/1, text sorts byte by byte. The one engine-specific
//   expression is reading a JSON member of an OAuth payload (oauth.ts).
//
// Migrations (migrations.ts)
// - Versioned, in code, applied by Kysely's Migrator when openDb opens the
//   store (kysely_migration records what ran). Never edit a shipped one.
// - 0001_baseline is the schema of the release before this layer. It creates
//   only what is missing, so a cmdop.sqlite written by that release is
//   adopted in place, rows and all (and a first-release file gets the
//   session columns it lacks); later migrations then apply as usual.
// - Replicas starting together: on PostgreSQL migrating runs under a
//   pg_advisory_lock (one migrates, the others wait and find nothing to
//   do); on SQLite the file's write lock orders them.
//
// Repositories: SessionsRepo (store.ts), AuthRepo (auth/store.ts, with its
// batched audit log), OAuthModelsRepo + createOidcAdapter (oauth/adapter.ts),
// SigningKeysRepo and createRateLimiter (cluster mode). Same method names
// and meaning as the synchronous code they replace, returning Promises;
// what was one better-sqlite3 transaction is one transaction here.
export { openDb, isPostgresUrl, type Db, type DbTarget, type Engine, type OpenOptions } from './open';
export { migrateToLatest, migrationsFor, type MigrationOutcome } from './migrations';
export type { Database } from './schema';
export { SessionsRepo, type AgentRow, type SessionRow, type OpenSessionRow, type TerminalRow, type TransitionRow } from './sessions';
export { AuthRepo, type AuthRepoOptions, type AuditInput, type GrantRow, type TokenRow, type UserRow } from './auth';
export {
  OAuthModelsRepo,
  createOidcAdapter,
  DEVICE_CODE_RETENTION_S,
  type FoundModel,
  type OAuthModelRow,
  type OidcAdapterOptions,
  type OidcAdapterStore,
} from './oauth';
export { SigningKeysRepo } from './keys';
export { isDuplicateKey, isTransientStoreError } from './transient';
export { createRateLimiter, type RateLimit } from './rateLimit';
