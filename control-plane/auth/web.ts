// What the auth side gives the web port: accounts for the sign-in page, and
// the page a share link opens.
import type http from 'node:http';
import type { Accounts } from '../oauth/provider';
import { CSP, page } from '../oauth/pages';
import { verifyPassword } from './secrets';
import type { AuthStore } from './store';

export function accountsOf(store: AuthStore): Accounts {
  return {
    async authenticate(username, password) {
      const u = store.userByName(username);
      // A user without a password (the bootstrap admin, CI accounts) cannot sign in in a browser.
      if (!u || !u.passwordHash) return undefined;
      return (await verifyPassword(password, u.passwordHash)) ? { id: u.id, name: u.name } : undefined;
    },
    find(id) {
      const u = store.user(id);
      return u && { id: u.id, name: u.name };
    },
  };
}

/**
 * GET /share: where a share link lands. The token rides in the URL fragment,
 * which browsers never send, so this page cannot (and need not) see it; until
 * the web console serves this route, it says how to watch from a terminal.
 */
export function sharePage(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/share') return false;
  const html = page(
    'CMDOP: a shared terminal',
    `<p>This is a watch-only link to one terminal.</p>
     <p>To watch it from a terminal, take the part of the link after <code>#</code> (it starts with <code>cmdop_shr_</code>) and run:</p>
     <pre>CMDOP_TOKEN=cmdop_shr_... cmdop --server ADDRESS watch MACHINE</pre>`,
  );
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': CSP });
  res.end(html);
  return true;
}
