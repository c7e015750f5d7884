// Bounds on the gRPC port's connections, so that whoever can reach the port
// cannot hold the control plane's memory with connections or streams that
// do nothing (measured before these bounds: 10,000 silent streams on one
// connection took it from 98 to 203 MB, and 300 connections that sent only
// the HTTP/2 preface were all still open 20 s later).
//
// - streams per connection and the header list size: HTTP/2 SETTINGS the
//   server advertises (grpc-js and Node would otherwise advertise 2^32-1);
// - a connection that holds no stream for CONNECTION_IDLE_MS is sent GOAWAY
//   (grpc-js's max_connection_idle; a client's channel reconnects by itself
//   on its next call);
// - a connection that has not finished the HTTP/2 handshake (the client's
//   SETTINGS) within HANDSHAKE_TIMEOUT_MS is destroyed. grpc-js has no option
//   for this, nor a public hook on its sessions, so `guardHandshakes` reaches
//   its http2 servers; if a grpc-js upgrade moves them it says so in the log
//   instead of failing.
import type http2 from 'node:http2';
import type { Server, ServerOptions } from '@grpc/grpc-js';
import type { Logger } from '../../../lib/logger';

export interface ConnectionLimits {
  /** Concurrent streams one connection may hold. */
  maxStreams: number;
  /** Largest header list (metadata) a request may carry, bytes. */
  maxHeaderListBytes: number;
  /** A connection without a stream this long is closed, ms. */
  idleMs: number;
  /** A connection must finish the HTTP/2 handshake within this, ms. */
  handshakeMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  // An agent holds one stream per connection (and its file stream one more);
  // a CLI or SDK process one per terminal it attaches to or transfer it runs.
  maxStreams: 256,
  // Bearer tokens are at most 4,096 characters (auth/access.ts).
  maxHeaderListBytes: 16 * 1024,
  idleMs: 20_000,
  handshakeMs: 10_000,
};

/** The grpc-js server options that carry the limits it has options for. */
export function connectionOptions(l: ConnectionLimits): Partial<ServerOptions> {
  return {
    'grpc.max_concurrent_streams': l.maxStreams,
    'grpc.max_connection_idle_ms': l.idleMs,
  };
}

/** HTTP/2 settings grpc-js has no option for (it passes its commonServerOptions to http2.createServer). */
export function http2Settings(l: ConnectionLimits): http2.Settings {
  return { maxConcurrentStreams: l.maxStreams, maxHeaderListSize: l.maxHeaderListBytes };
}

/** After bindAsync: destroys connections that do not finish the HTTP/2 handshake in time. */
export function guardHandshakes(server: Server, l: ConnectionLimits, logger: Logger): void {
  const servers = (server as unknown as { http2Servers?: Map<http2.Http2Server, unknown> }).http2Servers;
  if (!(servers instanceof Map)) {
    logger.warn('grpc-js internals changed: connections that never finish the HTTP/2 handshake are not timed out');
    return;
  }
  for (const s of servers.keys()) {
    s.on('session', (session: http2.ServerHttp2Session) => {
      const timer = setTimeout(() => {
        logger.debug({ peer: session.socket?.remoteAddress }, 'no HTTP/2 handshake in time: connection closed');
        session.destroy();
      }, l.handshakeMs);
      timer.unref();
      session.once('remoteSettings', () => clearTimeout(timer));
      session.once('close', () => clearTimeout(timer));
    });
  }
}
