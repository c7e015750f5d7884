// One tab's attachment to one terminal, over the page's gateway socket, with
// the guarantees the console owes the user:
//  - input waits for `attached` (the control plane refuses anything earlier)
//    and goes in order, in pieces no larger than MAX_INPUT_BYTES, a full
//    piece only once the previous ones were accepted;
//  - output is acknowledged only once rendered (the sink calls `done` from
//    xterm's write callback), so the gateway's window paces a flood to what
//    the page can draw and Ctrl-C is never stuck behind megabytes;
//  - after the socket drops, re-attach from the last byte received, so the
//    screen continues byte-exact; skipped output is always announced.
// The protocol itself (attach and re-attach requests, the cursor, replays,
// snapshots, gaps, refs, exit) is the SDK's AttachProtocol, the same code the
// CLI runs over gRPC; this file is what a page adds to it.
import {
  AttachMode,
  SessionState,
  TerminalKind,
  type AttachRequest,
  type StreamError,
  type TerminalExit,
  type TerminalInfo,
} from '../../../../protocol/generated/cmdop/v1/cmdop';
import { MAX_INPUT_BYTES } from '../../../../protocol/limits';
import { AttachProtocol, type StreamEnding } from '../../../../sdk/attachProtocol';
import type { GatewayConnection } from '../../../../sdk/gateway';
import type { ConsoleConnection, Reattachable } from './connection';

export type NoticeKind = 'gap' | 'reconnected' | 'input' | 'error';

export interface SessionSink {
  /** Render `data`; call `done` once it is on screen. */
  write(data: Uint8Array, done: () => void): void;
  /** A late joiner's first message: the current screen, to draw on an empty terminal of cols x rows. */
  snapshot(data: Uint8Array, cols: number, rows: number, done: () => void): void;
  attached(info: TerminalInfo, reattached: boolean): void;
  notice(kind: NoticeKind, text: string): void;
  state(state: SessionState, reason: string, deadlineMs: number): void;
  exit(e: TerminalExit): void;
  /** Over for good (exit, DISCONNECTED, refused, closed). */
  ended(why: string): void;
}

export interface SessionTarget {
  machine: string;
  mode: AttachMode;
  /** Attach to this terminal; absent: open a new shell (operators only). */
  terminalId?: string;
  /** The size to open a new shell with. */
  cols?: number;
  rows?: number;
}

interface Piece {
  data: Uint8Array;
  /** The input (one keystroke batch or one paste) this piece belongs to. */
  group: number;
}

export class TerminalSession implements Reattachable {
  /** Every byte before this was rendered; what the gateway is acknowledged. */
  rendered = 0;
  finished = false;
  private readonly protocol: AttachProtocol<Piece>;
  /** The socket of the current (or last) stream. */
  private gw: GatewayConnection | undefined;
  private queue: Piece[] = [];
  /** Bytes of input sent and not yet accepted (the pieces are the protocol's pending requests). */
  private inflightBytes = 0;
  private nextGroup = 1;
  private acked = 0;
  private ackQueued = false;
  private size: { cols: number; rows: number } | undefined;
  private sentSize = '';

  constructor(
    private readonly conn: ConsoleConnection,
    readonly target: SessionTarget,
    private readonly sink: SessionSink,
  ) {
    if (target.cols && target.rows) this.size = { cols: target.cols, rows: target.rows };
    this.protocol = new AttachProtocol<Piece>({
      firstAttach: () => this.firstAttach(),
      attached: (info, reattached) => {
        if (info) this.sink.attached(info, reattached);
        if (reattached) this.sink.notice('reconnected', `reconnected: resumed from byte ${this.cursor}`);
        if (this.rendered > this.acked) this.queueAck();
        this.sentSize = info ? `${info.cols}x${info.rows}` : this.sentSize;
        this.sendResize();
        this.pump();
      },
      missed: (from, to) => this.sink.notice('gap', `output bytes ${from}–${to} never arrived`),
      output: (data, chunk) => {
        const end = chunk.seq + chunk.data.length;
        this.sink.write(data, () => this.ackTo(end));
      },
      snapshot: (s) => this.sink.snapshot(s.data, s.cols, s.rows, () => this.ackTo(s.seq)),
      gap: ({ fromSeq, toSeq, reason }, advanced) => {
        this.sink.notice('gap', `${toSeq - fromSeq} bytes of output were skipped (bytes ${fromSeq}–${toSeq}): ${reason}`);
        // Through the renderer, so the acknowledgement keeps its place in line.
        if (advanced) this.sink.write(new Uint8Array(0), () => this.ackTo(toSeq));
      },
      accepted: (p) => {
        this.inflightBytes -= p.data.length;
        this.pump();
      },
      refused: (e, p) => (p ? this.inputRefused(p, e) : this.sink.notice('error', `${e.code}: ${e.message}`)),
      state: (s) => this.sink.state(s.state, s.reason, s.deadlineMs),
      exit: (e) => {
        this.finished = true;
        this.sink.exit(e);
      },
      ended: (how, e) => {
        // The gateway ends its streams before it reports the socket closed;
        // look once the close has been seen.
        const gw = this.gw!;
        setTimeout(() => this.onEnd(gw, how, e), 0);
      },
    });
  }

  get terminalId(): string {
    return this.protocol.terminalId;
  }

  /** The next byte expected: every byte before it was received. A re-attach resumes here. */
  get cursor(): number {
    return this.protocol.cursor;
  }

  get attached(): boolean {
    return this.protocol.attached;
  }

  get mode(): AttachMode {
    return this.target.mode;
  }

  start(): void {
    this.conn.register(this);
  }

  /** Called by the connection whenever a socket is (re)opened. */
  attachTo(gw: GatewayConnection): void {
    if (this.finished || this.protocol.streaming) return;
    this.gw = gw;
    this.protocol.connect((first, handlers) => gw.openStream(first, handlers));
  }

  /** Sends keystrokes or a paste, in order; large ones in pieces. */
  input(data: Uint8Array): void {
    // Defence in depth: observer views never wire input at all.
    if (this.target.mode !== AttachMode.OPERATOR) throw new Error('a watch-only view has no input');
    if (this.finished || data.length === 0) return;
    const group = this.nextGroup++;
    for (let off = 0; off < data.length; off += MAX_INPUT_BYTES) {
      this.queue.push({ data: data.subarray(off, off + MAX_INPUT_BYTES), group });
    }
    this.pump();
  }

  /** The bytes of input not yet accepted by the control plane. */
  get pendingInput(): number {
    return this.inflightBytes + this.queue.reduce((n, p) => n + p.data.length, 0);
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    this.sendResize();
  }

  close(): void {
    this.finished = true;
    this.conn.unregister(this);
    this.protocol.close();
  }

  /**
   * The first attach: to the target terminal (its current screen first), or
   * open a new shell of the tab's size. (Should the socket drop before
   * `attached`, a terminal opened then is unknown to us and is opened again;
   * the first one stays listed.)
   */
  private firstAttach(): AttachRequest {
    const { machine, mode, terminalId } = this.target;
    if (terminalId) return { machine, terminalId, mode, open: undefined, fromSeq: undefined, acks: true };
    const spec = { kind: TerminalKind.SHELL, argv: [], shellCommand: '', pty: true, cols: this.size?.cols ?? 80, rows: this.size?.rows ?? 24, env: {}, cwd: '', title: '' };
    return { machine, terminalId: '', mode: AttachMode.OPERATOR, open: { machine, spec }, fromSeq: undefined, acks: true };
  }

  private inputRefused(p: Piece, e: StreamError): void {
    this.inflightBytes -= p.data.length;
    // The rest of that paste would arrive with a hole in it: drop it too.
    const dropped = this.dropGroup(p.group);
    // Keystrokes refused one by one (a grace period) make the same notice, which then counts up.
    const size = dropped > 0 ? ` (a paste: ${p.data.length + dropped} bytes dropped)` : '';
    this.sink.notice('input', `input not delivered${size}: ${e.message}`);
    this.pump();
  }

  private dropGroup(group: number): number {
    let n = 0;
    this.queue = this.queue.filter((q) => (q.group === group ? ((n += q.data.length), false) : true));
    return n;
  }

  /** Sends queued input while the window allows: at most MAX_INPUT_BYTES unconfirmed. */
  private pump(): void {
    while (this.queue.length > 0) {
      const p = this.queue[0];
      if (this.inflightBytes > 0 && this.inflightBytes + p.data.length > MAX_INPUT_BYTES) return;
      if (!this.protocol.request((ref) => ({ $case: 'input', value: { data: p.data, ref, eof: false } }), p)) return;
      this.queue.shift();
      this.inflightBytes += p.data.length;
    }
  }

  private sendResize(): void {
    if (!this.size || !this.attached || this.target.mode !== AttachMode.OPERATOR) return;
    const key = `${this.size.cols}x${this.size.rows}`;
    if (key === this.sentSize) return;
    this.sentSize = key;
    // No ref: nothing waits for the answer; a refusal arrives as a notice.
    this.protocol.send({ $case: 'resize', value: { cols: this.size.cols, rows: this.size.rows, ref: '' } });
  }

  private ackTo(end: number): void {
    if (end <= this.rendered) return;
    this.rendered = end;
    this.queueAck();
  }

  /** One ack for every write callback xterm runs in the same turn. */
  private queueAck(): void {
    if (this.ackQueued) return;
    this.ackQueued = true;
    queueMicrotask(() => {
      this.ackQueued = false;
      // Nothing may be sent before `attached`; the next `attached` re-sends it.
      if (this.rendered <= this.acked || !this.protocol.send({ $case: 'ack', value: { seq: this.rendered, exit: false } })) return;
      this.acked = this.rendered;
    });
  }

  private onEnd(gw: GatewayConnection, how: StreamEnding, e: StreamError | undefined): void {
    if (this.finished) {
      this.conn.unregister(this);
      this.sink.ended('the terminal has exited');
      return;
    }
    if (how === 'lost') {
      if (this.conn.isDead(gw)) {
        // The socket dropped: the connection re-attaches us when it is back.
        this.inputInDoubt();
        this.acked = 0;
        return;
      }
      if (e && (e.code === 'DEADLINE_EXCEEDED' || e.reason === 'stream_dropped' || e.reason === 'restarting')) {
        // The control plane dropped only this stream; the socket is fine.
        this.inputInDoubt();
        this.acked = 0;
        const now = this.conn.current;
        if (now) this.attachTo(now);
        return;
      }
    }
    // Refused, or DISCONNECTED: the machine's session is over and there is nothing to re-attach to.
    this.finished = true;
    this.conn.unregister(this);
    this.sink.ended(e ? `${e.code}: ${e.message}` : 'the session ended');
  }

  /** Input sent but never confirmed: it may or may not have arrived. Say so; never resend blindly. */
  private inputInDoubt(): void {
    const doubt = this.protocol.takePending();
    if (doubt.length === 0) return;
    let n = 0;
    for (const p of doubt) n += p.data.length + this.dropGroup(p.group);
    this.inflightBytes = 0;
    this.sink.notice('input', `${n} bytes of input may not have arrived: the connection dropped before the control plane confirmed them`);
  }
}
