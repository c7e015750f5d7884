// The console's side of the WebSocket gateway (control-plane/transports/ws): the
// same protobuf messages as gRPC, over one socket, for code that runs in a
// browser. No grpc-js here; pass any WebSocket implementation that follows
// the browser API (the browser's own, or the `ws` package in Node).
import {
  ClientMessage,
  GatewayCall,
  GatewayClientFrame,
  GatewayReply,
  GatewayServerFrame,
  StreamError,
} from '../protocol/generated/cmdop/v1/cmdop';
import { GATEWAY_PROTOCOL } from '../protocol/limits';
import { asErrorCode, asErrorReason, type ErrorCode, type ErrorReason } from '../protocol/errors';
import type { AttachStream, AttachStreamHandlers } from './attachProtocol';

export { GATEWAY_PATH, GATEWAY_PROTOCOL } from '../protocol/limits';

interface WebSocketLike {
  binaryType: string;
  readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  /** The typed reason (StreamError.reason), where the control plane gave one. */
  readonly reason: ErrorReason;
  constructor(code: string, message: string, reason = '') {
    super(message);
    this.code = asErrorCode(code);
    this.reason = asErrorReason(reason);
  }
}

type Request = NonNullable<GatewayCall['request']>;
type ResultOf<C extends Request['$case']> = Extract<NonNullable<GatewayReply['result']>, { $case: C }>['value'];

/** An attach stream's callbacks and handle: the shapes AttachProtocol opens its streams with. */
export type GatewayStreamHandlers = AttachStreamHandlers<StreamError>;
export type GatewayStreamHandle = AttachStream;

/** One WebSocket to the gateway: unary calls and any number of attach streams. */
export class GatewayConnection {
  private ws: WebSocketLike;
  private nextId = 1;
  private calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private streams = new Map<number, GatewayStreamHandlers>();
  readonly opened: Promise<void>;
  /** Called once when the socket closes (code, reason). */
  onclose: ((code: number, reason: string) => void) | undefined;

  constructor(url: string, token: string, Impl: WebSocketConstructor = (globalThis as any).WebSocket) {
    this.ws = new Impl(url, [GATEWAY_PROTOCOL, `bearer.${token}`]);
    this.ws.binaryType = 'arraybuffer';
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new GatewayError('UNAVAILABLE', `cannot open ${url}`));
    });
    this.opened.catch(() => {});
    this.ws.onmessage = (ev) => this.onFrame(ev.data);
    this.ws.onclose = (ev) => {
      const err = new GatewayError('UNAVAILABLE', `the gateway closed the connection (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`);
      for (const c of this.calls.values()) c.reject(err);
      this.calls.clear();
      for (const s of this.streams.values()) s.end({ code: 'UNAVAILABLE', message: err.message, ref: '', reason: '' });
      this.streams.clear();
      this.onclose?.(ev.code, ev.reason);
    };
  }

  /** A unary call: `call('listMachines', {})` resolves with the reply's value. */
  call<C extends Request['$case']>(kind: C, value: Extract<Request, { $case: C }>['value']): Promise<ResultOf<C>> {
    const callId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(callId, { resolve: resolve as (v: unknown) => void, reject });
      this.sendFrame({ frame: { $case: 'call', value: { callId, request: { $case: kind, value } as Request } } });
    });
  }

  /** Opens an attach stream: `first` must be an attach message. */
  openStream(first: ClientMessage, handlers: GatewayStreamHandlers): GatewayStreamHandle {
    const streamId = this.nextId++;
    this.streams.set(streamId, handlers);
    const send = (message: ClientMessage) => this.sendFrame({ frame: { $case: 'stream', value: { streamId, message } } });
    send(first);
    return {
      send,
      close: () => {
        if (!this.streams.delete(streamId)) return;
        this.sendFrame({ frame: { $case: 'close', value: { streamId } } });
      },
    };
  }

  close(): void {
    this.ws.close(1000, 'bye');
  }

  private sendFrame(f: GatewayClientFrame): void {
    this.ws.send(GatewayClientFrame.encode(f).finish());
  }

  private onFrame(data: unknown): void {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array);
    const f = GatewayServerFrame.decode(bytes).frame;
    if (!f) return;
    if (f.$case === 'reply') {
      const c = this.calls.get(f.value.callId);
      if (!c) return;
      this.calls.delete(f.value.callId);
      const r = f.value.result;
      if (!r) c.reject(new GatewayError('INTERNAL', 'empty reply'));
      else if (r.$case === 'error') c.reject(new GatewayError(r.value.code, r.value.message, r.value.reason));
      else c.resolve(r.value);
    } else if (f.$case === 'stream') {
      if (f.value.message) this.streams.get(f.value.streamId)?.message(f.value.message);
    } else {
      const s = this.streams.get(f.value.streamId);
      this.streams.delete(f.value.streamId);
      s?.end(f.value.error);
    }
  }
}
