// One attachment to a terminal: a bidirectional stream that delivers the
// terminal's output in order and carries input, resizes and signals. It rides
// out the loss of its own connection by re-attaching from the last byte it
// saw (`cursor`), so a client never loses or repeats a byte.
//
// The protocol itself (attach and re-attach requests, the cursor, replays,
// snapshots, gaps, refs, exit, DISCONNECTED) is AttachProtocol's, shared
// with the browser console. What is left here is the gRPC side: the call, its
// status codes and their typed errors, backpressure by pausing the call,
// heartbeats, retrying with backoff, and the EventEmitter/Promise API.
import { EventEmitter } from 'node:events';
import { status } from '@grpc/grpc-js';
import {
  AttachMode,
  AttachRequest,
  ClientMessage,
  MAX_INPUT_BYTES,
  OutputGap,
  ScreenSnapshot,
  ServerMessage,
  SessionStateChange,
  TerminalExit,
  TerminalInfo,
  TerminalOutput,
  type DuplexCall,
} from '../protocol';
import { AttachProtocol, OpenAttachStream, StreamEnding } from './attachProtocol';
import {
  CmdopError,
  InvalidArgumentError,
  NotDeliveredError,
  SessionDisconnectedError,
  UnavailableError,
  errorFor,
  fromServiceError,
} from './errors';
import { hop, hopChunk, tracing } from '../lib/hopTrace';
import { Backoff } from '../protocol/backoff';
import { RETRY_BACKOFF } from './config';

export type AttachCall = DuplexCall<ClientMessage, ServerMessage>;

/** What an attachment needs from its client. */
export interface AttachTransport {
  readonly server: string;
  readonly heartbeatIntervalMs: number;
  readonly reconnectTimeoutMs: number;
  openStream(): AttachCall;
  /**
   * Waits `ms`, or less: until the connection comes up if it is down now
   * (so a re-attach goes as soon as a control plane answers again, not at
   * the next step of its backoff).
   */
  pause?(ms: number): Promise<void>;
}

export interface TerminalAttachmentEvents {
  output: [data: Uint8Array, chunk: TerminalOutput];
  snapshot: [snapshot: ScreenSnapshot];
  gap: [gap: OutputGap];
  exit: [exit: TerminalExit];
  state: [state: SessionStateChange];
  /** A refused request that was not an input with a pending promise (e.g. a resize as observer). */
  refused: [error: CmdopError];
  reconnecting: [reason: string];
  reconnected: [];
}

/** During a flood, acknowledge at least this often (a quarter of the control plane's ack step to the agent). */
const ACK_EVERY = 64 * 1024;

/** Statuses after which re-attaching can help: the connection, not the request, failed. */
const RETRYABLE = new Set([status.UNAVAILABLE, status.INTERNAL, status.UNKNOWN, status.CANCELLED].map((c) => status[c]));

/** How a gRPC call failed: the typed error for callers (its code is the status name), and grpc's details. */
interface CallFailure {
  error: CmdopError;
  details: string;
}

/** A request waiting for its `accepted` (command_id) or `error`. */
interface Waiter {
  resolve(commandId: string): void;
  reject(e: Error): void;
}

export class TerminalAttachment extends EventEmitter<TerminalAttachmentEvents> {
  /** Resolves with the exit; rejects when the attachment fails for good. */
  readonly done: Promise<TerminalExit>;
  /**
   * Resolves once the stream is over after the exit: the control plane has
   * our confirmation of it (so the agent may forget the terminal), or the
   * attachment was closed or failed.
   */
  readonly over: Promise<void>;
  private resolveEnded!: () => void;
  private readonly protocol: AttachProtocol<Waiter, CallFailure>;
  /** What lib/hopTrace.ts noted last here (only with CMDOP_TRACE_HOPS). */
  private readonly traced = { commandId: '' };
  /** The latest gRPC call, for pause/resume. */
  private call: AttachCall | undefined;
  /** The current connect(), until its stream says `attached` or ends. */
  private connecting: { resolve(): void; reject(e: Error): void } | undefined;
  private closed = false;
  private paused = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private resolveDone!: (e: TerminalExit) => void;
  /** The last offset acknowledged to the control plane (queueAck). */
  private ackedSeq = 0;
  private ackQueued = false;
  private rejectDone!: (e: Error) => void;

  private constructor(
    private transport: AttachTransport,
    readonly machine: string,
    private request: AttachRequest,
  ) {
    super();
    this.protocol = new AttachProtocol<Waiter, CallFailure>({
      firstAttach: () => this.request,
      attached: () => {
        // An attach from an offset counts as acknowledging everything before it.
        this.ackedSeq = this.protocol.cursor;
        const c = this.connecting;
        this.connecting = undefined;
        c?.resolve();
      },
      output: (data, chunk) => {
        if (tracing()) hopChunk('client.recv', this.traced, chunk.commandId, chunk.seq, chunk.data.length);
        this.emit('output', data, chunk);
        this.queueAck();
      },
      snapshot: (s) => {
        this.emit('snapshot', s);
        this.queueAck();
      },
      gap: (g) => {
        this.emit('gap', g);
        this.queueAck();
      },
      accepted: (w, commandId) => w.resolve(commandId),
      refused: (e, w) => {
        // The control plane answers UNAVAILABLE only for what it did not forward.
        const err = e.code === 'UNAVAILABLE' ? new NotDeliveredError(e.message, 'UNAVAILABLE', e.reason) : errorFor(e.code, e.message, e.reason);
        if (w) w.reject(err);
        else this.emit('refused', err);
      },
      state: (s) => this.emit('state', s),
      exit: (e) => {
        this.emit('exit', e);
        this.finish();
        // Requests still in flight will not be answered: the stream ends here.
        this.failPending(new CmdopError(`terminal ${this.terminalId} has exited`, 'FAILED_PRECONDITION'));
        this.resolveDone(e);
      },
      ended: (how, failure) => this.ended(how, failure),
    });
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.done.catch(() => {}); // callers who only listen to events must not see an unhandled rejection
    this.over = new Promise((res) => (this.resolveEnded = res));
  }

  /** Attaches (or opens and attaches); resolves once the control plane has said `attached`. */
  static async start(transport: AttachTransport, request: AttachRequest): Promise<TerminalAttachment> {
    const a = new TerminalAttachment(transport, request.machine || request.open?.machine || '', request);
    await a.connect();
    a.heartbeat = setInterval(() => a.protocol.send({ $case: 'heartbeat', value: { timestampMs: Date.now() } }),
      transport.heartbeatIntervalMs);
    a.heartbeat.unref();
    return a;
  }

  get mode(): AttachMode {
    return this.request.mode;
  }

  get terminalId(): string {
    return this.protocol.terminalId;
  }

  get info(): TerminalInfo | undefined {
    return this.protocol.info;
  }

  /** Offset of the next byte expected: every byte before it has been delivered. */
  get cursor(): number {
    return this.protocol.cursor;
  }

  get exit(): TerminalExit | undefined {
    return this.protocol.exit;
  }

  /** Sends one input (at most 64 KiB); resolves with its command_id. */
  sendInput(data: string | Uint8Array, opts: { eof?: boolean } = {}): Promise<string> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length > MAX_INPUT_BYTES) {
      return Promise.reject(
        new InvalidArgumentError(`input of ${bytes.length} bytes is over ${MAX_INPUT_BYTES}; use write()`),
      );
    }
    return this.ask((ref) => {
      if (tracing()) hop('client.send', ref);
      return { $case: 'input', value: { data: bytes, ref, eof: opts.eof ?? false } };
    });
  }

  /** Sends a request answered by `accepted` or `error` with the same ref. */
  private ask(make: (ref: string) => ClientMessage['msg']): Promise<string> {
    return new Promise((resolve, reject) => {
      if (!this.protocol.request(make, { resolve, reject })) {
        reject(new NotDeliveredError('not attached right now: request not sent', 'UNAVAILABLE'));
      }
    });
  }

  /** Sends any amount of input in order, in pieces; resolves with their command_ids. */
  async write(data: string | Uint8Array): Promise<string[]> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const sends: Promise<string>[] = [];
    for (let i = 0; i < bytes.length; i += MAX_INPUT_BYTES) {
      sends.push(this.sendInput(bytes.subarray(i, i + MAX_INPUT_BYTES)));
    }
    return Promise.all(sends);
  }

  /** Closes the command's stdin (exec without a PTY). */
  eof(): Promise<string> {
    return this.sendInput(new Uint8Array(), { eof: true });
  }

  /** Resizes the terminal (operators only); rejects with the control plane's reason. */
  async resize(cols: number, rows: number): Promise<void> {
    await this.ask((ref) => ({ $case: 'resize', value: { cols, rows, ref } }));
  }

  /** Sends a signal ("SIGINT", "SIGTERM", ...) to the terminal's process (operators only). */
  async signal(signal: string): Promise<void> {
    await this.ask((ref) => ({ $case: 'signal', value: { signal, ref } }));
  }

  /**
   * Acknowledges what has been received (the request says `acks`): once per
   * turn of the event loop, or at once every ACK_EVERY bytes during a flood,
   * so the control plane paces by what arrived and the agent keeps the rest.
   */
  private queueAck(): void {
    const cursor = this.protocol.cursor;
    if (cursor - this.ackedSeq >= ACK_EVERY) return this.sendAck();
    if (this.ackQueued) return;
    this.ackQueued = true;
    setImmediate(() => {
      this.ackQueued = false;
      this.sendAck();
    });
  }

  private sendAck(): void {
    const cursor = this.protocol.cursor;
    if (cursor <= this.ackedSeq || !this.protocol.attached) return;
    this.ackedSeq = cursor;
    this.protocol.ack(cursor);
  }

  /** Stop reading output (backpressure reaches the agent for operators). */
  pause(): void {
    this.paused = true;
    this.call?.pause();
  }

  resume(): void {
    this.paused = false;
    this.call?.resume();
  }

  /** Detach. The terminal keeps running. */
  close(): void {
    this.resolveEnded();
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.protocol.close();
    this.failPending(new CmdopError('detached', 'CANCELLED'));
  }

  // ---- stream

  /** A gRPC call as the protocol's stream; its failures keep grpc's status and metadata, typed here. */
  private openCall: OpenAttachStream<CallFailure> = (first, handlers) => {
    const call = this.transport.openStream();
    this.call = call;
    if (this.paused) call.pause();
    call.on('data', handlers.message);
    call.on('error', (e) =>
      handlers.end({ error: fromServiceError(e, this.transport.server), details: e.details || e.message }),
    );
    call.on('end', () => handlers.end(undefined));
    call.write(first);
    return { send: (m) => call.write(m), close: () => call.cancel() };
  };

  /** Opens a stream (attach, or re-attach from the cursor); resolves once it says `attached`. */
  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.connecting = { resolve, reject };
      this.protocol.connect(this.openCall);
    });
  }

  /**
   * A stream is over. Before `attached`, the connect() that opened it failed.
   * After: nothing to do past the exit; the machine's session gone is final;
   * otherwise re-attach when the connection (not the request) failed.
   */
  private ended(how: StreamEnding, failure: CallFailure | undefined): void {
    const c = this.connecting;
    if (c) {
      this.connecting = undefined;
      c.reject(failure?.error ?? new UnavailableError('the control plane ended the stream before attaching'));
      return;
    }
    if (how === 'exited') this.resolveEnded();
    if (this.closed || how === 'exited') return;
    if (how === 'disconnected') {
      const reason = this.protocol.disconnected!.reason;
      this.fail(new SessionDisconnectedError(`machine ${this.machine} disconnected: ${reason}`));
    } else if (!failure) {
      void this.reattach('the control plane ended the stream');
    } else if (!RETRYABLE.has(failure.error.code)) {
      this.fail(failure.error);
    } else {
      void this.reattach(failure.details);
    }
  }

  /** Re-attach from the cursor with backoff until it works or the reconnect timeout passes. */
  private async reattach(reason: string): Promise<void> {
    this.failPending(new UnavailableError(`connection lost (${reason}): input may not have been delivered`));
    this.emit('reconnecting', reason);
    const deadline = Date.now() + this.transport.reconnectTimeoutMs;
    const backoff = new Backoff(RETRY_BACKOFF);
    let last: unknown;
    while (!this.closed && Date.now() < deadline) {
      try {
        await this.connect();
        this.emit('reconnected');
        return;
      } catch (e) {
        last = e;
        if (!(e instanceof UnavailableError)) break;
        const delay = backoff.next();
        await (this.transport.pause ? this.transport.pause(delay) : new Promise((r) => setTimeout(r, delay)));
      }
    }
    if (this.closed) return;
    const err =
      last instanceof CmdopError && !(last instanceof UnavailableError)
        ? last
        : new UnavailableError(`could not re-attach to terminal ${this.terminalId} within ${this.transport.reconnectTimeoutMs} ms: ${reason}`);
    this.fail(err);
  }

  private failPending(err: Error): void {
    for (const w of this.protocol.takePending()) w.reject(err);
  }

  private finish(): void {
    clearInterval(this.heartbeat);
    this.closed = true;
  }

  private fail(err: Error): void {
    this.resolveEnded();
    this.finish();
    this.failPending(err);
    this.protocol.close();
    this.rejectDone(err);
  }
}
