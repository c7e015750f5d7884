// One attach stream carried over the browser's WebSocket, shaped like the
// grpc-js server stream that ClientService's attach handler and the relay
// already drive (write/drain, data/end/cancelled/error events, metadata), so
// the gateway reuses that code instead of repeating it.
//
// Flow control: the page acknowledges output (ClientAck) with the byte seq
// it has rendered (from xterm's write callback). write() reports "full" past
// HIGH_WATERMARK unacknowledged bytes, so the relay stops sending (and, for
// an operator, stops acknowledging the agent, which stops reading the PTY);
// 'drain' fires once acknowledgements bring it under LOW_WATERMARK.
import { EventEmitter } from 'node:events';
import type { Metadata } from '@grpc/grpc-js';
import { ClientMessage, Encoded, ServerMessage, StreamError } from '../../../protocol';
import type { GrpcStatus } from '../../core/errors';
import { streamEndFrame, streamOutFrame } from './frames';
import { status } from '@grpc/grpc-js';

export const HIGH_WATERMARK = 100 * 1024;
export const LOW_WATERMARK = 32 * 1024;
/** Messages a stream holds before its handler reads it (a page sends one attach, then waits). */
const MAX_UNREAD = 64;

export interface FrameSink {
  send(frame: Uint8Array): void;
}

export class GatewayStream extends EventEmitter {
  cancelled = false;
  destroyed = false;
  /** Output sent and not yet acknowledged, oldest first. */
  private inflight: { end: number; length: number }[] = [];
  private inflightBytes = 0;
  private full = false;
  private ended = false;
  private unread: ClientMessage[] = [];

  constructor(
    readonly streamId: number,
    readonly metadata: Metadata,
    private readonly peer: string,
    private readonly sink: FrameSink,
    private readonly onEnded: (s: GatewayStream) => void,
  ) {
    super();
    // The attach handler emits 'error' with a status to end a stream.
    this.on('error', (e: GrpcStatus | Error) => this.finish(toStreamError(e)));
  }

  getPeer(): string {
    return this.peer;
  }

  /** From the page: a ClientMessage for this stream. Acks are counted here, then passed on. */
  receive(m: ClientMessage): void {
    if (this.ended) return;
    if (m.msg?.$case === 'ack') this.acked(m.msg.value.seq);
    // Like a grpc-js stream, nothing is read before the handler listens for
    // 'data' (it first checks the token): until then messages wait here.
    if (this.listenerCount('data') === 0) {
      if (this.unread.length >= MAX_UNREAD) {
        this.emit('error', { code: status.RESOURCE_EXHAUSTED, details: `more than ${MAX_UNREAD} messages before the stream was authenticated` });
        return;
      }
      this.unread.push(m);
      return;
    }
    this.emit('data', m);
  }

  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === 'data' && this.unread.length > 0) {
      for (const m of this.unread.splice(0)) if (!this.ended) this.emit('data', m);
    }
    return this;
  }

  write(msg: ServerMessage | Encoded): boolean {
    if (this.ended) return false;
    const range = msg instanceof Encoded ? msg.output : msg.msg?.$case === 'output' ? { seq: msg.msg.value.seq, length: msg.msg.value.data.length } : undefined;
    this.sink.send(streamOutFrame(this.streamId, msg));
    if (range && range.length > 0) {
      this.inflight.push({ end: range.seq + range.length, length: range.length });
      this.inflightBytes += range.length;
    }
    if (this.inflightBytes > HIGH_WATERMARK) this.full = true;
    return !this.full;
  }

  /** The page has rendered every byte before `seq`. */
  private acked(seq: number): void {
    while (this.inflight.length > 0 && this.inflight[0].end <= seq) {
      this.inflightBytes -= this.inflight.shift()!.length;
    }
    if (this.full && this.inflightBytes <= LOW_WATERMARK) {
      this.full = false;
      this.emit('drain');
    }
  }

  /** The server side ends the stream normally. */
  end(): void {
    this.finish(undefined);
  }

  /** The page closed the stream, or the socket went away. */
  cancel(): void {
    if (this.ended) return;
    this.cancelled = true;
    this.ended = true;
    this.emit('cancelled');
    this.onEnded(this);
  }

  private finish(error: StreamError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.destroyed = true;
    this.sink.send(streamEndFrame(this.streamId, error));
    this.onEnded(this);
  }
}

function toStreamError(e: GrpcStatus | Error): StreamError {
  if ('code' in e && typeof e.code === 'number') {
    return { code: status[e.code] ?? String(e.code), message: (e as GrpcStatus).details ?? '', ref: '' };
  }
  return { code: 'INTERNAL', message: (e as Error).message, ref: '' };
}
