// oidc-provider storage in the control plane's SQLite file. oidc-provider asks
// for one adapter per model (AccessToken, RefreshToken, DeviceCode, Grant,
// Session, Interaction, ...); all of them share one table keyed by
// (model, id) with the few columns the provider looks things up by.
//
// Expiry: oidc-provider passes each record's lifetime to upsert. A row past
// its expires_at is treated as absent and swept by an unref'd timer, so a
// restart or a crash never resurrects a dead token. The provider also checks
// each payload's own `exp`, so the row lifetime is only a retention bound.
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import type { Adapter, AdapterPayload } from './oidc';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oauth_models (
  model TEXT NOT NULL,
  id TEXT NOT NULL,
  payload TEXT NOT NULL,
  grant_id TEXT,
  user_code TEXT,
  uid TEXT,
  expires_at INTEGER, -- epoch ms; NULL = no expiry (none of ours, but allowed)
  consumed_at INTEGER, -- epoch s, like oidc-provider's own 'consumed'
  PRIMARY KEY (model, id)
);
CREATE INDEX IF NOT EXISTS oauth_models_grant ON oauth_models(grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS oauth_models_user_code ON oauth_models(model, user_code) WHERE user_code IS NOT NULL;
CREATE INDEX IF NOT EXISTS oauth_models_uid ON oauth_models(model, uid) WHERE uid IS NOT NULL;
CREATE INDEX IF NOT EXISTS oauth_models_expires ON oauth_models(expires_at) WHERE expires_at IS NOT NULL;
`;

/**
 * Bearer credentials whose value is the row id. We store sha256(id) instead,
 * and drop the value from the stored payload, so a copy of cmdop.sqlite (a
 * backup, a support bundle) does not hand out live tokens. They are only
 * ever looked up by value (find/consume/destroy), never by user code or uid.
 * DeviceCode is not hashed: it is also found by user code and its payload
 * must carry its own id; it lives minutes, not weeks.
 */
const HASHED_MODELS = new Set(['AccessToken', 'RefreshToken']);

/**
 * RFC 8628 §3.5 wants `expired_token` for a device code that timed out, but a
 * row that is gone yields `invalid_grant` ("not found"). Device code rows are
 * therefore kept this long past their expiry; oidc-provider still sees the
 * payload's `exp` and answers `expired_token`.
 */
export const DEVICE_CODE_RETENTION_S = 10 * 60;

export interface SqliteAdapterOptions {
  /** How often expired rows are deleted (ms). Default 60 s. */
  sweepIntervalMs?: number;
}

export interface SqliteAdapterStore {
  /** Pass as `adapter` in the oidc-provider configuration. */
  factory: (model: string) => Adapter;
  /** Deletes expired rows now; returns how many. */
  sweep(): number;
  /**
   * Deletes everything an account holds: its grants and every token or code
   * issued under them, its browser sessions, and pending interactions it
   * signed in to. Returns the number of rows removed.
   */
  revokeAccount(accountId: string): number;
  /** Stops the sweep timer (the database handle belongs to the caller). */
  close(): void;
}

interface Row {
  id: string;
  payload: string;
  consumed_at: number | null;
}

const nowS = () => Math.floor(Date.now() / 1000);

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export function createSqliteAdapter(db: Database.Database, opts: SqliteAdapterOptions = {}): SqliteAdapterStore {
  db.exec(SCHEMA);

  const stmts = {
    upsert: db.prepare(`
      INSERT INTO oauth_models (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at)
      VALUES (@model, @id, @payload, @grantId, @userCode, @uid, @expiresAt, @consumedAt)
      ON CONFLICT (model, id) DO UPDATE SET
        payload = excluded.payload,
        grant_id = excluded.grant_id,
        user_code = excluded.user_code,
        uid = excluded.uid,
        expires_at = excluded.expires_at,
        -- a stale copy saved after consume() must not un-consume the row
        consumed_at = COALESCE(oauth_models.consumed_at, excluded.consumed_at)`),
    find: db.prepare<[string, string, number]>(
      `SELECT id, payload, consumed_at FROM oauth_models
       WHERE model = ? AND id = ? AND (expires_at IS NULL OR expires_at > ?)`,
    ),
    findByUserCode: db.prepare<[string, string, number]>(
      `SELECT id, payload, consumed_at FROM oauth_models
       WHERE model = ? AND user_code = ? AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`,
    ),
    findByUid: db.prepare<[string, string, number]>(
      `SELECT id, payload, consumed_at FROM oauth_models
       WHERE model = ? AND uid = ? AND (expires_at IS NULL OR expires_at > ?) LIMIT 1`,
    ),
    consume: db.prepare<[number, string, string]>(
      `UPDATE oauth_models SET consumed_at = COALESCE(consumed_at, ?) WHERE model = ? AND id = ?`,
    ),
    destroy: db.prepare<[string, string]>(`DELETE FROM oauth_models WHERE model = ? AND id = ?`),
    // All models at once, like oidc-provider's own memory adapter: when a
    // grant goes, everything issued under it goes.
    revokeByGrantId: db.prepare<[string]>(`DELETE FROM oauth_models WHERE grant_id = ?`),
    sweep: db.prepare<[number]>(`DELETE FROM oauth_models WHERE expires_at IS NOT NULL AND expires_at <= ?`),
    grantsOf: db.prepare<[string]>(
      `SELECT id FROM oauth_models WHERE model = 'Grant' AND json_extract(payload, '$.accountId') = ?`,
    ),
    deleteGrant: db.prepare<[string]>(`DELETE FROM oauth_models WHERE model = 'Grant' AND id = ?`),
    deleteSessions: db.prepare<[string]>(
      `DELETE FROM oauth_models WHERE model = 'Session' AND json_extract(payload, '$.accountId') = ?`,
    ),
    deleteInteractions: db.prepare<[string, string]>(
      `DELETE FROM oauth_models WHERE model = 'Interaction'
       AND (json_extract(payload, '$.result.login.accountId') = ? OR json_extract(payload, '$.session.accountId') = ?)`,
    ),
  };

  function toPayload(row: Row | undefined, id: string): AdapterPayload | undefined {
    if (!row) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    if (payload.jti === undefined) payload.jti = id; // hashed models: restore the value we dropped
    if (row.consumed_at !== null) payload.consumed = row.consumed_at;
    return payload;
  }

  class SqliteAdapter implements Adapter {
    private readonly hashed: boolean;

    constructor(private readonly model: string) {
      this.hashed = HASHED_MODELS.has(model);
    }

    private key(id: string): string {
      return this.hashed ? sha256(id) : id;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
      let stored: AdapterPayload = payload;
      if (this.hashed) {
        const { jti: _value, ...rest } = payload;
        stored = rest;
      }
      let expiresAt: number | null = null;
      if (typeof expiresIn === 'number' && Number.isFinite(expiresIn)) {
        const retention = this.model === 'DeviceCode' ? DEVICE_CODE_RETENTION_S : 0;
        expiresAt = (nowS() + expiresIn + retention) * 1000;
      }
      stmts.upsert.run({
        model: this.model,
        id: this.key(id),
        payload: JSON.stringify(stored),
        grantId: payload.grantId ?? null,
        userCode: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expiresAt,
        consumedAt: typeof payload.consumed === 'number' ? payload.consumed : payload.consumed ? nowS() : null,
      });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return toPayload(stmts.find.get(this.model, this.key(id), Date.now()) as Row | undefined, id);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const row = stmts.findByUserCode.get(this.model, userCode, Date.now()) as Row | undefined;
      return row && toPayload(row, row.id);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const row = stmts.findByUid.get(this.model, uid, Date.now()) as Row | undefined;
      return row && toPayload(row, row.id);
    }

    async consume(id: string): Promise<void> {
      stmts.consume.run(nowS(), this.model, this.key(id));
    }

    async destroy(id: string): Promise<void> {
      stmts.destroy.run(this.model, this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      stmts.revokeByGrantId.run(grantId);
    }
  }

  const sweep = () => stmts.sweep.run(Date.now()).changes;
  const timer = setInterval(() => {
    try {
      sweep();
    } catch {
      // the database may be closing under us at shutdown; the next start sweeps
    }
  }, opts.sweepIntervalMs ?? 60_000);
  timer.unref();

  const revokeAccount = db.transaction((accountId: string): number => {
    let removed = 0;
    for (const { id } of stmts.grantsOf.all(accountId) as { id: string }[]) {
      removed += stmts.revokeByGrantId.run(id).changes;
      removed += stmts.deleteGrant.run(id).changes;
    }
    removed += stmts.deleteSessions.run(accountId).changes;
    removed += stmts.deleteInteractions.run(accountId, accountId).changes;
    return removed;
  });

  return {
    factory: (model: string) => new SqliteAdapter(model),
    sweep,
    revokeAccount: (accountId: string) => revokeAccount(accountId),
    close: () => clearInterval(timer),
  };
}
