// The forwarding side of the peer link: a client's call for a machine whose
// agent is on another replica goes to that replica's PeerService, with the
// caller this replica verified (caller.ts). One channel per replica,
// shared by every forwarded call to it.
//
// Output comes back as the owner encoded it and is written to the client
// as those same bytes (no decode, no re-encode; peekOutputRange reads the
// range the console's gateway counts). Flow control holds end to end: a
// client that stops reading pauses the peer stream, HTTP/2 stops the
// owner's writes, and the owner's relay stops acknowledging the agent,
// which stops reading the PTY.
import * as grpc from '@grpc/grpc-js';
import {
  ClientMessage,
  DownloadMessage,
  DownloadRequest,
  Encoded,
  HTTP2_WINDOW,
  MAX_AGENT_MESSAGE,
  PeerServiceDefinition,
  ServerMessage,
  UploadMessage,
  UploadReply,
  peekOutputRange,
  toGrpcService,
} from '../../../protocol';
import { ApiError, errorCode, errorReason, type ReplicaRef } from '../../core/errors';
import type { CallContext, ClientStream, ForwardedUnary, Forwarder, Inbound } from '../../core/ports';
import { forwardMetadata } from './caller';
import { CORE_ERROR_HEADER } from '../grpc/status';
import { grpcChannelCredentials, grpcChannelOptions, type Trust } from '../../../lib/tls/channelCredentials';
import { fingerprintOf } from '../../../lib/tls/fingerprint';

const base = toGrpcService(PeerServiceDefinition);
// Attach output stays as it was encoded (see above).
const definition = { ...base, attach: { ...base.attach, responseDeserialize: (b: Buffer) => new Encoded(b, peekOutputRange(b)) } };
const PeerClient = grpc.makeGenericClientConstructor(definition, 'PeerService');
type PeerClient = InstanceType<typeof PeerClient>;

/** A failure on the peer link as the core's error: the owner's own, or the link's. */
function apiError(e: grpc.ServiceError, to: ReplicaRef): ApiError {
  // The owner's own errors carry their code (transports/grpc/status.ts); a status without one is the link's.
  if (!e.metadata?.get(CORE_ERROR_HEADER).length) {
    return new ApiError('UNAVAILABLE', `the control plane replica holding this machine (${to.peer}) cannot be reached: ${e.details}; try again`);
  }
  const reason = e.metadata?.get('cmdop-reason')[0];
  return new ApiError(errorCode(grpc.status[e.code] ?? ''), e.details || e.message, errorReason(typeof reason === 'string' ? reason : ''));
}

export class PeerForwarder implements Forwarder {
  private readonly clients = new Map<string, PeerClient>();

  constructor(
    /** This replica's id: the owner tells its audit and logs who forwarded. */
    private readonly replica: string,
    private readonly secret: string,
  ) {}

  private client(to: ReplicaRef): PeerClient {
    // A replica started again on the same address may have another certificate: one channel per (address, certificate).
    const key = `${to.peer} ${to.peerCert ? fingerprintOf(to.peerCert) : ''}`;
    let c = this.clients.get(key);
    if (!c) {
      // With TLS, the certificate the owner recorded in the store is the only one accepted (the store is trusted; the network is not).
      const trust: Trust | undefined = to.peerCert ? { mode: 'pinned', pem: to.peerCert, fingerprint: fingerprintOf(to.peerCert) } : undefined;
      const host = to.peer.slice(0, to.peer.lastIndexOf(':'));
      c = new PeerClient(to.peer, trust ? grpcChannelCredentials(trust) : grpc.credentials.createInsecure(), {
        ...(trust ? grpcChannelOptions(trust, host) : {}),
        'grpc-node.flow_control_window': HTTP2_WINDOW,
        'grpc.max_receive_message_length': MAX_AGENT_MESSAGE,
        'grpc.max_send_message_length': MAX_AGENT_MESSAGE,
        // A frozen owner (its TCP still open) is noticed in seconds: its clients re-attach, through here, to the next owner.
        'grpc.keepalive_time_ms': 2000,
        'grpc.keepalive_timeout_ms': 2000,
        'grpc.keepalive_permit_without_calls': 0,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 1000,
      });
      this.clients.set(key, c);
    }
    return c;
  }

  private metadata(ctx: CallContext): grpc.Metadata {
    return forwardMetadata(this.secret, this.replica, ctx);
  }

  unary(to: ReplicaRef, method: ForwardedUnary, ctx: CallContext, req: unknown): Promise<unknown> {
    const c = this.client(to) as unknown as Record<ForwardedUnary, (req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, res: unknown) => void) => void>;
    return new Promise((resolve, reject) => c[method](req, this.metadata(ctx), (e, res) => (e ? reject(apiError(e, to)) : resolve(res))));
  }

  attach(to: ReplicaRef, ctx: CallContext, out: ClientStream<ServerMessage | Encoded>): Inbound<ClientMessage> {
    const call = (this.client(to) as unknown as { attach(md: grpc.Metadata): grpc.ClientDuplexStream<ClientMessage, Encoded> }).attach(this.metadata(ctx));
    pipeBack(call, out, to);
    return inboundOf(call);
  }

  download(to: ReplicaRef, ctx: CallContext, req: DownloadRequest, out: ClientStream<DownloadMessage>): { gone(reason: string): void } {
    const c = this.client(to) as unknown as { download(req: DownloadRequest, md: grpc.Metadata): grpc.ClientReadableStream<DownloadMessage> };
    const call = c.download(req, this.metadata(ctx));
    pipeBack(call, out, to);
    return { gone: () => call.cancel() };
  }

  upload(to: ReplicaRef, ctx: CallContext, out: ClientStream<UploadReply>): Inbound<UploadMessage> {
    const call = (this.client(to) as unknown as { upload(md: grpc.Metadata): grpc.ClientDuplexStream<UploadMessage, UploadReply> }).upload(this.metadata(ctx));
    // Chunks toward the owner are bounded by the upload's own window (MAX_UPLOAD_IN_FLIGHT unacknowledged bytes).
    pipeBack(call, out, to);
    return inboundOf(call);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** What the owner sends, to the client, paced by the client; its end or failure ends the client's stream. */
function pipeBack<T>(call: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>, out: ClientStream<T>, to: ReplicaRef): void {
  let over = false;
  call.on('data', (m: T) => {
    if (!out.write(m)) call.pause();
  });
  out.onDrain(() => call.resume());
  call.on('error', (e: grpc.ServiceError) => {
    if (over) return;
    over = true;
    if (e.code !== grpc.status.CANCELLED && !out.closed) out.fail(apiError(e, to));
  });
  call.on('end', () => {
    if (over) return;
    over = true;
    if (!out.closed) out.end();
  });
}

/** What the client sends, to the owner. */
function inboundOf<In>(call: grpc.ClientDuplexStream<In, unknown>): Inbound<In> {
  return {
    message: (m) => void call.write(m),
    end: () => call.end(),
    // The owner sees a cancelled stream: a client gone (an upload's partial file is kept for a resume).
    gone: () => call.cancel(),
  };
}
