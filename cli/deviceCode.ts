// How the CLI shows a device-flow sign-in (sdk/signin/deviceLogin.ts): the
// URL and the code on stderr, and a browser opened where there is a desktop.
import { spawn } from 'node:child_process';
import type { DevicePresenter } from '../sdk';

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

/** Prints where to sign in, and opens a browser there when `browser` (login's --no-browser turns it off). */
export const printDeviceCode =
  (browser: boolean): DevicePresenter =>
  (d, server) => {
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
    if (browser) openBrowser(d.verificationUriComplete);
  };
