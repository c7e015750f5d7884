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
import {
  AttachMode,
  SessionState,
  TerminalKind,
  type ClientMessage,
  type ServerMessage,
  type StreamError,
  type TerminalExit,
  type TerminalInfo,
} from '../../../../protocol/generated/cmdop/v1/cmdop';
import { MAX_INPUT_BYTES } from '../../../../protocol/limits';
import type { GatewayConnection, GatewayStreamHandle } from '../../../../sdk/gateway';
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
  ref: string;
  /** The input (one keystroke batch or one paste) this piece belongs to. */
  group: number;
}

export class TerminalSession implements Reattachable {
  terminalId: string;
  /** The next byte expected: every byte before it was received. A re-attach resumes here. */
  cursor = 0;
  /** Every byte before this was rendered; what the gateway is acknowledged. */
  rendered = 0;
  attached = false;
  finished = false;
  private everAttached = false;
  private handle: GatewayStreamHandle | undefined;
  private queue: Piece[] = [];
  private inflight = new Map<string, Piece>();
  private inflightBytes = 0;
  private nextRef = 1;
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
    this.terminalId = target.terminalId ?? '';
    if (target.cols && target.rows) this.size = { cols: target.cols, rows: target.rows };
  }

  get mode(): AttachMode {
    return this.target.mode;
  }

  start(): void {
    this.conn.register(this);
  }

  /** Called by the connection whenever a socket is (re)opened. */
  attachTo(gw: GatewayConnection): void {
    if (this.finished || this.handle) return;
    this.attached = false;
    const { machine, mode } = this.target;
    let attach: Extract<ClientMessage['msg'], { $case: 'attach' }>['value'];
    if (this.terminalId) {
      // Re-attach: exactly the bytes after the last one received. A first
      // attach to an existing terminal gets the current screen instead.
      attach = { machine, terminalId: this.terminalId, mode, open: undefined, fromSeq: this.everAttached ? this.cursor : undefined };
    } else {
      // Open and attach atomically, so no output can come before we listen.
      // (Should the socket drop before `attached`, the terminal opened then
      // is unknown to us and is opened again; the first one stays listed.)
      const spec = { kind: TerminalKind.SHELL, argv: [], shellCommand: '', pty: true, cols: this.size?.cols ?? 80, rows: this.size?.rows ?? 24, env: {}, cwd: '', title: '' };
      attach = { machine, terminalId: '', mode: AttachMode.OPERATOR, open: { machine, spec }, fromSeq: undefined };
      if (this.size) this.sentSize = `${this.size.cols}x${this.size.rows}`;
    }
    const handle: GatewayStreamHandle = gw.openStream(
      { msg: { $case: 'attach', value: attach } },
      {
        message: (m) => {
          if (this.handle === handle) this.onMessage(m);
        },
        end: (e) => {
          if (this.handle !== handle) return;
          this.handle = undefined;
          this.attached = false;
          // The gateway ends its streams before it reports the socket closed;
          // look once the close has been seen.
          setTimeout(() => this.onEnd(gw, e), 0);
        },
      },
    );
    this.handle = handle;
  }

  /** Sends keystrokes or a paste, in order; large ones in pieces. */
  input(data: Uint8Array): void {
    // Defence in depth: observer views never wire input at all.
    if (this.target.mode !== AttachMode.OPERATOR) throw new Error('a watch-only view has no input');
    if (this.finished || data.length === 0) return;
    const group = this.nextGroup++;
    for (let off = 0; off < data.length; off += MAX_INPUT_BYTES) {
      this.queue.push({ data: data.subarray(off, off + MAX_INPUT_BYTES), ref: `i${this.nextRef++}`, group });
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
    const h = this.handle;
    this.handle = undefined;
    h?.close();
  }

  private send(m: ClientMessage['msg']): void {
    this.handle?.send({ msg: m });
  }

  private onMessage(m: ServerMessage): void {
    const msg = m.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'attached': {
        const reattached = this.everAttached;
        this.terminalId = msg.value.terminal?.terminalId ?? this.terminalId;
        this.attached = true;
        this.everAttached = true;
        if (msg.value.terminal) this.sink.attached(msg.value.terminal, reattached);
        if (reattached) this.sink.notice('reconnected', `reconnected: resumed from byte ${this.cursor}`);
        if (this.rendered > this.acked) this.queueAck();
        this.sentSize = msg.value.terminal ? `${msg.value.terminal.cols}x${msg.value.terminal.rows}` : this.sentSize;
        this.sendResize();
        this.pump();
        return;
      }
      case 'output': {
        const { seq, data } = msg.value;
        const end = seq + data.length;
        if (end <= this.cursor) return; // already have it (an overlapping replay)
        let bytes = data;
        if (seq < this.cursor) bytes = data.subarray(this.cursor - seq);
        else if (seq > this.cursor) this.sink.notice('gap', `output bytes ${this.cursor}–${seq} never arrived`);
        this.cursor = end;
        this.sink.write(bytes, () => this.ackTo(end));
        return;
      }
      case 'snapshot': {
        const s = msg.value;
        this.cursor = s.seq;
        this.sink.snapshot(s.data, s.cols, s.rows, () => this.ackTo(s.seq));
        return;
      }
      case 'gap': {
        const { fromSeq, toSeq, reason } = msg.value;
        this.sink.notice('gap', `${toSeq - fromSeq} bytes of output were skipped (bytes ${fromSeq}–${toSeq}): ${reason}`);
        if (toSeq > this.cursor) {
          this.cursor = toSeq;
          // Through the renderer, so the acknowledgement keeps its place in line.
          this.sink.write(new Uint8Array(0), () => this.ackTo(toSeq));
        }
        return;
      }
      case 'accepted': {
        const p = this.inflight.get(msg.value.ref);
        if (p) {
          this.inflight.delete(p.ref);
          this.inflightBytes -= p.data.length;
          this.pump();
        }
        return;
      }
      case 'error':
        return this.onError(msg.value);
      case 'state':
        this.sink.state(msg.value.state, msg.value.reason, msg.value.deadlineMs);
        return;
      case 'exit':
        this.finished = true;
        this.sink.exit(msg.value);
        return;
    }
  }

  private onError(e: StreamError): void {
    const p = this.inflight.get(e.ref);
    if (!p) {
      this.sink.notice('error', `${e.code}: ${e.message}`);
      return;
    }
    this.inflight.delete(p.ref);
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
    while (this.attached && this.handle && this.queue.length > 0) {
      const p = this.queue[0];
      if (this.inflightBytes > 0 && this.inflightBytes + p.data.length > MAX_INPUT_BYTES) return;
      this.queue.shift();
      this.inflight.set(p.ref, p);
      this.inflightBytes += p.data.length;
      this.send({ $case: 'input', value: { data: p.data, ref: p.ref, eof: false } });
    }
  }

  private sendResize(): void {
    if (!this.size || !this.attached || this.target.mode !== AttachMode.OPERATOR) return;
    const key = `${this.size.cols}x${this.size.rows}`;
    if (key === this.sentSize) return;
    this.sentSize = key;
    this.send({ $case: 'resize', value: { cols: this.size.cols, rows: this.size.rows, ref: `z${this.nextRef++}` } });
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
      if (!this.attached || this.rendered <= this.acked) return;
      this.acked = this.rendered;
      this.send({ $case: 'ack', value: { seq: this.rendered } });
    });
  }

  private onEnd(gw: GatewayConnection, e: StreamError | undefined): void {
    if (this.finished) {
      this.conn.unregister(this);
      this.sink.ended('the terminal has exited');
      return;
    }
    if (this.conn.isDead(gw)) {
      // The socket dropped: the connection re-attaches us when it is back.
      this.inputInDoubt();
      this.acked = 0;
      return;
    }
    if (e && (e.code === 'DEADLINE_EXCEEDED' || (e.code === 'UNAVAILABLE' && /client went away/.test(e.message)))) {
      // The control plane dropped only this stream; the socket is fine.
      this.inputInDoubt();
      this.acked = 0;
      const now = this.conn.current;
      if (now) this.attachTo(now);
      return;
    }
    this.finished = true;
    this.conn.unregister(this);
    this.sink.ended(e ? `${e.code}: ${e.message}` : 'the session ended');
  }

  /** Input sent but never confirmed: it may or may not have arrived. Say so; never resend blindly. */
  private inputInDoubt(): void {
    if (this.inflight.size === 0) return;
    let n = 0;
    for (const p of this.inflight.values()) n += p.data.length + this.dropGroup(p.group);
    this.inflight.clear();
    this.inflightBytes = 0;
    this.sink.notice('input', `${n} bytes of input may not have arrived: the connection dropped before the control plane confirmed them`);
  }
}
