// grpc-js calls as the core's ports (core/ports.ts): a server stream as a
// ClientStream or an AgentStream, its events fed into an Inbound, and the
// caller authenticated from its metadata the moment the call opens.
//
// Authenticated before anything is read: the credential is checked from the
// call's metadata as the stream opens, and no 'data' listener exists until
// it passes. grpc-js reads a stream only as its consumer asks, so what a
// client sends early waits in HTTP/2 flow control, and a stream with a bad
// token costs one lookup and is gone (10,000 silent bogus streams once held
// ~100 MB of the control plane).
import type { ServerDuplexStream, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js';
import type { ControlMessage, Encoded } from '../../../protocol';
import type { Access } from '../../core/access';
import { ApiError, asApiError, isRefusal } from '../../core/errors';
import type { AgentStream, CallContext, ClientStream, Inbound } from '../../core/ports';
import { grpcStatus } from './status';

export type AnyServerCall = ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown> | ServerUnaryCall<unknown, unknown>;

/**
 * Who may call a port's services: clients by their bearer token (the
 * client port), other replicas by the cluster secret (the peer port,
 * transports/peer/).
 */
export interface Authenticator {
  authenticate(call: AnyServerCall): Promise<CallContext>;
  /** A call refused before the core saw it: the audit (clients) or the log (peers). */
  refused(action: string, call: AnyServerCall, e: ApiError): void;
}

/** The caller of a gRPC call, from its `authorization` metadata. */
export async function callContext(access: Access, call: AnyServerCall): Promise<CallContext> {
  const header = call.metadata.get('authorization')[0];
  return { principal: await access.authenticate(header), peer: call.getPeer() };
}

/** Clients, by the bearer token in their metadata; a refusal is audited with the machine the request names. */
export function clientAuthenticator(access: Access): Authenticator {
  return {
    authenticate: (call) => callContext(access, call),
    refused: (action, call, e) => {
      if (!isRefusal(e)) return;
      const machine = (call as { request?: { machine?: unknown } }).request?.machine;
      access.audit(undefined, { action, ok: false, detail: e.message, peer: call.getPeer(), machine: typeof machine === 'string' ? machine : '' });
    },
  };
}

/** True once the call has ended on either side. */
function isOver(call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>): boolean {
  return call.cancelled || call.destroyed || call.writableEnded;
}

/**
 * A server stream as a ClientStream. `encode` turns a message into the
 * bytes the transport writes, where that is cheaper than the generic
 * serializer (file chunks: one copy instead of four, protocol/fastEncode.ts).
 */
export function clientStream<Out>(
  call: ServerWritableStream<unknown, Out | Encoded> | ServerDuplexStream<unknown, Out | Encoded>,
  encode?: (m: Out) => Out | Encoded,
): ClientStream<Out> {
  return {
    write: (m) => call.write(encode ? encode(m) : m),
    end: () => {
      if (!isOver(call)) call.end();
    },
    fail: (e) => {
      if (!isOver(call)) call.emit('error', grpcStatus(e));
    },
    onDrain: (listener) => void call.on('drain', listener),
    get closed() {
      return isOver(call);
    },
  };
}

/** An agent's Connect or Bulk call as an AgentStream. */
export function agentStream(call: ServerDuplexStream<unknown, ControlMessage | Encoded>): AgentStream {
  return {
    write: (m, done) => (done ? call.write(m, () => done()) : call.write(m)),
    end: () => {
      if (!isOver(call)) call.end();
    },
    fail: (e) => {
      if (!isOver(call)) call.emit('error', grpcStatus(e));
    },
    get closed() {
      return isOver(call);
    },
  };
}

/** Feeds a call's events into what the core serves on it; `what` names the stream in the reasons it gives. */
export function feed<In>(call: ServerDuplexStream<In, unknown>, inbound: Inbound<In>, what: string): void {
  call.on('data', (m: In) => inbound.message(m));
  call.on('end', () => inbound.end());
  call.on('cancelled', () => inbound.gone(`the ${what} connection was lost`));
  call.on('error', (e: Error) => inbound.gone(`${what} error: ${e.message}`));
}

/**
 * Runs `start` once the call's caller is authenticated; a refusal goes to
 * `refuse` (which ends the call its own way). Nothing is read meanwhile.
 */
export function whenAuthenticated(
  auth: Authenticator,
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  start: (ctx: CallContext) => void,
  refuse: (e: ApiError) => void,
): void {
  auth.authenticate(call).then(
    (ctx) => {
      if (!isOver(call)) start(ctx);
    },
    (e) => {
      if (!isOver(call)) refuse(asApiError(e));
    },
  );
}
