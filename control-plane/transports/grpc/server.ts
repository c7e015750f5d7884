// The gRPC port: a grpc-js server carrying AgentService, ClientService and
// AuthService, with the connection bounds of connections.ts, keepalive for
// agents behind NAT, and the HTTP/2 window the relay's throughput needs.
import * as grpc from '@grpc/grpc-js';
import type http2 from 'node:http2';
import {
  AgentServiceDefinition,
  AuthServiceDefinition,
  ClientServiceDefinition,
  DEFAULT_TIMEOUTS,
  HTTP2_WINDOW,
  MAX_AGENT_MESSAGE,
  toGrpcService,
} from '../../../protocol';
import { serverCredentials } from '../../../lib/tls/serverCertificate';
import type { Logger } from '../../../lib/logger';
import { ConnectionLimits, connectionOptions, guardHandshakes, http2Settings } from './connections';
import { timeUnaryCalls, type CallObserver } from './callTiming';

export interface GrpcServices {
  agent: grpc.UntypedServiceImplementation;
  client: grpc.UntypedServiceImplementation;
  auth: grpc.UntypedServiceImplementation;
}

export interface GrpcPort {
  readonly port: number;
  /** HOST:PORT as bound (grpcs://HOST:PORT with TLS): what clients pass as --server. */
  readonly address: string;
  /** Waits up to `graceMs` for calls to end, then cuts what is left. */
  close(graceMs: number): Promise<void>;
}

export async function startGrpcPort(opts: {
  host: string;
  port: number;
  tls?: { certPem: string; keyPem: string };
  limits: ConnectionLimits;
  services: GrpcServices;
  logger: Logger;
  /** Told how long each unary call took (the metrics' latency histogram); none: not timed. */
  observeCall?: CallObserver;
}): Promise<GrpcPort> {
  const { limits } = opts;
  const server = new grpc.Server({
    ...connectionOptions(limits),
    'grpc.max_receive_message_length': MAX_AGENT_MESSAGE,
    'grpc.max_send_message_length': MAX_AGENT_MESSAGE,
    // Agents ping every 25 s (keeps NAT mappings open); accept pings that
    // often, with or without calls, and ping back to find dead peers.
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 500,
    'grpc.http2.max_ping_strikes': 0,
    'grpc.keepalive_time_ms': DEFAULT_TIMEOUTS.keepaliveS * 1000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  // grpc-js has no server option for the HTTP/2 window a server advertises
  // (clients have 'grpc-node.flow_control_window'); it passes these options
  // to http2.createServer as they are.
  // noDelay: a keystroke's echo must not wait for Nagle's algorithm.
  // handshakeTimeout: a TLS connection must finish its handshake as soon as an HTTP/2 one (connections.ts).
  const http2Options = (
    server as unknown as { commonServerOptions: { settings?: http2.Settings; noDelay?: boolean; handshakeTimeout?: number } }
  ).commonServerOptions;
  http2Options.settings = { ...http2Options.settings, ...http2Settings(limits), initialWindowSize: HTTP2_WINDOW };
  http2Options.noDelay = true;
  http2Options.handshakeTimeout = limits.handshakeMs;
  const add = (def: grpc.ServiceDefinition, impl: grpc.UntypedServiceImplementation) => server.addService(def, timeUnaryCalls(def, impl, opts.observeCall));
  add(toGrpcService(AgentServiceDefinition), opts.services.agent);
  add(toGrpcService(ClientServiceDefinition), opts.services.client);
  add(toGrpcService(AuthServiceDefinition), opts.services.auth);

  const bindHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${opts.port}`, opts.tls ? serverCredentials(opts.tls) : grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`cannot listen on ${bindHost}:${opts.port}: ${err.message}`)) : resolve(p),
    ),
  );
  guardHandshakes(server, limits, opts.logger);
  return {
    port,
    address: opts.tls ? `grpcs://${bindHost}:${port}` : `${bindHost}:${port}`,
    close: (graceMs) => closeServer(server, graceMs),
  };
}

/** Waits up to `graceMs` for a server's calls to end, then cuts what is left. */
export function closeServer(server: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
