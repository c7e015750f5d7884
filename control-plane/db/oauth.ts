// oidc-provider's storage on either engine: OAuthModelsRepo is the
// oauth_models table (one table for every model, keyed by (model, id), with
// the few columns the provider looks things up by), and createOidcAdapter
// builds the provider's adapter on it, as control-plane/oauth/adapter.ts
// does over the SQLite handle: the same hashing of bearer values, expiry,
// retention and revocation.
import { createHash } from 'node:crypto';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Adapter, AdapterPayload } from '../oauth/oidc';
import { affected, type Db, type Engine } from './open';
import type { Database } from './schema';

export interface OAuthModelRow {
  model: string;
  id: string;
  payload: string;
  grantId: string | null;
  userCode: string | null;
  uid: string | null;
  /** Epoch ms; null = no expiry. */
  expiresAt: number | null;
  /** Epoch s. */
  consumedAt: number | null;
}

/** What a lookup returns: enough to rebuild the payload. */
export interface FoundModel {
  id: string;
  payload: string;
  consumedAt: number | null;
}

export class OAuthModelsRepo {
  private readonly q: Kysely<Database>;
  private readonly engine: Engine;

  constructor(db: Db) {
    this.q = db.kysely;
    this.engine = db.engine;
  }

  async upsert(r: OAuthModelRow): Promise<void> {
    await this.q
      .insertInto('oauth_models')
      .values({
        model: r.model,
        id: r.id,
        payload: r.payload,
        grant_id: r.grantId,
        user_code: r.userCode,
        uid: r.uid,
        expires_at: r.expiresAt,
        consumed_at: r.consumedAt,
      })
      .onConflict((oc) =>
        oc.columns(['model', 'id']).doUpdateSet((eb) => ({
          payload: eb.ref('excluded.payload'),
          grant_id: eb.ref('excluded.grant_id'),
          user_code: eb.ref('excluded.user_code'),
          uid: eb.ref('excluded.uid'),
          expires_at: eb.ref('excluded.expires_at'),
          // a stale copy saved after consume() must not un-consume the row
          consumed_at: sql<number | null>`coalesce(oauth_models.consumed_at, excluded.consumed_at)`,
        })),
      )
      .execute();
  }

  /** The row unless it expired by `nowMs`. */
  async find(model: string, id: string, nowMs: number): Promise<FoundModel | undefined> {
    return this.findWhere(model, 'id', id, nowMs);
  }

  async findByUserCode(model: string, userCode: string, nowMs: number): Promise<FoundModel | undefined> {
    return this.findWhere(model, 'user_code', userCode, nowMs);
  }

  async findByUid(model: string, uid: string, nowMs: number): Promise<FoundModel | undefined> {
    return this.findWhere(model, 'uid', uid, nowMs);
  }

  private async findWhere(model: string, col: 'id' | 'user_code' | 'uid', value: string, nowMs: number): Promise<FoundModel | undefined> {
    const r = await this.q
      .selectFrom('oauth_models')
      .select(['id', 'payload', 'consumed_at'])
      .where('model', '=', model)
      .where(col, '=', value)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowMs)]))
      .limit(1)
      .executeTakeFirst();
    return r && { id: r.id, payload: r.payload, consumedAt: r.consumed_at };
  }

  /** Marks it consumed at `nowS` unless it already was. */
  async consume(model: string, id: string, nowS: number): Promise<void> {
    await this.q
      .updateTable('oauth_models')
      .set({ consumed_at: sql<number>`coalesce(consumed_at, ${nowS})` })
      .where('model', '=', model)
      .where('id', '=', id)
      .execute();
  }

  async destroy(model: string, id: string): Promise<void> {
    await this.q.deleteFrom('oauth_models').where('model', '=', model).where('id', '=', id).execute();
  }

  /** Every model at once, like oidc-provider's own memory adapter: when a grant goes, everything issued under it goes. */
  async revokeByGrantId(grantId: string): Promise<number> {
    return affected((await this.q.deleteFrom('oauth_models').where('grant_id', '=', grantId).executeTakeFirst()).numDeletedRows);
  }

  /** Deletes rows expired by `nowMs`; returns how many. */
  async sweep(nowMs: number): Promise<number> {
    const r = await this.q.deleteFrom('oauth_models').where('expires_at', 'is not', null).where('expires_at', '<=', nowMs).executeTakeFirst();
    return affected(r.numDeletedRows);
  }

  /**
   * Deletes everything an account holds, in one transaction: its grants and
   * every token or code issued under them, its browser sessions, and pending
   * interactions it signed in to. Returns the number of rows removed.
   */
  async revokeAccount(accountId: string): Promise<number> {
    const account = (path: string[]) => jsonText(this.engine, path);
    return this.q.transaction().execute(async (tx) => {
      let removed = 0;
      const grants = await tx.selectFrom('oauth_models').select('id').where('model', '=', 'Grant').where(account(['accountId']), '=', accountId).execute();
      for (const { id } of grants) {
        removed += affected((await tx.deleteFrom('oauth_models').where('grant_id', '=', id).executeTakeFirst()).numDeletedRows);
        removed += affected((await tx.deleteFrom('oauth_models').where('model', '=', 'Grant').where('id', '=', id).executeTakeFirst()).numDeletedRows);
      }
      removed += affected(
        (await tx.deleteFrom('oauth_models').where('model', '=', 'Session').where(account(['accountId']), '=', accountId).executeTakeFirst()).numDeletedRows,
      );
      removed += affected(
        (
          await tx
            .deleteFrom('oauth_models')
            .where('model', '=', 'Interaction')
            .where((eb) => eb.or([eb(account(['result', 'login', 'accountId']), '=', accountId), eb(account(['session', 'accountId']), '=', accountId)]))
            .executeTakeFirst()
        ).numDeletedRows,
      );
      return removed;
    });
  }
}

/** A string member of the JSON payload (null when absent): the only engine-specific SQL in the repositories. */
function jsonText(engine: Engine, path: string[]): RawBuilder<string | null> {
  for (const p of path) if (!/^[A-Za-z_]+$/.test(p)) throw new Error(`bad JSON path member ${p}`);
  return engine === 'postgres'
    ? sql<string | null>`(payload::jsonb #>> ${sql.lit(`{${path.join(',')}}`)})`
    : sql<string | null>`json_extract(payload, ${sql.lit(`$.${path.join('.')}`)})`;
}

// ---- the adapter

/**
 * Bearer credentials whose value is the row id. We store sha256(id) instead,
 * and drop the value from the stored payload, so a copy of the store (a
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

export interface OidcAdapterOptions {
  /** How often expired rows are deleted (ms). Default 60 s. */
  sweepIntervalMs?: number;
}

export interface OidcAdapterStore {
  /** Pass as `adapter` in the oidc-provider configuration. */
  factory: (model: string) => Adapter;
  /** Deletes expired rows now; returns how many. */
  sweep(): Promise<number>;
  /** See OAuthModelsRepo.revokeAccount. */
  revokeAccount(accountId: string): Promise<number>;
  /** Stops the sweep timer (the database belongs to the caller). */
  close(): void;
}

const nowS = () => Math.floor(Date.now() / 1000);

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

function toPayload(row: FoundModel | undefined, id: string): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as AdapterPayload;
  if (payload.jti === undefined) payload.jti = id; // hashed models: restore the value we dropped
  if (row.consumedAt !== null) payload.consumed = row.consumedAt;
  return payload;
}

/**
 * Expiry: oidc-provider passes each record's lifetime to upsert. A row past
 * its expires_at is treated as absent and swept by an unref'd timer, so a
 * restart or a crash never resurrects a dead token. The provider also checks
 * each payload's own `exp`, so the row lifetime is only a retention bound.
 */
export function createOidcAdapter(repo: OAuthModelsRepo, opts: OidcAdapterOptions = {}): OidcAdapterStore {
  class StoreAdapter implements Adapter {
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
      await repo.upsert({
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
      return toPayload(await repo.find(this.model, this.key(id), Date.now()), id);
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      const row = await repo.findByUserCode(this.model, userCode, Date.now());
      return row && toPayload(row, row.id);
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      const row = await repo.findByUid(this.model, uid, Date.now());
      return row && toPayload(row, row.id);
    }

    async consume(id: string): Promise<void> {
      await repo.consume(this.model, this.key(id), nowS());
    }

    async destroy(id: string): Promise<void> {
      await repo.destroy(this.model, this.key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await repo.revokeByGrantId(grantId);
    }
  }

  const sweep = () => repo.sweep(Date.now());
  const timer = setInterval(() => {
    // the database may be closing under us at shutdown; the next start sweeps
    sweep().catch(() => {});
  }, opts.sweepIntervalMs ?? 60_000);
  timer.unref();

  return {
    factory: (model: string) => new StoreAdapter(model),
    sweep,
    revokeAccount: (accountId: string) => repo.revokeAccount(accountId),
    close: () => clearInterval(timer),
  };
}
