// One terminal as the control plane sees it: recent output (OutputLog), the
// clients attached to it, and the flow control between them and the agent.
//
// Flow control: operators pace the terminal. The control plane acknowledges
// output to the agent only up to the slowest operator's cursor, and the agent
// stops reading the PTY once AGENT_WINDOW bytes are unacknowledged, so an
// operator (and exec, which attaches as one) receives every byte and Ctrl-C
// is never more than a window behind. Observers never pace: one that falls
// behind the buffer is told the exact range it skipped (OutputGap) and jumps
// ahead. With no operator attached, output is acknowledged on arrival.
//
// What "read" means: a client that says it acknowledges (AttachRequest.acks:
// the SDK and the console do) paces by the bytes it has confirmed receiving;
// an older one by the bytes written to its stream. The difference matters
// when this process dies: bytes written to a socket may never arrive, and
// the agent must still hold them for the next control plane. For the same
// reason the agent's copy of an exit is released only once every operator
// has confirmed it (or, for an exec, its caller; see holdForOwner).
//
// After a restart this relay is rebuilt from the store with no bytes: it
// learns from the resuming agent where its output stands (restoreFrom), and
// until the operators that were attached have come back (or RESTORE_HOLD_MS
// has passed) it acknowledges nothing, so the agent keeps every byte they
// may still need.
import { randomUUID } from 'node:crypto';
import {
  ACK_STEP,
  AttachMode,
  ControlMessage,
  Encoded,
  MAX_INPUT_BYTES,
  MAX_OUTPUT_CHUNK,
  OutputChunk,
  OutputLog,
  RELAY_BUFFER,
  ScreenSnapshot,
  ServerMessage,
  TerminalExit,
  TerminalInfo,
  TerminalKind,
  TerminalOutput,
  TerminalSpec,
  OUTPUT_FIELD,
  encodeOutputEnvelope,
  preEncode,
} from '../../protocol';
import { ApiError, denied, invalid, unavailable } from './errors';
import type { ClientStream } from './ports';
import type { Logger } from '../../lib/logger';
import { hop, hopChunk, tracing } from '../../lib/hopTrace';
import { UNREAD_COUNTERS, type Counters } from './counters';

/** An attached client's stream, whatever carries it. */
export type AttachStream = ClientStream<ServerMessage | Encoded>;

/** What a relay needs from the session that owns it. */
export interface RelayHost {
  readonly name: string;
  readonly logger: Logger;
  /** Where the relay's byte totals go (core/counters.ts); none: counted nowhere anyone reads. */
  readonly counters?: Counters;
  /** Sends to the agent; false when the agent has no stream right now. */
  sendToAgent(msg: ControlMessage): boolean;
  agentConnected(): boolean;
  /** The relay's durable part changed (size, operators attached): keep it for a restart. */
  persist(relay: TerminalRelay): void;
}

/** How long a late joiner waits for the agent's screen before replaying the buffer instead. */
const SNAPSHOT_TIMEOUT_MS = 3000;
/** How long an exec's output waits for its caller to re-attach (the SDK retries for 60 s). */
const OWNER_HOLD_MS = 60_000;
/**
 * Output an exited terminal keeps once every operator has confirmed all of
 * it: a session keeps up to 16 exited terminals for 90 s (session.ts), and
 * at the full RELAY_BUFFER each, a loop of `cmdop exec` held 60-85 MB that no
 * one could still need (bench issue2: idle RSS 261 MB after 8 runs).
 */
const EXITED_BUFFER = 256 * 1024;
/** How much one attachment writes per turn before yielding. */
const PUMP_BYTES = 512 * 1024;
/** After a restart: how long the relay waits for its operators to re-attach before acknowledging without them. */
export const RESTORE_HOLD_MS = 15_000;

export class TerminalRelay {
  readonly log = new OutputLog();
  /** What lib/hopTrace.ts noted last here (only with CMDOP_TRACE_HOPS). */
  readonly traced = { commandId: '' };
  readonly attachments = new Set<Attachment>();
  exit: TerminalExit | undefined;
  cols: number;
  rows: number;
  /** What the agent last said runs in the foreground, when not the shell (TerminalForeground). */
  foreground = '';
  private ackedToAgent = 0;
  /** The agent has been told it may forget this terminal's exit. */
  private exitAckedToAgent = false;
  private snapshotWaiters = new Set<Attachment>();
  private snapshotTimer: NodeJS.Timeout | undefined;
  private ownerHold: number | undefined;
  private ownerHoldTimer: NodeJS.Timeout | undefined;
  /** Rebuilt after a restart and the agent has not said yet where the output stands. */
  awaitingAgent = false;
  /** After a restart or a takeover: how far the resuming agent said its output has got (it resends what was not acknowledged). */
  private promisedHead = 0;
  /** After a restart: operators still expected back before acknowledging without them. */
  private restoreHold: { waiting: number; timer: NodeJS.Timeout } | undefined;
  /** Operators attached, as last persisted. */
  persistedOperators = 0;
  /** The control plane's byte totals (plain additions on the output path; read by /metrics). */
  readonly counters: Counters;

  constructor(
    readonly id: string,
    readonly spec: TerminalSpec,
    readonly host: RelayHost,
    readonly bufferLimit = RELAY_BUFFER,
    readonly createdMs = Date.now(),
  ) {
    this.cols = spec.cols;
    this.rows = spec.rows;
    this.counters = host.counters ?? UNREAD_COUNTERS;
  }

  get hasPty(): boolean {
    return this.spec.kind === TerminalKind.SHELL || this.spec.pty;
  }

  info(): TerminalInfo {
    let operators = 0;
    let observers = 0;
    for (const a of this.attachments) a.mode === AttachMode.OPERATOR ? operators++ : observers++;
    return {
      terminalId: this.id,
      machine: this.host.name,
      spec: this.spec,
      createdMs: this.createdMs,
      exited: this.exit !== undefined,
      exitCode: this.exit?.exitCode ?? 0,
      headSeq: this.log.head,
      operators,
      observers,
      foreground: this.exit ? '' : this.foreground,
      cols: this.cols,
      rows: this.rows,
    };
  }

  // ---- from the agent

  onOutput(o: TerminalOutput): void {
    let { seq, data } = o;
    const head = this.log.head;
    if (seq + data.length <= head) return; // a replay of bytes already held
    if (seq < head) {
      data = data.subarray(head - seq);
      seq = head;
    } else if (seq > head) {
      // The agent never skips; if it ever does, clients learn the range.
      this.host.logger.warn({ terminal: this.id, from: head, to: seq }, 'agent output skipped a range');
      for (const a of this.attachments) if (a.cursor === head) a.cursor = seq;
      for (const a of this.attachments) a.sendGap(head, seq, 'the agent did not deliver this range');
      this.log.skipTo(seq);
    }
    if (tracing()) hopChunk('cp.out', this.traced, o.commandId, seq, data.length);
    this.counters.relayFromAgent += data.length;
    this.log.append(data, o.commandId, o.stream);
    for (const a of this.attachments) a.pump();
    this.afterProgress();
  }

  onExit(e: TerminalExit): void {
    const first = !this.exit;
    this.exit = e;
    if (first) {
      // No more fan-out: drop the shared encodings (they double the buffer).
      for (const c of this.log.readFrom(this.log.start)) c.encoded = undefined;
    }
    for (const a of this.attachments) a.pump();
    this.maybeAckExit();
  }

  /**
   * The agent forgets an exited terminal once told to, so it is told only
   * when no one who needs the exit can still miss it: all output has
   * arrived, every operator has it (confirmed, for one that acknowledges),
   * and no exec caller or restart is being waited for.
   */
  maybeAckExit(): void {
    const e = this.exit;
    if (!e || this.exitAckedToAgent || this.log.head < e.finalSeq) return;
    if (this.ownerHold !== undefined || this.restoreHold) return;
    for (const a of this.attachments) if (a.paces && !a.hasExit) return;
    if (this.host.sendToAgent({ msg: { $case: 'ack', value: { terminalId: this.id, seq: e.finalSeq, exit: true } } })) {
      this.exitAckedToAgent = true;
      this.ackedToAgent = e.finalSeq;
      // Every operator has all of it now: what stays only serves a late joiner, who gets the tail and is told of the rest (OutputGap).
      while (this.log.size > EXITED_BUFFER) this.log.dropOldest();
    }
  }

  onSnapshot(s: ScreenSnapshot): void {
    clearTimeout(this.snapshotTimer);
    const waiters = [...this.snapshotWaiters];
    this.snapshotWaiters.clear();
    for (const a of waiters) a.startFromSnapshot(s);
  }

  /** The agent is back on a new stream: acks restart from what it still holds. */
  onAgentResumed(agentAcked: number): void {
    this.ackedToAgent = Math.min(this.ackedToAgent, agentAcked);
    // The agent resends an exit it still holds; the ack may have been lost with the old stream.
    this.exitAckedToAgent = false;
    this.afterProgress();
    if (this.snapshotWaiters.size > 0) this.requestSnapshot();
  }

  /**
   * After a restart: the resuming agent still holds output from `agentAcked`
   * on (everything before it was acknowledged by the previous control plane,
   * so every operator had it). The log continues from there.
   */
  restoreFrom(agentAcked: number, agentProduced: number): void {
    if (!this.awaitingAgent) return;
    this.awaitingAgent = false;
    // What the agent is about to send again may be what a client already had from the previous holder: an offset up to here is valid.
    this.promisedHead = agentProduced;
    if (agentAcked > this.log.head) this.log.skipTo(agentAcked);
    this.ackedToAgent = agentAcked;
    for (const a of this.attachments) a.pump();
  }

  /** Rebuilt after a restart: hold acknowledgements until `operators` have re-attached, or RESTORE_HOLD_MS. */
  holdForRestore(operators: number): void {
    this.awaitingAgent = true;
    this.persistedOperators = operators;
    if (operators <= 0) return;
    const timer = setTimeout(() => this.releaseRestore(), RESTORE_HOLD_MS);
    timer.unref();
    this.restoreHold = { waiting: operators, timer };
  }

  private releaseRestore(): void {
    if (!this.restoreHold) return;
    clearTimeout(this.restoreHold.timer);
    this.restoreHold = undefined;
    this.afterProgress();
  }

  // ---- from clients

  attach(stream: AttachStream, mode: AttachMode, fromSeq: number | undefined, logger: Logger, acks = false): Attachment {
    // Before the agent is back from a restart the head is not known yet: any offset may be right.
    const head = Math.max(this.log.head, this.promisedHead);
    if (fromSeq !== undefined && fromSeq > head && !this.awaitingAgent) {
      throw new ApiError(
        'OUT_OF_RANGE',
        `from_seq ${fromSeq} was never sent: terminal ${this.id} has produced ${head} bytes`,
      );
    }
    this.logger = logger;
    const a = new Attachment(this, stream, mode, acks);
    // The first operator of an exec is its caller; an operator re-attaching takes its place.
    a.owner = this.spec.kind === TerminalKind.EXEC && mode === AttachMode.OPERATOR;
    this.attachments.add(a);
    a.send({ msg: { $case: 'attached', value: { terminal: this.info(), mode, attachmentId: a.id } } });
    const screenKept = this.hasPty && this.exit === undefined;
    if (fromSeq !== undefined && !(fromSeq < this.log.start && screenKept && mode === AttachMode.OBSERVER)) {
      a.cursor = a.acked = fromSeq;
      if (a.owner) this.releaseOwner();
      a.pump();
    } else if (screenKept && (this.log.head > 0 || this.awaitingAgent || fromSeq !== undefined)) {
      // A late joiner: the current screen first, from the agent's headless
      // terminal (asked for now, or once the agent is back). An observer
      // whose bytes are no longer held gets the screen too, and the range it
      // missed named.
      if (fromSeq !== undefined) a.missedFrom = fromSeq;
      a.cursor = a.acked = this.log.head;
      a.waitingSnapshot = true;
      this.snapshotWaiters.add(a);
      if (this.snapshotWaiters.size === 1 && this.host.agentConnected() && !this.awaitingAgent) this.requestSnapshot();
    } else {
      a.cursor = a.acked = this.log.start;
      if (this.log.start > 0) a.sendGap(0, this.log.start, 'older output is no longer held; replaying what is');
      a.pump();
    }
    if (mode === AttachMode.OPERATOR && this.restoreHold && --this.restoreHold.waiting <= 0) this.releaseRestore();
    this.operatorsChanged();
    this.afterProgress();
    return a;
  }

  private logger: Logger | undefined;

  private requestSnapshot(): void {
    clearTimeout(this.snapshotTimer);
    this.host.sendToAgent({ msg: { $case: 'snapshotRequest', value: { terminalId: this.id } } });
    this.snapshotTimer = setTimeout(() => this.snapshotUnavailable(), SNAPSHOT_TIMEOUT_MS);
  }

  detach(a: Attachment): void {
    if (!this.attachments.delete(a)) return;
    a.closed = true;
    if (a.owner && !(this.exit && a.hasExit)) this.holdForOwner(a.pacePoint);
    this.snapshotWaiters.delete(a);
    this.operatorsChanged();
    this.afterProgress();
    this.maybeAckExit();
  }

  /** Operators attached, kept for a restart (which waits for them to come back). */
  private operatorsChanged(): void {
    let n = 0;
    for (const a of this.attachments) if (a.mode === AttachMode.OPERATOR) n++;
    if (n !== this.persistedOperators) {
      this.persistedOperators = n;
      this.host.persist(this);
    }
  }

  /** A client's acknowledgement (AttachRequest.acks): it has every byte before `seq`, and the exit if `exit`. */
  onClientAck(a: Attachment, seq: number, exit: boolean): void {
    if (!a.acks) return;
    if (seq > a.acked && seq <= a.cursor) a.acked = seq;
    if (exit && a.exitSent) {
      a.hasExit = true;
      if (a.owner) this.releaseOwner();
      this.maybeAckExit();
      a.end();
      return;
    }
    this.afterProgress();
  }

  input(a: Attachment, data: Uint8Array, eof: boolean): string {
    if (a.mode !== AttachMode.OPERATOR) {
      throw denied('this attachment is an OBSERVER: input is refused and was not sent');
    }
    if (data.length > MAX_INPUT_BYTES) {
      throw invalid(`input of ${data.length} bytes is over the ${MAX_INPUT_BYTES}-byte limit; send it in pieces`);
    }
    if (this.exit) throw new ApiError('FAILED_PRECONDITION', `terminal ${this.id} has exited`);
    const commandId = randomUUID();
    const sent = this.host.sendToAgent({
      msg: { $case: 'input', value: { terminalId: this.id, commandId, data, eof } },
    });
    if (!sent) throw unavailable(`machine ${this.host.name} is not connected: input was not delivered`);
    this.counters.relayToAgent += data.length;
    if (tracing()) hop('cp.toAgent', commandId);
    return commandId;
  }

  // ---- flow control

  /** The slowest operator's confirmed cursor, or the head when no operator is attached. */
  pacingCursor(): number {
    if (this.restoreHold) return this.log.start;
    let min = this.ownerHold ?? this.log.head;
    for (const a of this.attachments) if (a.paces && a.pacePoint < min) min = a.pacePoint;
    return Math.max(min, this.log.start);
  }

  /**
   * An exec's output belongs to its caller. From the open until the caller
   * attaches, and for OWNER_HOLD_MS after its attachment is lost (while it
   * re-attaches), the relay paces as if it were still reading at `cursor`,
   * so nothing is acknowledged past it and nothing it needs is dropped.
   */
  holdForOwner(cursor: number): void {
    if (this.exit) return;
    this.ownerHold = cursor;
    clearTimeout(this.ownerHoldTimer);
    this.ownerHoldTimer = setTimeout(() => this.releaseOwner(), OWNER_HOLD_MS);
    this.ownerHoldTimer.unref();
  }

  releaseOwner(): void {
    clearTimeout(this.ownerHoldTimer);
    if (this.ownerHold === undefined) return;
    this.ownerHold = undefined;
    this.afterProgress();
    this.maybeAckExit();
  }

  afterProgress(): void {
    if (this.awaitingAgent) return; // nothing held, nothing to acknowledge until the agent says where it stands
    const upTo = this.pacingCursor();
    if (upTo > this.ackedToAgent && (upTo - this.ackedToAgent >= ACK_STEP || upTo === this.log.head)) {
      if (this.host.sendToAgent({ msg: { $case: 'ack', value: { terminalId: this.id, seq: upTo, exit: false } } })) {
        this.ackedToAgent = upTo;
      }
    }
    // Keep bufferLimit bytes for re-attach and observers, and never drop what an operator still needs.
    while (this.log.size > this.bufferLimit) {
      const c = this.log.oldest()!;
      if (c.seq + c.data.length > upTo) break;
      this.log.dropOldest();
    }
  }

  private snapshotUnavailable(): void {
    this.logger?.warn({ terminal: this.id }, 'no screen snapshot from the agent; replaying the buffer');
    const waiters = [...this.snapshotWaiters];
    this.snapshotWaiters.clear();
    for (const a of waiters) {
      a.waitingSnapshot = false;
      const from = a.missedFrom ?? 0;
      a.cursor = a.acked = Math.max(from, this.log.start);
      a.sendGap(from, this.log.start, 'the screen could not be fetched; replaying what is held');
      a.pump();
    }
  }

  /** Tell every attached client something (state changes). */
  broadcast(msg: ServerMessage): void {
    const encoded = preEncode(ServerMessage, msg);
    for (const a of this.attachments) a.send(encoded);
  }

  /** This process is stopping: end every attachment with `err` (UNAVAILABLE: re-attach), stop every timer. */
  dispose(err: ApiError): void {
    clearTimeout(this.snapshotTimer);
    clearTimeout(this.ownerHoldTimer);
    if (this.restoreHold) clearTimeout(this.restoreHold.timer);
    for (const a of [...this.attachments]) {
      this.attachments.delete(a);
      a.closed = true;
      if (!a.stream.closed) a.stream.fail(err);
    }
  }

  /** End every attachment (the session is over). */
  endAll(msg: ServerMessage): void {
    for (const a of [...this.attachments]) {
      a.send(msg);
      a.end();
    }
  }
}

export class Attachment {
  readonly id = randomUUID();
  /** What lib/hopTrace.ts noted last here (only with CMDOP_TRACE_HOPS). */
  readonly traced = { commandId: '' };
  /** The next byte to write to the client. */
  cursor = 0;
  /** Every byte before this is confirmed received (for a client that acknowledges; else it follows the cursor). */
  acked = 0;
  closed = false;
  owner = false;
  waitingSnapshot = false;
  /** A re-attach from bytes no longer held: the screen is sent, and [missedFrom, its seq) named as skipped. */
  missedFrom: number | undefined;
  lastHeardMs = Date.now();
  exitSent = false;
  /** The client has the exit: confirmed (acks), or written to its stream (older clients). */
  hasExit = false;
  private writable = true;

  constructor(
    readonly relay: TerminalRelay,
    readonly stream: AttachStream,
    readonly mode: AttachMode,
    /** This client acknowledges what it receives (AttachRequest.acks). */
    readonly acks = false,
  ) {
    stream.onDrain(() => {
      this.writable = true;
      this.pump();
      this.relay.afterProgress();
    });
  }

  get paces(): boolean {
    return this.mode === AttachMode.OPERATOR && !this.closed;
  }

  /** How far this client is known to have read. */
  get pacePoint(): number {
    return this.acks ? this.acked : this.cursor;
  }

  send(msg: ServerMessage | Encoded): void {
    if (this.closed) return;
    if (!this.stream.write(msg)) this.writable = false;
  }

  sendGap(from: number, to: number, reason: string): void {
    if (to > from) this.send({ msg: { $case: 'gap', value: { fromSeq: from, toSeq: to, reason } } });
  }

  startFromSnapshot(s: ScreenSnapshot): void {
    this.waitingSnapshot = false;
    if (this.missedFrom !== undefined) this.sendGap(this.missedFrom, s.seq, 'this output is no longer held; the current screen follows');
    this.send({ msg: { $case: 'snapshot', value: s } });
    this.cursor = s.seq;
    if (this.acked < s.seq) this.acked = s.seq;
    this.pump();
  }

  /** Send what the log holds past the cursor while the stream takes it. */
  pump(): void {
    if (this.closed || this.waitingSnapshot) return;
    const log = this.relay.log;
    while (this.writable) {
      if (this.cursor < log.start) {
        this.sendGap(this.cursor, log.start, 'this client fell behind the control plane buffer');
        this.cursor = log.start;
      }
      const chunks = log.readFrom(this.cursor, PUMP_BYTES);
      if (chunks.length === 0) break;
      const share = this.relay.attachments.size > 1;
      for (const run of share ? chunks.map((c) => [c]) : runsOf(chunks)) {
        const first = run[0];
        const end = run[run.length - 1].seq + run[run.length - 1].data.length;
        this.send(encodeOutput(this.relay.id, run, share));
        if (tracing()) hopChunk('cp.toClient', this.traced, first.commandId, first.seq, end - first.seq);
        this.relay.counters.relayToClients += end - first.seq;
        this.cursor = end;
        if (!this.writable) break;
      }
    }
    const exit = this.relay.exit;
    if (exit && !this.exitSent && this.cursor >= log.head && !this.relay.awaitingAgent) {
      this.sendGap(this.cursor, exit.finalSeq, 'output lost before the exit');
      this.exitSent = true;
      this.send({ msg: { $case: 'exit', value: exit } });
      // A client that acknowledges ends the stream by confirming the exit (onClientAck).
      if (this.acks) return;
      this.hasExit = true;
      this.end();
    }
  }

  end(): void {
    if (this.closed) return;
    this.relay.detach(this);
    this.stream.end();
  }
}

/**
 * Consecutive chunks of one command and stream, in runs of at most
 * MAX_OUTPUT_CHUNK bytes (a chunk the agent sent larger stays alone), each
 * to go out as one message. Only for a terminal with one client: with more,
 * each chunk is encoded once for all of them instead.
 *
 * Why: a client that was held back (its window full, or just slower than
 * the agent) finds several chunks waiting, the agent's of ~4-100 KiB (it
 * gathers a PTY's reads for 2 ms). Sent one message each, a browser console
 * takes each in a task of its own, acknowledges each, and xterm.js parses
 * them in small slices with a frame drawn after each: rendering `cat` of
 * 20 MB the console drew 116-139 frames where a bare xterm.js page draws ~30
 * for the same bytes, and frames (layout, paint, raster and compositing, in
 * three processes) took most of its CPU. Merged, in the same bench run
 * (bench/consoleRender.ts, rounds alternating): 78-87 frames, 2.54 s of CPU
 * for everything instead of 3.32, 12.9 MB/s instead of 9.6; over 50 MB, a
 * fifth of the WebSocket messages and a third of the acknowledgements. The
 * copy is the one the encoder makes anyway. What a stream may hold stays one agent chunk past its window
 * (the gateway's HIGH_WATERMARK + MAX_OUTPUT_CHUNK), as before.
 */
function runsOf(chunks: OutputChunk[]): OutputChunk[][] {
  const runs: OutputChunk[][] = [];
  let run: OutputChunk[] = [];
  let bytes = 0;
  for (const c of chunks) {
    const last = run[run.length - 1];
    const joins =
      last !== undefined &&
      c.commandId === last.commandId &&
      c.stream === last.stream &&
      c.seq === last.seq + last.data.length &&
      bytes + c.data.length <= MAX_OUTPUT_CHUNK;
    if (!joins && run.length > 0) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(c);
    bytes += c.data.length;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * A run of output chunks (runsOf) as one ServerMessage. A chunk on its own,
 * with several clients attached, is encoded once and the bytes are kept on
 * the chunk for the others; with one client, keeping them would only double
 * the buffer.
 */
function encodeOutput(terminalId: string, run: OutputChunk[], share: boolean): Encoded {
  const c = run[0];
  if (run.length > 1) {
    const e = encodeOutputEnvelope(OUTPUT_FIELD.server, terminalId, c.seq, run.map((x) => x.data), c.commandId, c.stream);
    const last = run[run.length - 1];
    return new Encoded(e.bytes, { seq: c.seq, length: last.seq + last.data.length - c.seq });
  }
  const range = { seq: c.seq, length: c.data.length };
  if (c.encoded) return new Encoded(c.encoded, range);
  const e = encodeOutputEnvelope(OUTPUT_FIELD.server, terminalId, c.seq, c.data, c.commandId, c.stream);
  if (share) c.encoded = e.bytes;
  return new Encoded(e.bytes, range);
}
