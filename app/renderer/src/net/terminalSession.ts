// One tab's attachment to one terminal, over the page's gateway socket, with
// the guarantees the console owes the user:
//  - input waits for `attached` (the control plane refuses anything earlier)
//    and goes in order, in pieces no larger than MAX_INPUT_BYTES, a full
//    piece only once the previous ones were accepted;
//  - output is acknowledged only once rendered (the sink calls `done` from
//    xterm's write callback), so the gateway's window paces a flood to what
//    the page can draw and Ctrl-C is never stuck behind megabytes;
//  - after the socket drops, re-attach from the last byte received, so the
//    screen continues byte-exact; skipped output is always announced;
//  - input typed while the terminal cannot take it (the machine in its grace
//    period, or this page reconnecting) waits here, shown as pending, and is
//    sent in order once it can; at most MAX_HELD_INPUT bytes wait, and what
//    would go past that is dropped whole and said so. Both cases alike.
// The protocol itself (attach and re-attach requests, the cursor, replays,
// snapshots, gaps, refs, exit) is the SDK's AttachProtocol, the same code the
// CLI runs over gRPC; this file is what a page adds to it.
import {
  AttachMode,
  SessionState,
  type AttachRequest,
  type StreamError,
  type TerminalExit,
  type TerminalInfo,
} from '../../../../protocol/generated/cmdop/v1/cmdop';
import { shellSpec } from '../../../../protocol/terminalSpec';
import { MAX_INPUT_BYTES } from '../../../../protocol/limits';
import { AttachProtocol, type StreamEnding } from '../../../../sdk/attachProtocol';
import type { GatewayConnection } from '../../../../sdk/gateway';
import type { ConsoleConnection, Reattachable } from './connection';
import { explainError, type TypedError } from '../state/explain';

export type NoticeKind = 'gap' | 'reconnected' | 'input' | 'error';

/**
 * Input kept while the terminal cannot take it. Enough for anything typed by
 * hand during a grace period (30 s); a paste larger than what is left is
 * dropped whole rather than sent with a hole in it.
 */
export const MAX_HELD_INPUT = 64 * 1024;
/** After input was refused as undeliverable: wait this long for the state change that says why before trying again. */
const REFUSED_RETRY_MS = 1000;

export interface SessionSink {
  /** Render `data`; call `done` once it is on screen. */
  write(data: Uint8Array, done: () => void): void;
  /** A late joiner's first message: the current screen, to draw on an empty terminal of cols x rows. */
  snapshot(data: Uint8Array, cols: number, rows: number, done: () => void): void;
  attached(info: TerminalInfo, reattached: boolean): void;
  notice(kind: NoticeKind, text: string): void;
  state(state: SessionState, reason: string, deadlineMs: number): void;
  exit(e: TerminalExit): void;
  /** Over for good (exit, DISCONNECTED, refused, closed); `error` when the control plane said why. */
  ended(why: string, error?: TypedError): void;
  /** Bytes of input waiting to be sent because the terminal cannot take them now (0: none). */
  pending(bytes: number): void;
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
  /** The session's state as the stream last said: input waits during GRACE_PERIOD. */
  private state: SessionState = SessionState.CONNECTED;
  /** Input was refused as undeliverable: wait for the state change (or REFUSED_RETRY_MS). */
  private refusedHold: ReturnType<typeof setTimeout> | undefined;
  /** Where the next refused piece goes back into the queue, so that refused pieces keep their order. */
  private requeueAt = 0;
  private reportedPending = 0;

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
        if (reattached) this.sink.notice('reconnected', 'Reconnected: the screen continues where it was.');
        if (this.rendered > this.acked) this.queueAck();
        this.sentSize = info ? `${info.cols}x${info.rows}` : this.sentSize;
        this.sendResize();
        this.pump();
      },
      missed: (from, to) => this.sink.notice('gap', `${to - from} bytes of output never arrived: part of the screen may be missing`),
      output: (data, chunk) => {
        const end = chunk.seq + chunk.data.length;
        this.sink.write(data, () => this.ackTo(end));
      },
      snapshot: (s) => this.sink.snapshot(s.data, s.cols, s.rows, () => this.ackTo(s.seq)),
      gap: ({ fromSeq, toSeq, reason }, advanced) => {
        this.sink.notice('gap', `${toSeq - fromSeq} bytes of output were skipped while this view was away (${reason}): part of the screen may be missing`);
        // Through the renderer, so the acknowledgement keeps its place in line.
        if (advanced) this.sink.write(new Uint8Array(0), () => this.ackTo(toSeq));
      },
      accepted: (p) => {
        this.inflightBytes -= p.data.length;
        this.pump();
      },
      refused: (e, p) => (p ? this.inputRefused(p, e) : this.sink.notice('error', explainError(e, this.target.machine).text)),
      state: (s) => {
        this.state = s.state;
        this.sink.state(s.state, s.reason, s.deadlineMs);
        if (s.state !== SessionState.GRACE_PERIOD) {
          clearTimeout(this.refusedHold);
          this.refusedHold = undefined;
        }
        this.pump();
      },
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
    if (this.held && this.queuedBytes + data.length > MAX_HELD_INPUT) {
      this.sink.notice('input', `${data.length} bytes typed were dropped: ${this.queuedBytes} bytes are already waiting for ${this.target.machine}, and at most ${MAX_HELD_INPUT} are kept`);
      return;
    }
    const group = this.nextGroup++;
    for (let off = 0; off < data.length; off += MAX_INPUT_BYTES) {
      this.queue.push({ data: data.subarray(off, off + MAX_INPUT_BYTES), group });
    }
    this.pump();
  }

  /** The bytes of input not yet accepted by the control plane. */
  get pendingInput(): number {
    return this.inflightBytes + this.queuedBytes;
  }

  private get queuedBytes(): number {
    return this.queue.reduce((n, p) => n + p.data.length, 0);
  }

  /** Input waits: the machine is in its grace period, the page is reconnecting, or input was just refused as undeliverable. */
  private get held(): boolean {
    // DISCONNECTED: the stream ends next, and nothing may be sent into it meanwhile.
    return this.state === SessionState.GRACE_PERIOD || this.state === SessionState.DISCONNECTED || !this.attached || this.refusedHold !== undefined;
  }

  /**
   * The session's state from the machine list. An attach during a grace
   * period is told nothing until the next transition, and input sent then
   * would only be refused: hold it from what the list says.
   */
  listedState(state: SessionState): void {
    if (state === this.state || state === SessionState.DISCONNECTED) return;
    this.state = state;
    this.pump();
  }

  resize(cols: number, rows: number): void {
    this.size = { cols, rows };
    this.sendResize();
  }

  close(): void {
    this.finished = true;
    clearTimeout(this.refusedHold);
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
    const spec = shellSpec({ cols: this.size?.cols, rows: this.size?.rows });
    return { machine, terminalId: '', mode: AttachMode.OPERATOR, open: { machine, spec }, fromSeq: undefined, acks: true };
  }

  private inputRefused(p: Piece, e: StreamError): void {
    this.inflightBytes -= p.data.length;
    if (e.code === 'UNAVAILABLE') {
      // Refused because the machine could not take it (its agent was lost a
      // moment before this page heard): certainly not delivered, so it waits
      // with what follows it, as if typed during the grace period.
      this.queue.splice(this.requeueAt++, 0, p);
      if (this.refusedHold === undefined) {
        this.refusedHold = setTimeout(() => {
          this.refusedHold = undefined;
          this.pump();
        }, REFUSED_RETRY_MS);
      }
      this.reportPending();
      return;
    }
    // The rest of that paste would arrive with a hole in it: drop it too.
    const dropped = this.dropGroup(p.group);
    // Keystrokes refused one by one (a grace period) make the same notice, which then counts up.
    const size = dropped > 0 ? ` (a paste: ${p.data.length + dropped} bytes dropped)` : '';
    this.sink.notice('input', `input not delivered${size}: ${explainError(e, this.target.machine).text}`);
    this.pump();
  }

  private dropGroup(group: number): number {
    let n = 0;
    this.queue = this.queue.filter((q) => (q.group === group ? ((n += q.data.length), false) : true));
    return n;
  }

  /** Sends queued input while the window allows: at most MAX_INPUT_BYTES unconfirmed. */
  private pump(): void {
    while (this.queue.length > 0 && !this.held) {
      const p = this.queue[0];
      if (this.inflightBytes > 0 && this.inflightBytes + p.data.length > MAX_INPUT_BYTES) break;
      if (!this.protocol.request((ref) => ({ $case: 'input', value: { data: p.data, ref, eof: false } }), p)) break;
      this.queue.shift();
      this.requeueAt = 0;
      this.inflightBytes += p.data.length;
    }
    this.reportPending();
  }

  /** The pending marker: what waits because the terminal cannot take it now (not a paste on its way). */
  private reportPending(): void {
    const n = this.held && !this.finished ? this.queuedBytes : 0;
    if (n === this.reportedPending) return;
    this.reportedPending = n;
    this.sink.pending(n);
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
        this.reportPending();
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
    clearTimeout(this.refusedHold);
    this.conn.unregister(this);
    let unsent = this.queuedBytes;
    for (const p of this.protocol.takePending()) unsent += p.data.length; // refused or unanswered: never delivered to a terminal that is gone
    this.inflightBytes = 0;
    this.queue = [];
    this.reportPending();
    if (unsent > 0) this.sink.notice('input', `${unsent} bytes typed were never sent: the terminal is gone`);
    this.sink.ended(e ? explainError(e, this.target.machine).text : 'the session ended', e);
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
