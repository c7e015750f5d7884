// `cmdop login`, `logout` and `whoami`, run (their options are in ../commands/login.ts).
import type { Command } from 'commander';
import { CmdopClient, Logins, OAuthError, deviceLogin, oauthClientFor, tokenFor } from '../../sdk';
import { TokenKind } from '../../protocol';
import { fail } from '../output';
import { clientFor, connectionTo } from '../connection';
import { printDeviceCode } from '../deviceCode';
import { serverAddress } from '../server-address';
import { loginsFile } from '../../lib/paths';

export async function login(o: { browser: boolean }, cmd: Command): Promise<void> {
  const conn = await connectionTo(serverAddress(cmd)).catch((e) => fail(e.message));
  const anonymous = new CmdopClient({ server: conn.address.display, credentials: conn.credentials, channelOptions: conn.channelOptions });
  const login = await deviceLogin(conn, anonymous, { present: printDeviceCode(o.browser) }).catch((e) =>
    fail(e instanceof OAuthError && e.error === 'access_denied' ? 'the sign-in was denied on the verification page'
      : e instanceof OAuthError && e.error === 'expired_token' ? 'the code expired before it was approved: run `cmdop login` again'
      : e.message),
  );
  anonymous.setToken(login.accessToken);
  const me = await anonymous.auth.whoami().catch((e) => fail(e.message));
  anonymous.close();
  new Logins(loginsFile()).set(conn.address.display, { ...login, user: me.user });
  process.stdout.write(`Signed in to ${conn.address.display} as ${me.user}.\n`);
}

export async function logout(cmd: Command): Promise<void> {
  const conn = await connectionTo(serverAddress(cmd)).catch((e) => fail(e.message));
  const logins = new Logins(loginsFile());
  const login = logins.get(conn.address.display);
  if (!login) fail(`not signed in to ${conn.address.display}`);
  let note = '';
  await oauthClientFor(conn, login.clientId)
    .revoke(login.revocationEndpoint, login.refreshToken)
    .catch((e: Error) => (note = ` (the server could not be told: ${e.message}; the token expires on its own)`));
  logins.set(conn.address.display, undefined);
  process.stdout.write(`Signed out of ${conn.address.display}${note}.\n`);
}

export async function whoami(o: { json?: boolean }, cmd: Command): Promise<void> {
  const conn = await connectionTo(serverAddress(cmd)).catch((e) => fail(e.message));
  const src = await tokenFor(conn).catch((e) => fail(e.message));
  const client = await clientFor(cmd, { token: src.token });
  const me = await client.auth.whoami().catch((e) => fail(e.message));
  client.close();
  if (o.json) {
    process.stdout.write(JSON.stringify({ ...me, kind: TokenKind[me.kind], server: conn.address.display, source: src.source }, null, 2) + '\n');
    return;
  }
  const scope = me.kind === TokenKind.SHARE ? ` (watch-only: ${me.machine}/${me.terminalId})` : me.machine ? ` (machine ${me.machine})` : '';
  const expiry = me.expiresMs ? `, expires ${new Date(me.expiresMs).toISOString()}` : '';
  process.stdout.write(
    `${me.user}${me.admin ? ' (admin)' : ''} on ${conn.address.display}\n` +
      `  token: ${TokenKind[me.kind]}${scope} ${me.tokenId}${expiry}, from ${src.source}\n`,
  );
}
