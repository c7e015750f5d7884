// The core's seams: what a transport (gRPC, the console's WebSocket, HTTP,
// later a peer replica) provides so that registry, sessions, relays and file
// routing never see a grpc-js call, a socket or an HTTP exchange. A
// transport authenticates a call from its own credentials (metadata, a
// header, a subprotocol) before it hands the core anything, turns the core's
// ApiErrors into its own kind of error, and moves messages both ways.
import type { ClientMessage, ControlMessage, DownloadMessage, DownloadRequest, Encoded, ServerMessage, UploadMessage, UploadReply } from '../../protocol';
import type { Principal } from './access';
import type { ApiError, ReplicaRef } from './errors';

/** Who is calling, from where: established by the transport before the core sees the call. */
export interface CallContext {
  readonly principal: Principal;
  readonly peer: string;
  /** Forwarded by this replica (the client reached it; it checked the caller): served here, never forwarded again. */
  readonly forwardedBy?: string;
}

/** Messages to one client (an attach stream, a download, an upload's replies). */
export interface ClientStream<Out> {
  /** False when the transport's buffer is full: stop writing until onDrain's listener runs. */
  write(m: Out): boolean;
  /** Ends the stream normally. */
  end(): void;
  /** Ends the stream with an error the client is told. */
  fail(e: ApiError): void;
  onDrain(listener: () => void): void;
  /** Ended, failed, or gone from the client's side: nothing more will arrive there. */
  readonly closed: boolean;
}

/** Messages to one agent: its Connect stream, or its Bulk (file) stream. */
export interface AgentStream {
  /** `done` runs once the message has been handed to the connection (lib/prioritySender.ts paces bulk data by it). */
  write(m: ControlMessage | Encoded, done?: () => void): boolean;
  end(): void;
  fail(e: ApiError): void;
  readonly closed: boolean;
}

/** What a transport feeds into a call the core serves. */
export interface Inbound<In> {
  message(m: In): void;
  /** The other side half-closed: it will send nothing more. */
  end(): void;
  /** The stream is gone (cancelled, reset, timed out); `discard`: a client that will not resume (an upload's partial file goes). */
  gone(reason: string, discard?: boolean): void;
}

/** The unary calls one machine's owner serves for another replica (PeerService). */
export type ForwardedUnary = 'listMachines' | 'openTerminal' | 'listTerminals' | 'closeTerminal' | 'listFiles' | 'statFile' | 'makeDirectory' | 'removeFile' | 'renameFile';

/**
 * The link to the other replicas (transports/peer/): a call for a machine
 * whose agent is on replica `to`, forwarded there with the caller this
 * replica verified. What comes back is written to `out` as it comes, paced
 * by `out` (flow control end to end).
 */
export interface Forwarder {
  unary(to: ReplicaRef, method: ForwardedUnary, ctx: CallContext, req: unknown): Promise<unknown>;
  attach(to: ReplicaRef, ctx: CallContext, out: ClientStream<ServerMessage | Encoded>): Inbound<ClientMessage>;
  download(to: ReplicaRef, ctx: CallContext, req: DownloadRequest, out: ClientStream<DownloadMessage>): { gone(reason: string): void };
  upload(to: ReplicaRef, ctx: CallContext, out: ClientStream<UploadReply>): Inbound<UploadMessage>;
}
