// `cmdop login`'s flow, shared with `cmdop agent` when a person enrolls it:
// ask the control plane where to sign in, start the device authorization,
// show the URL and code (and open a browser where there is one), poll.
import { spawn } from 'node:child_process';
import type { CmdopClient } from '../../sdk';
import type { Connection } from '../connection';
import { oauthClientFor } from '../connection';
import type { StoredLogin } from './logins';
import type { DeviceAuthorization } from './oauthClient';

/** Opens a URL in the desktop's browser when there is a desktop; says nothing otherwise. */
function openBrowser(url: string): void {
  const cmd =
    process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' :
    process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : undefined;
  if (!cmd || process.env.CMDOP_NO_BROWSER) return;
  const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => {}); // no browser: the URL is printed anyway
  child.unref();
}

/** Shows a person where to sign in; the default prints it and opens a browser. */
export type DevicePresenter = (d: DeviceAuthorization, server: string) => void;

const printCode: DevicePresenter = (d, server) =>
  process.stderr.write(
    [
      '',
      `To sign in to ${server}, open`,
      `    ${d.verificationUri}`,
      `and enter the code`,
      `    ${d.userCode}`,
      `(or open ${d.verificationUriComplete})`,
      `The code expires in ${Math.round(d.expiresInS / 60)} minutes. Waiting...`,
      '',
    ].join('\n'),
  );

export async function deviceLogin(
  conn: Connection,
  anonymous: CmdopClient,
  o: { browser: boolean; present?: DevicePresenter },
): Promise<StoredLogin> {
  const info = await anonymous.auth.serverInfo();
  if (!info.deviceAuthorizationEndpoint) throw new Error(`${conn.address.display} does not offer sign-in (no OAuth endpoints)`);
  const oauth = oauthClientFor(conn, info.clientId);
  const d = await oauth.startDeviceAuthorization(info.deviceAuthorizationEndpoint);
  if (o.present) o.present(d, conn.address.display);
  else {
    printCode(d, conn.address.display);
    if (o.browser) openBrowser(d.verificationUriComplete);
  }
  const t = await oauth.pollDeviceToken(info.tokenEndpoint, d);
  return {
    user: '',
    clientId: info.clientId,
    tokenEndpoint: info.tokenEndpoint,
    revocationEndpoint: info.revocationEndpoint,
    refreshToken: t.refreshToken,
    accessToken: t.accessToken,
    accessExpiresMs: Date.now() + t.expiresInS * 1000,
  };
}
