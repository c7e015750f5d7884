// Stored sign-ins: one entry per control plane with the refresh token from
// the device flow and the latest access token, in a 0600 JSON file under the
// user's config dir. A lock file serialises refreshes: the refresh token
// rotates on use, and two CLI processes refreshing with the same one would
// make the second look like a replayed (stolen) token.
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateJson } from '../../lib/privateFile';

export interface StoredLogin {
  user: string;
  clientId: string;
  tokenEndpoint: string;
  revocationEndpoint: string;
  refreshToken: string;
  accessToken: string;
  accessExpiresMs: number;
}

export class Logins {
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
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${this.file}.lock`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
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
}
