// The web port: one HTTP(S) server of the control plane's own, on which the
// parts that speak HTTP are mounted as routes, in order: health checks, the
// console's file transfers, the console's pages, and last the OAuth server
// (sign-in pages, device flow, tokens), which answers whatever is left.
// WebSocket upgrades go to the gateway (/ws). Until the routes are mounted
// (the OAuth issuer needs the bound port first) every request is told to
// come back in a moment.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../../lib/logger';

/** A route: true when it has taken the request (a rejection becomes a 500). */
export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
/** A WebSocket upgrade handler: false when the path is not its own. */
export type UpgradeRoute = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;

export interface WebServer {
  /** http(s)://HOST:PORT as bound. */
  readonly url: string;
  readonly port: number;
  readonly scheme: 'http' | 'https';
  /** Mounts the routes (tried in order) and the upgrade handlers; `fallback` takes what none took. */
  mount(routes: Route[], fallback: (req: http.IncomingMessage, res: http.ServerResponse) => void, upgrades: UpgradeRoute[]): void;
  close(): Promise<void>;
}

export interface WebServerOptions {
  listen: { host: string; port: number };
  tls?: { certPem: string; keyPem: string };
  /** /readyz answers 200 only while this says so (false while draining, or without the store). */
  ready: () => boolean;
  logger: Logger;
}

const plain = (res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
  res.end(`${body}\n`);
};

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  let routes: Route[] = [];
  let fallback: ((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined;
  let upgrades: UpgradeRoute[] = [];

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    // For load balancers and supervisors: alive (the process answers), and ready (it should get traffic).
    if (path === '/healthz') return plain(res, 200, 'ok');
    if (path === '/readyz') return opts.ready() && fallback ? plain(res, 200, 'ready') : plain(res, 503, 'not ready');
    if (!fallback) return plain(res, 503, 'the server is starting; try again in a moment', { 'Retry-After': '1' });
    const last = fallback;
    void (async () => {
      for (const r of routes) if (await r(req, res)) return;
      last(req, res);
    })().catch((err: unknown) => {
      opts.logger.warn({ err }, 'web: request failed');
      if (!res.headersSent) plain(res, 500, 'Something went wrong on our side. Try again.');
      else res.destroy();
    });
  };
  const server = opts.tls ? https.createServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, onRequest) : http.createServer(onRequest);
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!upgrades.some((u) => u(req, socket, head))) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
  });
  // Pages and token calls are small, and file parts are sized to take ~3 s
  // (fileUploads.ts): do not let slow clients hold sockets.
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const scheme = opts.tls ? 'https' : 'http';
  const host = opts.listen.host.includes(':') ? `[${opts.listen.host}]` : opts.listen.host;
  let closed: Promise<void> | undefined;
  return {
    url: `${scheme}://${host}:${port}`,
    port,
    scheme,
    mount(r, f, u) {
      routes = r;
      fallback = f;
      upgrades = u;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
