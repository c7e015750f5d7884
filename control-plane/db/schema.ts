// The store's tables as Kysely sees them: one interface per table, column
// names as in SQL. The same interface serves both engines: every *_ms (and
// the OAuth epoch columns) is a number on both (INTEGER on SQLite, bigint on
// PostgreSQL, read back as a number by the parser openDb installs), bytes are
// Buffers (BLOB / bytea), flags are integers 0/1.
import type { Generated } from 'kysely';

export interface AgentsTable {
  agent_id: string;
  name: string;
  /** JSON of Capabilities. */
  capabilities: string;
  first_seen_ms: number;
  last_seen_ms: number;
}

export interface SessionsTable {
  session_id: string;
  agent_id: string;
  /** SessionState. */
  state: number;
  reason: string;
  created_ms: number;
  updated_ms: number;
  name: Generated<string>;
  /** SHA-256 of the resume token; NULL in rows written before sessions survived restarts. */
  resume_hash: Buffer | null;
  deadline_ms: Generated<number>;
  /** The replica holding the agent's streams ('' none); the epoch rises with every takeover. */
  owner: Generated<string>;
  epoch: Generated<number>;
}

export interface ReplicasTable {
  id: string;
  /** Where other replicas reach it (--peer-listen), '' if nowhere. */
  peer: Generated<string>;
  /** Its peer port's certificate (PEM) with TLS, '' without: the others pin it. */
  peer_cert: Generated<string>;
  started_ms: number;
  heartbeat_ms: number;
}

export interface SessionTransitionsTable {
  id: Generated<number>;
  session_id: string;
  from_state: number;
  to_state: number;
  reason: string;
  at_ms: number;
}

export interface TerminalsTable {
  session_id: string;
  terminal_id: string;
  /** TerminalSpec, protobuf-encoded. */
  spec: Buffer;
  created_ms: number;
  cols: number;
  rows: number;
  operators: Generated<number>;
}

export interface UsersTable {
  id: string;
  name: string;
  password_hash: Generated<string>;
  /** 0 or 1. */
  admin: Generated<number>;
  created_ms: number;
}

export interface TokensTable {
  id: string;
  /** TokenKind. */
  kind: number;
  hash: string;
  name: Generated<string>;
  user_id: string;
  machine: Generated<string>;
  terminal_id: Generated<string>;
  created_ms: number;
  expires_ms: Generated<number>;
  last_used_ms: Generated<number>;
  revoked_ms: Generated<number>;
  used_ms: Generated<number>;
}

export interface MachinesTable {
  name: string;
  owner_id: string;
  created_ms: number;
}

export interface GrantsTable {
  machine: string;
  user_id: string;
  /** AttachMode. */
  role: number;
  granted_by: string;
  created_ms: number;
}

/** Revocations, for replicas that missed them on the bus (cluster/revocations.ts). */
export interface RevocationsTable {
  id: Generated<number>;
  /** The revocation's own id: each replica applies it once, whichever way it came. */
  uid: string;
  at_ms: number;
  /** The Revocation as JSON (core/access.ts). */
  body: string;
}

export interface AuditTable {
  id: Generated<number>;
  at_ms: number;
  actor: string;
  action: string;
  machine: Generated<string>;
  terminal_id: Generated<string>;
  mode: Generated<number>;
  command_id: Generated<string>;
  /** 0 or 1. */
  ok: Generated<number>;
  detail: Generated<string>;
  peer: Generated<string>;
  /** Its peer port's certificate (PEM) with TLS, '' without: the others pin it. */
  peer_cert: Generated<string>;
}

export interface OAuthModelsTable {
  model: string;
  id: string;
  /** JSON of the oidc-provider payload (without the value of a hashed model's id). */
  payload: string;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  /** Epoch ms; NULL = no expiry. */
  expires_at: number | null;
  /** Epoch s, like oidc-provider's own `consumed`. */
  consumed_at: number | null;
}

/** Migration 2: the OAuth signing and cookie keys, shared by every replica (one row). */
export interface OAuthKeysTable {
  id: string;
  /** JSON: { version: 1, jwks, cookieKeys }. */
  keys: string;
  created_ms: number;
}

/** Migration 2: rate-limiter-flexible's RateLimiterPostgres table (its own layout, column order included). */
export interface RateLimitsTable {
  key: string;
  points: number;
  expire: number | null;
}

export interface Database {
  agents: AgentsTable;
  sessions: SessionsTable;
  replicas: ReplicasTable;
  revocations: RevocationsTable;
  session_transitions: SessionTransitionsTable;
  terminals: TerminalsTable;
  users: UsersTable;
  tokens: TokensTable;
  machines: MachinesTable;
  grants: GrantsTable;
  audit: AuditTable;
  oauth_models: OAuthModelsTable;
  oauth_keys: OAuthKeysTable;
  rate_limits: RateLimitsTable;
}
