// What the auth side gives the web port: accounts for the sign-in page. (The
// page a share link opens, /share, is the console's: transports/http/consoleStatic.ts.)
import type { Accounts } from '../oauth/provider';
import { verifyPassword } from './secrets';
import type { AuthRepo } from '../db';

export function accountsOf(store: AuthRepo): Accounts {
  return {
    async authenticate(username, password) {
      const u = await store.userByName(username);
      // A user without a password (the bootstrap admin, CI accounts) cannot sign in in a browser.
      if (!u || !u.passwordHash) return undefined;
      return (await verifyPassword(password, u.passwordHash)) ? { id: u.id, name: u.name } : undefined;
    },
    async find(id) {
      const u = await store.user(id);
      return u && { id: u.id, name: u.name };
    },
  };
}
