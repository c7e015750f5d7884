// The metrics port (`cmdop server --metrics-listen HOST:PORT`): a plain HTTP
// server on that address only, answering GET /metrics in the Prometheus
// text format and nothing else. It is off unless asked for and never shares
// the public ports: whoever can reach it learns machine counts and traffic,
// so it belongs on loopback or an operations network.
import http from 'node:http';
import type { Registry as PromRegistry } from 'prom-client';
import type { Logger } from '../../../lib/logger';

export interface MetricsPort {
  /** http://HOST:PORT/metrics as bound. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsPort(opts: { host: string; port: number; registry: PromRegistry; logger: Logger }): Promise<MetricsPort> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET /metrics\n');
      return;
    }
    opts.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': opts.registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (e: Error) => {
        opts.logger.warn({ err: e.message }, 'metrics could not be collected');
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics could not be collected: ${e.message}\n`);
      },
    );
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}/metrics`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
