// The console's Content-Security-Policy, in one place for both sides that
// send it: the control plane's web port on every console response
// (control-plane/transports/http/consoleStatic.ts), and the desktop app's
// main process on top of it, in case a proxy strips the header
// (app/main/security.ts). Pure string work: no Node APIs.

const BASE_CSP: ReadonlyArray<[string, string]> = [
  ['default-src', "'self'"],
  ['script-src', "'self'"],
  ['style-src', "'self' 'unsafe-inline'"], // xterm.js sets inline styles
  ['img-src', "'self' data:"],
  ['font-src', "'self' data:"],
  ['connect-src', "'self'"],
  ['worker-src', "'self' blob:"],
  ['frame-ancestors', "'none'"],
  ['base-uri', "'none'"],
  ['form-action', "'self'"],
  ['object-src', "'none'"],
];

/** Host header values safe to echo into a CSP source (no spaces, no ';'). */
const HOST_SOURCE = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function wsOriginOf(httpUrl: string): string | undefined {
  try {
    const u = new URL(httpUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    return `${u.protocol === 'https:' ? 'wss' : 'ws'}://${u.host}`;
  } catch {
    return undefined;
  }
}

/**
 * The console's CSP. CSP3 makes 'self' match the page's own ws:/wss: origin,
 * but browsers took years to agree (Safari before 15.4 did not), so the
 * gateway's origin is also spelled out: from the Host header the browser
 * sent (the origin the page was loaded from; validated so it cannot inject
 * directives) and from the issuer (the public URL, e.g. behind a TLS proxy).
 */
export function consoleCsp(host: string | undefined, tls: boolean, issuer?: string): string {
  const ws = new Set<string>();
  const fromIssuer = issuer ? wsOriginOf(issuer) : undefined;
  if (fromIssuer) ws.add(fromIssuer);
  if (host && HOST_SOURCE.test(host)) ws.add(`${tls ? 'wss' : 'ws'}://${host.toLowerCase()}`);
  return BASE_CSP.map(([k, v]) => (k === 'connect-src' && ws.size ? `${k} ${v} ${[...ws].join(' ')}` : `${k} ${v}`)).join('; ');
}
