// The authorization server's secrets: the key that signs ID tokens (JWKS) and
// the keys that sign its cookies. Generated once into the data directory and
// reused, so a restart keeps browser sessions and ID token verification
// working. Access and refresh tokens are opaque database handles and do not
// depend on these keys.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { JWK } from './oidc';

export const KEYS_FILE = 'oauth-keys.json';

export interface OAuthKeys {
  /** Private signing keys for oidc-provider's `jwks` option. */
  jwks: { keys: JWK[] };
  /** Keygrip keys for oidc-provider's `cookies.keys` (first one signs). */
  cookieKeys: string[];
}

interface KeysFile extends OAuthKeys {
  version: 1;
  createdAt: string;
}

function generate(): KeysFile {
  // One EC P-256 key (ES256): small, fast, and enough for ID tokens.
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    version: 1,
    createdAt: new Date().toISOString(),
    jwks: { keys: [{ ...jwk, kid: randomUUID(), alg: 'ES256', use: 'sig' } as JWK] },
    cookieKeys: [randomBytes(32).toString('base64url')],
  };
}

function validate(file: string, data: unknown): OAuthKeys {
  const d = data as Partial<KeysFile> | null;
  const ok =
    d !== null &&
    typeof d === 'object' &&
    d.version === 1 &&
    Array.isArray(d.jwks?.keys) &&
    d.jwks.keys.length > 0 &&
    d.jwks.keys.every((k) => typeof k === 'object' && k !== null && typeof k.kty === 'string' && 'd' in k) &&
    Array.isArray(d.cookieKeys) &&
    d.cookieKeys.length > 0 &&
    d.cookieKeys.every((k) => typeof k === 'string' && k.length >= 32);
  if (!ok) {
    // Refuse rather than regenerate: a damaged key file is worth a look, and
    // silently replacing it would sign everyone out without saying why.
    throw new Error(`${file} is not a valid CMDOP OAuth key file; move it aside to generate new keys`);
  }
  return { jwks: { keys: d.jwks!.keys }, cookieKeys: d.cookieKeys! };
}

/**
 * Reads DIR/oauth-keys.json, creating it (mode 0600) on first use. Safe when
 * two processes start at once: the file appears atomically (link of a fully
 * written temp file) and the loser reads the winner's keys.
 */
export function loadOrCreateOAuthKeys(dataDir: string): OAuthKeys {
  const file = path.join(dataDir, KEYS_FILE);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(generate(), null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  // Someone (a restore, an editor) may have loosened the mode; these are secrets.
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(file, 0o600);

  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    data = null;
  }
  return validate(file, data);
}

/** For the store's oauth_keys row (control-plane/db/keys.ts): the same keys, the same checks. */
export { generate as generateOAuthKeys, validate as validateOAuthKeys };
export type { KeysFile as OAuthKeysRecord };
