// The authorization server's secrets for cluster mode: every replica must
// sign ID tokens and cookies with the same keys, so they live in one row of
// the store (oauth_keys) instead of DATA_DIR/oauth-keys.json. The first
// replica to start writes them; the others, starting together, read the
// winner's (INSERT ... ON CONFLICT DO NOTHING, then SELECT). Whoever can
// read the database can read them, as with the file: protect both alike.
import type { Kysely } from 'kysely';
import { generateOAuthKeys, validateOAuthKeys, type OAuthKeys, type OAuthKeysRecord } from '../oauth/keys';
import type { Db } from './open';
import type { Database } from './schema';

const ROW = 'oauth';

export class SigningKeysRepo {
  private readonly q: Kysely<Database>;
  private readonly where: string;

  constructor(db: Db) {
    this.q = db.kysely;
    this.where = db.where;
  }

  /**
   * The keys, created on first use. `initial` makes them (default: new
   * ones); pass the keys of an oauth-keys.json to carry a single machine's
   * sign-ins over to the cluster.
   */
  async loadOrCreate(initial: () => OAuthKeys = generateOAuthKeys): Promise<OAuthKeys> {
    const existing = await this.load();
    if (existing) return existing;
    const k = initial();
    const record: OAuthKeysRecord = { version: 1, createdAt: new Date().toISOString(), jwks: k.jwks, cookieKeys: k.cookieKeys };
    await this.q
      .insertInto('oauth_keys')
      .values({ id: ROW, keys: JSON.stringify(record), created_ms: Date.now() })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    // Ours, or the replica's that got there first.
    return (await this.load())!;
  }

  /** The stored keys, if any. A damaged row is refused, never replaced: that would sign everyone out without saying why. */
  async load(): Promise<OAuthKeys | undefined> {
    const r = await this.q.selectFrom('oauth_keys').select('keys').where('id', '=', ROW).executeTakeFirst();
    if (!r) return undefined;
    let data: unknown;
    try {
      data = JSON.parse(r.keys);
    } catch {
      data = null;
    }
    try {
      return validateOAuthKeys('oauth_keys', data);
    } catch {
      throw new Error(`the oauth_keys row in ${this.where} is not a valid CMDOP OAuth key record; delete it to generate new keys`);
    }
  }
}
