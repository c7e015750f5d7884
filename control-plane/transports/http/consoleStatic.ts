// The browser console's files on the web port: the production build of
// app/renderer (dist/renderer: index.html + assets/...), served in front of
// the OAuth routes (oauth/web.ts's extraHandler).
//
//   GET/HEAD /assets/NAME         a build file; hashed names are immutable
//   GET/HEAD /NAME.EXT            a top-level build file (favicon.ico ...)
//   GET/HEAD any other path       index.html (the console routes itself:
//                                 /, /callback, /share, /machines/...)
//
// except the paths the web port serves itself (OAuth, sign-in pages, the
// gateway), which this leaves alone. Every response here carries the
// console's CSP. No directory listing, no dot-files, nothing outside the
// build directory (checked after decoding and again after resolving links).
//
// Files go out through serve-static (content types, HEAD, Range, ETag and
// Last-Modified with 304s) and compression (gzip or brotli as the browser
// asks). What stays here is what no static server knows: which paths are
// the console's routes, the CSP built per request from a validated Host,
// the page shown while the console is not built, and links that leave the
// build (serve-static follows them).
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import compression from 'compression';
import serveStatic from 'serve-static';
import { page } from '../../oauth/pages';
import { consoleCsp } from '../../../protocol/consoleCsp';

/** dist/control-plane/transports/http/consoleStatic.js -> dist/renderer */
export const DEFAULT_CONSOLE_DIR = path.join(__dirname, '..', '..', '..', 'renderer');

/**
 * First path segments the web port answers itself: oidc-provider's routes
 * (/auth, /token[/revocation|/introspection], /device[/auth], /jwks, /me,
 * /session/end, /reg, /request, /backchannel, /.well-known/...), the sign-in
 * page (/interaction/:uid) and the WebSocket gateway (/ws). Disabled
 * features are listed too: the console must never shadow them.
 */
export const SERVER_ROUTES: ReadonlySet<string> = new Set([
  'auth',
  'token',
  'device',
  'interaction',
  'jwks',
  'me',
  'session',
  'reg',
  'request',
  'backchannel',
  '.well-known',
  'ws',
]);

/** Vite's output names: NAME-HASH.EXT, the hash 8+ base64url characters. */
const HASHED = /[-.][A-Za-z0-9_-]{8,}(\.[A-Za-z0-9]+){1,2}$/;

const IMMUTABLE = 'public, max-age=31536000, immutable';

export interface ConsoleStaticOptions {
  /** The built console; default dist/renderer next to the compiled server. */
  dir?: string;
  /** Whether this listener speaks https (then the page's socket is wss:). */
  tls: boolean;
  /** The OAuth issuer (the public URL), once the server knows it. */
  issuer?: () => string | undefined;
}

export type ConsoleHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean>;

function isInside(root: string, file: string): boolean {
  return file.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

function notBuiltPage(share: boolean): string {
  return page(
    'Console not built',
    `<p>This CMDOP control plane is running, but its web console has not been built, so there is nothing to show here yet.</p>
<p>Build it in the CMDOP checkout with <code>npm run build</code>, then reload this page.</p>
${
  share
    ? `<p>This is a watch-only link to one terminal. To watch it from a terminal instead, take the part of the link after <code>#</code> (it starts with <code>cmdop_shr_</code>) and run:</p>
<pre>CMDOP_TOKEN=cmdop_shr_... cmdop --server ADDRESS watch MACHINE</pre>`
    : '<p>The command line works without it: <code>npx cmdop --help</code>.</p>'
}`,
  );
}

/** The web port's handler for console routes; resolves false for paths it leaves to the OAuth server. */
export function createConsoleHandler(o: ConsoleStaticOptions): ConsoleHandler {
  const root = path.resolve(o.dir ?? DEFAULT_CONSOLE_DIR);
  // Compressed on the fly: the build is ~1 MB of text, loaded once per console window.
  const compress = compression({ threshold: 1024 });
  const files = serveStatic(root, {
    index: false,
    redirect: false,
    dotfiles: 'ignore',
    fallthrough: true,
    // Cache-Control is ours: hashed names are immutable, the rest revalidate.
    cacheControl: false,
    setHeaders: (res, file) => res.setHeader('Cache-Control', cacheControlOf(root, file)),
  });

  return async function consoleHandler(req, res) {
    const rawPath = (req.url ?? '/').split('?')[0];
    // '*' (OPTIONS *) and absolute-form targets are not console routes.
    if (!rawPath.startsWith('/')) return false;

    const headers: Record<string, string> = {
      'Content-Security-Policy': consoleCsp(req.headers.host, o.tls, o.issuer?.()),
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'X-Frame-Options': 'DENY',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
    };
    const send = (status: number, body: string | Buffer, extra: Record<string, string> = {}) => {
      const buf = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(status, { ...headers, 'Content-Length': String(buf.length), ...extra });
      res.end(req.method === 'HEAD' ? undefined : buf);
      return true;
    };
    const text = (status: number, message: string, extra: Record<string, string> = {}) =>
      send(status, `${message}\n`, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...extra });

    let decoded: string;
    try {
      decoded = decodeURIComponent(rawPath);
    } catch {
      return text(400, 'bad path');
    }
    const segments = decoded.split('/').slice(1);
    // No legitimate URL here has dot segments, backslashes or NULs (browsers
    // normalise dot segments before sending): refuse them outright, whatever
    // the route, encoded (%2e%2e, %2f) or not.
    if (decoded.includes('\0') || decoded.includes('\\') || segments.some((s) => s === '.' || s === '..')) {
      return text(400, 'bad path');
    }
    if (SERVER_ROUTES.has(segments[0])) return false;

    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed', { Allow: 'GET, HEAD' });

    const serveIndex = async () => {
      let html: Buffer;
      try {
        html = await fs.promises.readFile(path.join(root, 'index.html'));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
        return send(503, notBuiltPage(segments[0] === 'share'), {
          'Content-Type': 'text/html; charset=utf-8',
          'Cache-Control': 'no-store',
          'Retry-After': '30',
        });
      }
      return send(200, html, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    };

    /** `rel`: path segments under the build directory, as the URL names them. */
    const serveFile = async (rel: string[]) => {
      if (rel.some((s) => s === '' || s.startsWith('.'))) return text(404, 'not found');
      // A link inside the build pointing out of it is not served.
      try {
        const [real, realRoot] = await Promise.all([fs.promises.realpath(path.join(root, ...rel)), fs.promises.realpath(root)]);
        if (!isInside(realRoot, real)) return text(404, 'not found');
      } catch {
        return text(404, 'not found');
      }
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      await new Promise<void>((resolve, reject) => {
        compress(req as never, res as never, (e?: unknown) => {
          if (e) return reject(e);
          files(req, res, () => {
            // Not a file serve-static would send (a directory, say).
            text(404, 'not found');
            resolve();
          });
          res.once('close', resolve);
          res.once('finish', resolve);
        });
      });
      return true;
    };

    const last = segments[segments.length - 1];
    if (segments[0] === 'assets') return serveFile(segments);
    if (last === 'index.html' && segments.length === 1) return serveIndex();
    // favicon.ico, robots.txt ...: whatever the build put at its top level.
    if (segments.length === 1 && last.includes('.')) return serveFile(segments);
    // A deeper path naming a file is a missing file, not a console route.
    if (last.includes('.')) return text(404, 'not found');
    return serveIndex();
  };
}

/** Hashed build files (assets/NAME-HASH.EXT) never change; everything else is checked again. */
function cacheControlOf(root: string, file: string): string {
  const rel = path.relative(root, file).split(path.sep);
  return rel[0] === 'assets' && HASHED.test(rel[rel.length - 1]) ? IMMUTABLE : 'no-cache';
}
