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
import { randomUUID } from 'node:crypto';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import {
  ACK_STEP,
  AttachMode,
  ClientMessage,
  ControlMessage,
  Encoded,
  MAX_INPUT_BYTES,
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
} from '../protocol';
import { ApiError, denied, invalid, unavailable } from './errors';
import type { Logger } from '../lib/logger';

export type ClientCall = ServerDuplexStream<ClientMessage, ServerMessage | Encoded>;

/** What a relay needs from the session that owns it. */
export interface RelayHost {
  readonly name: string;
  readonly logger: Logger;
  /** Sends to the agent; false when the agent has no stream right now. */
  sendToAgent(msg: ControlMessage): boolean;
  agentConnected(): boolean;
}

/** How long a late joiner waits for the agent's screen before replaying the buffer instead. */
const SNAPSHOT_TIMEOUT_MS = 3000;
/** How long an exec's output waits for its caller to re-attach (the SDK retries for 60 s). */
const OWNER_HOLD_MS = 60_000;
/** How much one attachment writes per turn before yielding. */
const PUMP_BYTES = 512 * 1024;

export class TerminalRelay {
  readonly log = new OutputLog();
  readonly attachments = new Set<Attachment>();
  exit: TerminalExit | undefined;
  cols: number;
  rows: number;
  private ackedToAgent = 0;
  private snapshotWaiters = new Set<Attachment>();
  private snapshotTimer: NodeJS.Timeout | undefined;
  private ownerHold: number | undefined;
  private ownerHoldTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly spec: TerminalSpec,
    readonly host: RelayHost,
    readonly bufferLimit = RELAY_BUFFER,
    readonly createdMs = Date.now(),
  ) {
    this.cols = spec.cols;
    this.rows = spec.rows;
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
    this.log.append(data, o.commandId, o.stream);
    for (const a of this.attachments) a.pump();
    this.afterProgress();
  }

  onExit(e: TerminalExit): void {
    this.exit = e;
    this.releaseOwner();
    for (const a of this.attachments) a.pump();
    // No more fan-out: drop the shared encodings (they double the buffer).
    for (const c of this.log.readFrom(this.log.start)) c.encoded = undefined;
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
    this.afterProgress();
  }

  // ---- from clients

  attach(call: ClientCall, mode: AttachMode, fromSeq: number | undefined, logger: Logger): Attachment {
    if (fromSeq !== undefined && fromSeq > this.log.head) {
      throw new ApiError(
        'OUT_OF_RANGE',
        `from_seq ${fromSeq} was never sent: terminal ${this.id} has produced ${this.log.head} bytes`,
      );
    }
    const a = new Attachment(this, call, mode);
    // The first operator of an exec is its caller; an operator re-attaching takes its place.
    a.owner = this.spec.kind === TerminalKind.EXEC && mode === AttachMode.OPERATOR;
    this.attachments.add(a);
    a.send({ msg: { $case: 'attached', value: { terminal: this.info(), mode, attachmentId: a.id } } });
    if (fromSeq !== undefined) {
      a.cursor = fromSeq;
      if (a.owner) this.releaseOwner();
      a.pump();
    } else if (this.hasPty && this.log.head > 0 && this.exit === undefined && this.host.agentConnected()) {
      // A late joiner: the current screen first, from the agent's headless terminal.
      a.waitingSnapshot = true;
      this.snapshotWaiters.add(a);
      if (this.snapshotWaiters.size === 1) {
        this.host.sendToAgent({ msg: { $case: 'snapshotRequest', value: { terminalId: this.id } } });
        this.snapshotTimer = setTimeout(() => this.snapshotUnavailable(logger), SNAPSHOT_TIMEOUT_MS);
      }
    } else {
      a.cursor = this.log.start;
      if (this.log.start > 0) a.sendGap(0, this.log.start, 'older output is no longer held; replaying what is');
      a.pump();
    }
    this.afterProgress();
    return a;
  }

  detach(a: Attachment): void {
    if (!this.attachments.delete(a)) return;
    a.closed = true;
    if (a.owner && !this.exit) this.holdForOwner(a.cursor);
    this.snapshotWaiters.delete(a);
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
    return commandId;
  }

  // ---- flow control

  /** The slowest operator's cursor, or the head when no operator is attached. */
  pacingCursor(): number {
    let min = this.ownerHold ?? this.log.head;
    for (const a of this.attachments) if (a.paces && a.cursor < min) min = a.cursor;
    return min;
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
  }

  afterProgress(): void {
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

  private snapshotUnavailable(logger: Logger): void {
    logger.warn({ terminal: this.id }, 'no screen snapshot from the agent; replaying the buffer');
    const waiters = [...this.snapshotWaiters];
    this.snapshotWaiters.clear();
    for (const a of waiters) {
      a.waitingSnapshot = false;
      a.cursor = this.log.start;
      if (this.log.start > 0) a.sendGap(0, this.log.start, 'the screen could not be fetched; replaying what is held');
      a.pump();
    }
  }

  /** Tell every attached client something (state changes). */
  broadcast(msg: ServerMessage): void {
    const encoded = preEncode(ServerMessage, msg);
    for (const a of this.attachments) a.send(encoded);
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
  cursor = 0;
  closed = false;
  owner = false;
  waitingSnapshot = false;
  lastHeardMs = Date.now();
  private writable = true;
  private exitSent = false;

  constructor(
    readonly relay: TerminalRelay,
    readonly call: ClientCall,
    readonly mode: AttachMode,
  ) {
    call.on('drain', () => {
      this.writable = true;
      this.pump();
      this.relay.afterProgress();
    });
  }

  get paces(): boolean {
    return this.mode === AttachMode.OPERATOR && !this.closed;
  }

  send(msg: ServerMessage | Encoded): void {
    if (this.closed) return;
    if (!this.call.write(msg)) this.writable = false;
  }

  sendGap(from: number, to: number, reason: string): void {
    if (to > from) this.send({ msg: { $case: 'gap', value: { fromSeq: from, toSeq: to, reason } } });
  }

  startFromSnapshot(s: ScreenSnapshot): void {
    this.waitingSnapshot = false;
    this.send({ msg: { $case: 'snapshot', value: s } });
    this.cursor = s.seq;
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
      for (const c of chunks) {
        this.send(encodeOutput(this.relay.id, c, share));
        this.cursor = c.seq + c.data.length;
        if (!this.writable) break;
      }
    }
    const exit = this.relay.exit;
    if (exit && !this.exitSent && this.cursor >= log.head) {
      this.sendGap(this.cursor, exit.finalSeq, 'output lost before the exit');
      this.exitSent = true;
      this.send({ msg: { $case: 'exit', value: exit } });
      this.end();
    }
  }

  end(): void {
    if (this.closed) return;
    this.relay.detach(this);
    this.call.end();
  }
}

/**
 * One output chunk as a ServerMessage. With several clients attached it is
 * encoded once and the bytes are kept on the chunk for the others; with one,
 * keeping them would only double the buffer.
 */
function encodeOutput(terminalId: string, c: OutputChunk, share: boolean): Encoded {
  const range = { seq: c.seq, length: c.data.length };
  if (c.encoded) return new Encoded(c.encoded, range);
  const e = encodeOutputEnvelope(OUTPUT_FIELD.server, terminalId, c.seq, c.data, c.commandId, c.stream);
  if (share) c.encoded = e.bytes;
  return new Encoded(e.bytes, range);
}
