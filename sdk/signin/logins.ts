// Stored sign-ins: one entry per control plane with the refresh token from
// the device flow and the latest access token. `cmdop login` keeps them in a
// 0600 JSON file under the user's config dir (Logins); the desktop app keeps
// them encrypted by the system keychain (app/main/secrets.ts) behind the same
// LoginStore interface. A lock serialises refreshes: the refresh token
// rotates on use, and two processes refreshing with the same one would make
// the second look like a replayed (stolen) token. freshLogin is the one
// refresher both use.
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateJson } from '../../lib/privateFile';
import { OAuthClient, OAuthError } from './oauthClient';

export interface StoredLogin {
  user: string;
  clientId: string;
  tokenEndpoint: string;
  revocationEndpoint: string;
  refreshToken: string;
  accessToken: string;
  accessExpiresMs: number;
}

/** Where sign-ins are kept, per control plane (the key is the server list's display form). */
export interface LoginStore {
  get(server: string): StoredLogin | undefined;
  set(server: string, login: StoredLogin | undefined): void;
  /** Runs `fn` holding the store's refresh lock. */
  locked<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Runs `fn` holding the lock file `lock` (created 0600 with O_EXCL; a stale
 * lock older than 30 s is broken, and so is one still held after 30 s).
 */
export async function withLockFile<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(path.dirname(lock), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 30_000 || Date.now() > deadline) fs.rmSync(lock, { force: true });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** `cmdop login`'s store: a 0600 JSON file (lib/paths.ts loginsFile) and `FILE.lock`. */
export class Logins implements LoginStore {
  constructor(readonly file: string) {}

  private readAll(): Record<string, StoredLogin> {
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new Error(`cannot read ${this.file}: ${(e as Error).message} (delete it and run \`cmdop login\` again)`);
    }
  }

  get(server: string): StoredLogin | undefined {
    return this.readAll()[server];
  }

  set(server: string, login: StoredLogin | undefined): void {
    const all = this.readAll();
    if (login) all[server] = login;
    else delete all[server];
    writePrivateJson(this.file, all);
  }

  /** Runs `fn` holding the lock (a stale lock older than 30 s is broken). */
  locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLockFile(`${this.file}.lock`, fn);
  }
}

/** Refresh this long before an access token expires. */
export const REFRESH_MARGIN_MS = 60_000;

/** A stored sign-in the server no longer honours (its refresh was refused with `invalid_grant`). */
export class LoginExpiredError extends Error {
  constructor(readonly server: string) {
    super(`your sign-in to ${server} expired or was revoked: run \`cmdop login\` again`);
    this.name = 'LoginExpiredError';
  }
}

export interface FreshLoginOptions {
  /** The OAuth client for the login's client id (with the pinned https.Agent for a self-signed server). */
  oauth(clientId: string): OAuthClient;
  /**
   * On `invalid_grant`, forget the login and throw LoginExpiredError (what
   * `cmdop login`'s file does). Otherwise the OAuthError is thrown and the
   * login kept.
   */
  forgetRevoked?: boolean;
  /** Told each time the login was refreshed, with the new one. */
  onRefreshed?(login: StoredLogin): void;
}

/**
 * The stored sign-in for `server` with an access token good for at least a
 * minute more: refreshed under the store's lock when it is close to expiry
 * (another process may have refreshed it meanwhile, so it is read again
 * under the lock). Undefined when there is no sign-in.
 */
export async function freshLogin(store: LoginStore, server: string, o: FreshLoginOptions): Promise<StoredLogin | undefined> {
  const first = store.get(server);
  if (!first) return undefined;
  if (first.accessExpiresMs - Date.now() > REFRESH_MARGIN_MS) return first;
  return store.locked(async () => {
    const cur = store.get(server);
    if (!cur) return undefined;
    if (cur.accessExpiresMs - Date.now() > REFRESH_MARGIN_MS) return cur;
    try {
      const t = await o.oauth(cur.clientId).refresh(cur.tokenEndpoint, cur.refreshToken);
      const next = { ...cur, accessToken: t.accessToken, refreshToken: t.refreshToken, accessExpiresMs: Date.now() + t.expiresInS * 1000 };
      store.set(server, next);
      o.onRefreshed?.(next);
      return next;
    } catch (e) {
      if (o.forgetRevoked && e instanceof OAuthError && e.error === 'invalid_grant') {
        store.set(server, undefined);
        throw new LoginExpiredError(server);
      }
      throw e;
    }
  });
}
