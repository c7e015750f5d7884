// The owner's side of the peer link: PeerService on this replica's
// --peer-listen address. Other replicas forward their clients' calls for
// machines whose agents are here; each call is admitted by the cluster
// secret and served by the same handlers as a client's own call
// (transports/grpc/clientService.ts), under the caller the forwarding
// replica verified. A call forwarded here is never forwarded again: a
// machine that moved meanwhile answers UNAVAILABLE, and the client retries.
import * as grpc from '@grpc/grpc-js';
import { HTTP2_WINDOW, MAX_AGENT_MESSAGE, PeerServiceDefinition, toGrpcService } from '../../../protocol';
import type { ClientCalls } from '../../core/clientCalls';
import type { Logger } from '../../../lib/logger';
import { machineCallHandlers } from '../grpc/clientService';
import { grpcUnary } from '../grpc/unary';
import { closeServer } from '../grpc/server';
import { timeUnaryCalls, type CallObserver } from '../grpc/callTiming';
import type { Authenticator } from '../grpc/streams';
import { forwardedContext } from './caller';
import { serverCredentials } from '../../../lib/tls/serverCertificate';

export interface PeerPort {
  /** HOST:PORT as bound: what this replica records in the store for the others. */
  readonly address: string;
  close(graceMs: number): Promise<void>;
}

export async function startPeerPort(opts: {
  host: string;
  port: number;
  secret: string;
  /** The replica's own certificate: with it, the peer port speaks TLS and the others pin this certificate (from the store). */
  tls?: { certPem: string; keyPem: string };
  calls: ClientCalls;
  logger: Logger;
  /** Told how long each unary call took (the metrics' latency histogram). */
  observeCall?: CallObserver;
}): Promise<PeerPort> {
  const auth: Authenticator = {
    authenticate: async (call) => forwardedContext(call.metadata, opts.secret),
    refused: (action, call, e) => opts.logger.warn({ action, peer: call.getPeer(), err: e.message }, 'a call on the peer port was refused'),
  };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_AGENT_MESSAGE,
    'grpc.max_send_message_length': MAX_AGENT_MESSAGE,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 500,
    'grpc.http2.max_ping_strikes': 0,
  });
  // As on the client port (transports/grpc/server.ts): the window the relay's throughput needs, and no Nagle delay on echoes.
  const http2Options = (server as unknown as { commonServerOptions: { settings?: Record<string, unknown>; noDelay?: boolean } }).commonServerOptions;
  http2Options.settings = { ...http2Options.settings, initialWindowSize: HTTP2_WINDOW };
  http2Options.noDelay = true;
  const def = toGrpcService(PeerServiceDefinition);
  server.addService(
    def,
    timeUnaryCalls(def, { ...machineCallHandlers(opts.calls, auth), listMachines: grpcUnary(auth, 'list', opts.calls.heldMachines) }, opts.observeCall),
  );
  const bindHost = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${opts.port}`, opts.tls ? serverCredentials(opts.tls) : grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(new Error(`cannot listen for peers on ${bindHost}:${opts.port}: ${err.message} (choose it with --peer-listen)`)) : resolve(p),
    ),
  );
  return {
    address: `${bindHost}:${port}`,
    close: (graceMs) => closeServer(server, graceMs),
  };
}
