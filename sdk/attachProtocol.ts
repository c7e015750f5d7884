// The client side of the attach protocol, written once for every transport:
// the SDK's gRPC duplex stream (sdk/attachment.ts) and the console's gateway
// WebSocket (app/renderer/src/net/terminalSession.ts) carry the same
// messages, so they share this one reading of them.
//
// Browser-safe on purpose: Vite bundles this file into the console. It
// imports only the generated messages (protocol/index would pull in grpc-js)
// and uses no Node API (no Buffer, no EventEmitter, no timers).
//
// What lives here is what the protocol says, whatever carries it:
//  - the first message of a stream: attach to a terminal, or open one and
//    attach to it atomically (so no output comes before we listen); after
//    a drop, re-attach to the same terminal from the cursor;
//  - the cursor (the next byte expected) and what moves it: output, with the
//    overlap of a replay trimmed off; a snapshot; a gap;
//  - nothing is sent before `attached` (the control plane refuses anything
//    earlier, ending the stream) nor after the exit;
//  - requests answered by `accepted` or `error` under their ref;
//  - what a stream's end means: the terminal exited, the machine's session
//    is over (DISCONNECTED: nothing left to re-attach to), or the stream was
//    lost. What to do about a loss (retry at once with backoff, or wait for
//    the page's socket to return) and how to present all this are the
//    adapters'.
import {
  SessionState,
  type AttachRequest,
  type ClientMessage,
  type OutputGap,
  type ScreenSnapshot,
  type ServerMessage,
  type SessionStateChange,
  type StreamError,
  type TerminalExit,
  type TerminalInfo,
  type TerminalOutput,
} from '../protocol/generated/cmdop/v1/cmdop';

/** One open attach stream, as its transport carries it. */
export interface AttachStream {
  send(m: ClientMessage): void;
  close(): void;
}

/** What a transport reports about a stream; `error` is its failure, in its own terms (F). */
export interface AttachStreamHandlers<F> {
  message(m: ServerMessage): void;
  /** The stream is over; `error` when it did not end normally. */
  end(error: F | undefined): void;
}

/** Opens one attach stream whose first message is `first` (GatewayConnection.openStream has this shape). */
export type OpenAttachStream<F> = (first: ClientMessage, handlers: AttachStreamHandlers<F>) => AttachStream;

/**
 * How a stream ended, in the order that decides: after the exit nothing is
 * left to do; after DISCONNECTED nothing is left to re-attach to; otherwise
 * the stream was lost (the adapter decides whether re-attaching can help).
 */
export type StreamEnding = 'exited' | 'disconnected' | 'lost';

/** The adapter's side: what the protocol hands on. P is what a request carries to its answer. */
export interface AttachHooks<P, F> {
  /** The request that starts the first stream. Re-attaches reuse its machine and mode. */
  firstAttach(): AttachRequest;
  attached(info: TerminalInfo | undefined, reattached: boolean): void;
  /** New output: `data` is the part of `chunk` past the cursor. */
  output(data: Uint8Array, chunk: TerminalOutput): void;
  /** Output resumed past the cursor with no gap message: bytes [from, to) never arrived. */
  missed?(from: number, to: number): void;
  snapshot(snapshot: ScreenSnapshot): void;
  /** `advanced`: the gap moved the cursor (it was not all behind it already). */
  gap(gap: OutputGap, advanced: boolean): void;
  accepted(entry: P, commandId: string): void;
  /** A refusal; `entry` is the request it answers, if it was one sent with request(). */
  refused(error: StreamError, entry: P | undefined): void;
  state(change: SessionStateChange): void;
  exit(exit: TerminalExit): void;
  /** The current stream is over (never called for one closed by close()). */
  ended(how: StreamEnding, error: F | undefined): void;
}

export class AttachProtocol<P, F = StreamError> {
  terminalId: string;
  info: TerminalInfo | undefined;
  /** The next byte expected: every byte before it was delivered. A re-attach resumes here. */
  cursor = 0;
  /** The current stream has said `attached`: it may carry requests. */
  attached = false;
  /** Attached at least once: from now on a new stream re-attaches from the cursor. */
  private everAttached = false;
  exit: TerminalExit | undefined;
  /** The machine's session is over: its terminals are gone. */
  disconnected: SessionStateChange | undefined;
  private stream: AttachStream | undefined;
  private closed = false;
  private refs = 0;
  private pending = new Map<string, P>();

  constructor(private readonly hooks: AttachHooks<P, F>) {
    this.terminalId = hooks.firstAttach().terminalId;
  }

  /** A stream is open (attached or not yet). */
  get streaming(): boolean {
    return this.stream !== undefined;
  }

  /** Opens a stream: the first attach, or once attached before, a re-attach from the cursor. */
  connect(open: OpenAttachStream<F>): void {
    if (this.stream || this.closed) return;
    this.attached = false;
    const first = this.hooks.firstAttach();
    const request: AttachRequest = this.everAttached
      ? // Exactly the bytes after the last one received, from the terminal we
        // attached to (a terminal opened by the first request is not opened again).
        { ...first, open: undefined, terminalId: this.terminalId, fromSeq: this.cursor }
      : first;
    const stream = open(
      { msg: { $case: 'attach', value: request } },
      {
        // A stream replaced or closed meanwhile says nothing more.
        message: (m) => {
          if (this.stream === stream) this.receive(m);
        },
        end: (error) => {
          if (this.stream !== stream) return;
          this.stream = undefined;
          this.attached = false;
          this.hooks.ended(this.exit ? 'exited' : this.disconnected ? 'disconnected' : 'lost', error);
        },
      },
    );
    this.stream = stream;
  }

  /** The stream may carry a message now: attached, and neither exited nor closed. */
  get canSend(): boolean {
    return this.attached && this.stream !== undefined && !this.exit;
  }

  /** Sends on the current stream; false (and nothing sent) when it may not carry it now. */
  send(msg: ClientMessage['msg']): boolean {
    if (!this.canSend) return false;
    this.stream!.send({ msg });
    return true;
  }

  /**
   * Tells the control plane every byte before `seq` has been received
   * (AttachRequest.acks): it paces an operator by this, and the agent keeps
   * what is not acknowledged. The SDK acknowledges on receipt, the console
   * once xterm has rendered.
   */
  ack(seq: number): void {
    if (this.attached && this.stream) this.stream.send({ msg: { $case: 'ack', value: { seq, exit: false } } });
  }

  /** Sends a request that is answered by `accepted` or `error` under its ref; `entry` comes back with the answer. */
  request(make: (ref: string) => ClientMessage['msg'], entry: P): boolean {
    if (!this.canSend) return false;
    const ref = String(++this.refs);
    this.pending.set(ref, entry);
    this.stream!.send({ msg: make(ref) });
    return true;
  }

  /** Every request still unanswered, forgotten here: its answer will not come (the stream is gone, or the terminal exited). */
  takePending(): P[] {
    const all = [...this.pending.values()];
    this.pending.clear();
    return all;
  }

  /** Detach for good: closes the stream; nothing more is reported. */
  close(): void {
    this.closed = true;
    const s = this.stream;
    this.stream = undefined;
    s?.close();
  }

  private receive(m: ServerMessage): void {
    const msg = m.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'attached': {
        const reattached = this.everAttached;
        this.info = msg.value.terminal;
        if (this.info) this.terminalId = this.info.terminalId;
        this.attached = true;
        this.everAttached = true;
        this.hooks.attached(this.info, reattached);
        return;
      }
      case 'output': {
        const o = msg.value;
        const end = o.seq + o.data.length;
        if (end <= this.cursor) return; // already delivered: the overlap of a re-attach replay
        let data = o.data;
        if (o.seq < this.cursor) data = data.subarray(this.cursor - o.seq);
        else if (o.seq > this.cursor) this.hooks.missed?.(this.cursor, o.seq);
        this.cursor = end;
        this.hooks.output(data, o);
        return;
      }
      case 'snapshot':
        // The screen as of seq: live output continues from there.
        this.cursor = msg.value.seq;
        this.hooks.snapshot(msg.value);
        return;
      case 'gap': {
        // Never coming: skip past it (a gap may also lie behind the cursor already).
        const advanced = msg.value.toSeq > this.cursor;
        if (advanced) this.cursor = msg.value.toSeq;
        this.hooks.gap(msg.value, advanced);
        return;
      }
      case 'accepted': {
        const entry = this.pending.get(msg.value.ref);
        if (entry === undefined) return;
        this.pending.delete(msg.value.ref);
        this.hooks.accepted(entry, msg.value.commandId);
        return;
      }
      case 'error': {
        const entry = msg.value.ref ? this.pending.get(msg.value.ref) : undefined;
        if (entry !== undefined) this.pending.delete(msg.value.ref);
        this.hooks.refused(msg.value, entry);
        return;
      }
      case 'state':
        if (msg.value.state === SessionState.DISCONNECTED) this.disconnected = msg.value;
        this.hooks.state(msg.value);
        return;
      case 'exit':
        // The stream ends once the control plane hears we have the exit
        // (AttachRequest.acks: until then the agent keeps it, so a control
        // plane lost in between loses nothing); requests still in flight
        // stay in takePending() for the adapter to settle.
        this.exit = msg.value;
        this.stream?.send({ msg: { $case: 'ack', value: { seq: this.cursor, exit: true } } });
        this.hooks.exit(msg.value);
        return;
    }
  }
}
