// One attach stream carried over the browser's WebSocket, as the core's
// ClientStream (core/ports.ts): the relay writes to it; what the page sends
// is fed to the core's Inbound by the gateway.
//
// Flow control: the page acknowledges output (ClientAck) with the byte seq
// it has rendered (from xterm's write callback). write() reports "full" past
// HIGH_WATERMARK unacknowledged bytes, so the relay stops sending (and, for
// an operator, stops acknowledging the agent, which stops reading the PTY);
// the drain listeners run once acknowledgements bring it under LOW_WATERMARK.
import { ClientMessage, Encoded, ServerMessage, StreamError } from '../../../protocol';
import type { ApiError } from '../../core/errors';
import type { ClientStream, Inbound } from '../../core/ports';
import { streamEndFrame, streamOutFrame } from './frames';

/**
 * The window. With 100 KiB high / 32 KiB low, a page rendering a flood held
 * one message at a time: it parsed it, acknowledged, and waited for the next
 * (from its acknowledgement to the next output, p50 8-13 ms here, as long as
 * parsing 256 KiB), idle half its frames. 512 / 256 KiB keeps a message on
 * its way while the page parses the one before (p50 3 ms from an ack to the
 * next output): `cat` of 20 MB, in one run with rounds alternating, 12.9 ->
 * 14.5 MB/s; of 50 MB, 0.34x -> 0.44x a bare xterm.js page. It does not hold
 * back Ctrl-C more: an operator's page acknowledges what it has rendered and
 * the agent stops one AGENT_WINDOW (1 MiB) past that, whatever this window
 * is; it only moves part of that from the control plane's buffer to the
 * page. The price: a page that always has output queued answers other work
 * later (e2e/console/console.spec.ts's round trip into the page during a `yes`
 * flood: 36-74 ms before, 57-334 ms after, in 3 and 6 runs).
 */
export const HIGH_WATERMARK = 512 * 1024;
export const LOW_WATERMARK = 256 * 1024;
/** Messages a stream holds before it is authenticated (a page sends one attach, then waits). */
const MAX_UNREAD = 64;

export interface FrameSink {
  send(frame: Uint8Array): void;
}

export class GatewayStream implements ClientStream<ServerMessage | Encoded> {
  /** Output sent and not yet acknowledged, oldest first. */
  private inflight: { end: number; length: number }[] = [];
  private inflightBytes = 0;
  private full = false;
  private ended = false;
  private drainListeners: (() => void)[] = [];
  /** What the core serves on this stream (set once the gateway has authenticated it). */
  private inbound: Inbound<ClientMessage> | undefined;
  /** What the page sent before that: it waits here, like a grpc-js stream nobody reads yet. */
  private unread: ClientMessage[] = [];

  constructor(
    readonly streamId: number,
    private readonly sink: FrameSink,
    private readonly onEnded: (s: GatewayStream) => void,
  ) {}

  get closed(): boolean {
    return this.ended;
  }

  /** From the page: a ClientMessage for this stream. Acks are counted here (the window), then passed on. */
  receive(m: ClientMessage): void {
    if (this.ended) return;
    if (m.msg?.$case === 'ack') this.acked(m.msg.value.seq);
    if (this.inbound) return this.inbound.message(m);
    if (this.unread.length >= MAX_UNREAD) {
      this.finish({ code: 'RESOURCE_EXHAUSTED', message: `more than ${MAX_UNREAD} messages before the stream was authenticated`, ref: '', reason: '' });
      return;
    }
    this.unread.push(m);
  }

  /** The stream is authenticated: the core serves it from now on, starting with what waited. */
  bind(inbound: Inbound<ClientMessage>): void {
    this.inbound = inbound;
    for (const m of this.unread.splice(0)) if (!this.ended) inbound.message(m);
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

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  /** The page has rendered every byte before `seq`. */
  private acked(seq: number): void {
    while (this.inflight.length > 0 && this.inflight[0].end <= seq) {
      this.inflightBytes -= this.inflight.shift()!.length;
    }
    if (this.full && this.inflightBytes <= LOW_WATERMARK) {
      this.full = false;
      for (const l of this.drainListeners) l();
    }
  }

  /** The core ends the stream normally. */
  end(): void {
    this.finish(undefined);
  }

  /** The core ends the stream with an error the page is told. */
  fail(e: ApiError): void {
    const inbound = this.inbound;
    this.finish({ code: e.code, message: e.message, ref: '', reason: e.reason });
    inbound?.gone(e.message);
  }

  /** The page closed the stream, or the socket went away. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnded(this);
    this.inbound?.gone('the page closed the stream');
  }

  private finish(error: StreamError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.send(streamEndFrame(this.streamId, error));
    this.onEnded(this);
  }
}
