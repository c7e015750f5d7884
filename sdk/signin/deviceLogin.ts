// Signing in with the device flow (RFC 8628), as `cmdop login` does, and as
// `cmdop agent` and the desktop app do when a person enrolls a machine: ask
// the control plane where to sign in, start the device authorization, hand
// the URL and code to the caller to show, poll until approved. Showing them
// (printing, opening a browser, a notification) is the caller's part: the
// CLI's is cli/deviceCode.ts.
import type { CmdopClient } from '../client';
import type { Connection } from '../connect';
import { oauthClientFor } from '../connect';
import type { StoredLogin } from './logins';
import type { DeviceAuthorization } from './oauthClient';

/** Shows a person where to sign in (the URL and the code); `server` is the control plane's display address. */
export type DevicePresenter = (d: DeviceAuthorization, server: string) => void;

/**
 * Signs a person in: resolves with the new sign-in (its `user` is empty;
 * ask whoami with its access token). Rejects with OAuthError `access_denied`
 * or `expired_token` when the code is denied or not approved in time.
 */
export async function deviceLogin(
  conn: Connection,
  anonymous: CmdopClient,
  o: { present: DevicePresenter },
): Promise<StoredLogin> {
  const info = await anonymous.auth.serverInfo();
  if (!info.deviceAuthorizationEndpoint) throw new Error(`${conn.address.display} does not offer sign-in (no OAuth endpoints)`);
  const oauth = oauthClientFor(conn, info.clientId);
  const d = await oauth.startDeviceAuthorization(info.deviceAuthorizationEndpoint);
  o.present(d, conn.address.display);
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
