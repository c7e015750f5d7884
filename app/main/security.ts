// The desktop app's hardening, in one place so a reader (and
// electronegativity) sees every choice: renderers are sandboxed, isolated,
// without Node, and may only be the console of the control plane they were
// opened for. Anything else a page tries to open goes to the system browser
// (http/https only) or nowhere.
import { consoleCsp } from '../../protocol/consoleCsp';

/** BrowserWindow webPreferences for every console window. */
export function secureWebPreferences(preload: string) {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    experimentalFeatures: false,
    webviewTag: false,
    navigateOnDragDrop: false,
    spellcheck: false,
  } as const;
}

/** True when `url` is the console itself: same origin as the control plane's web address. */
export function isConsoleUrl(url: string, consoleOrigin: string): boolean {
  try {
    return new URL(url).origin === new URL(consoleOrigin).origin;
  } catch {
    return false;
  }
}

/** Console paths that may open in a window of their own (watch windows). */
export function isWatchWindowUrl(url: string, consoleOrigin: string): boolean {
  return isConsoleUrl(url, consoleOrigin) && new URL(url).pathname === '/watch';
}

/** A link the user clicked in a terminal (web-links addon): the system browser may open http(s) only. */
export function isExternalLinkAllowed(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/**
 * The CSP the desktop enforces on top of what the control plane sends (the
 * same policy, from the same function), in case a proxy strips the header.
 */
export function desktopConsoleCsp(consoleOrigin: string): string {
  const o = new URL(consoleOrigin);
  return consoleCsp(o.host, o.protocol === 'https:', o.origin);
}
