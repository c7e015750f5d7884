// One attachment to a terminal: a bidirectional stream that delivers the
// terminal's output in order and carries input, resizes and signals. It rides
// out the loss of its own connection by re-attaching from the last byte it
// saw (`cursor`), so a client never loses or repeats a byte.
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import {
  AttachMode,
  AttachRequest,
  ClientMessage,
  MAX_INPUT_BYTES,
  OutputGap,
  ScreenSnapshot,
  ServerMessage,
  SessionState,
  SessionStateChange,
  TerminalExit,
  TerminalInfo,
  TerminalOutput,
} from '../protocol';
import {
  CmdopError,
  InvalidArgumentError,
  NotDeliveredError,
  SessionDisconnectedError,
  UnavailableError,
  errorFor,
  fromServiceError,
} from './errors';

export type AttachCall = grpc.ClientDuplexStream<ClientMessage, ServerMessage>;

/** What an attachment needs from its client. */
export interface AttachTransport {
  readonly server: string;
  readonly heartbeatIntervalMs: number;
  readonly reconnectTimeoutMs: number;
  openStream(): AttachCall;
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

/** Statuses after which re-attaching can help: the connection, not the request, failed. */
const RETRYABLE = new Set([status.UNAVAILABLE, status.INTERNAL, status.UNKNOWN, status.CANCELLED]);

export class TerminalAttachment extends EventEmitter<TerminalAttachmentEvents> {
  terminalId: string;
  info: TerminalInfo | undefined;
  /** Offset of the next byte expected: every byte before it has been delivered. */
  cursor = 0;
  exit: TerminalExit | undefined;
  /** Resolves with the exit; rejects when the attachment fails for good. */
  readonly done: Promise<TerminalExit>;
  private call: AttachCall | undefined;
  private closed = false;
  private paused = false;
  private refs = 0;
  private pending = new Map<string, { resolve: (id: string) => void; reject: (e: Error) => void }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private resolveDone!: (e: TerminalExit) => void;
  private rejectDone!: (e: Error) => void;
  private disconnected: SessionStateChange | undefined;

  private constructor(
    private transport: AttachTransport,
    readonly machine: string,
    private request: AttachRequest,
  ) {
    super();
    this.terminalId = request.terminalId;
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    this.done.catch(() => {}); // callers who only listen to events must not see an unhandled rejection
  }

  /** Attaches (or opens and attaches); resolves once the control plane has said `attached`. */
  static async start(transport: AttachTransport, request: AttachRequest): Promise<TerminalAttachment> {
    const a = new TerminalAttachment(transport, request.machine || request.open?.machine || '', request);
    await a.connect(request);
    a.heartbeat = setInterval(() => a.post({ msg: { $case: 'heartbeat', value: { timestampMs: Date.now() } } }),
      transport.heartbeatIntervalMs);
    a.heartbeat.unref();
    return a;
  }

  get mode(): AttachMode {
    return this.request.mode;
  }

  /** Sends one input (at most 64 KiB); resolves with its command_id. */
  sendInput(data: string | Uint8Array, opts: { eof?: boolean } = {}): Promise<string> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length > MAX_INPUT_BYTES) {
      return Promise.reject(
        new InvalidArgumentError(`input of ${bytes.length} bytes is over ${MAX_INPUT_BYTES}; use write()`),
      );
    }
    return this.ask((ref) => ({ msg: { $case: 'input', value: { data: bytes, ref, eof: opts.eof ?? false } } }));
  }

  /** Sends a request answered by `accepted` or `error` with the same ref. */
  private ask(make: (ref: string) => ClientMessage): Promise<string> {
    const ref = String(++this.refs);
    return new Promise((resolve, reject) => {
      this.pending.set(ref, { resolve, reject });
      if (!this.post(make(ref))) {
        this.pending.delete(ref);
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
    await this.ask((ref) => ({ msg: { $case: 'resize', value: { cols, rows, ref } } }));
  }

  /** Sends a signal ("SIGINT", "SIGTERM", ...) to the terminal's process (operators only). */
  async signal(signal: string): Promise<void> {
    await this.ask((ref) => ({ msg: { $case: 'signal', value: { signal, ref } } }));
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
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    this.call?.cancel();
    this.call = undefined;
    this.failPending(new CmdopError('detached', 'CANCELLED'));
  }

  // ---- stream

  private post(msg: ClientMessage): boolean {
    if (!this.call || this.closed) return false;
    this.call.write(msg);
    return true;
  }

  private connect(request: AttachRequest): Promise<void> {
    return new Promise((resolve, reject) => {
      let attached = false;
      const call = this.transport.openStream();
      this.call = call;
      if (this.paused) call.pause();
      call.on('data', (m: ServerMessage) => {
        if (this.call !== call) return;
        if (m.msg?.$case === 'attached') {
          attached = true;
          this.info = m.msg.value.terminal;
          this.terminalId = this.info!.terminalId;
          resolve();
          return;
        }
        this.onMessage(m);
      });
      call.on('error', (e: grpc.ServiceError) => {
        if (this.call !== call || this.closed) return;
        this.call = undefined;
        if (!attached) reject(fromServiceError(e, this.transport.server));
        else this.onLost(e);
      });
      call.on('end', () => {
        if (this.call !== call || this.closed) return;
        this.call = undefined;
        if (!attached) reject(new UnavailableError('the control plane ended the stream before attaching'));
        else this.onEnded();
      });
      call.write({ msg: { $case: 'attach', value: request } });
    });
  }

  private onMessage(m: ServerMessage): void {
    const msg = m.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'output': {
        const o = msg.value;
        const end = o.seq + o.data.length;
        if (end <= this.cursor) return; // already delivered (a re-attach overlap)
        const data = o.seq < this.cursor ? o.data.subarray(this.cursor - o.seq) : o.data;
        this.cursor = end;
        this.emit('output', data, o);
        return;
      }
      case 'snapshot':
        this.cursor = msg.value.seq;
        this.emit('snapshot', msg.value);
        return;
      case 'gap':
        this.cursor = Math.max(this.cursor, msg.value.toSeq);
        this.emit('gap', msg.value);
        return;
      case 'exit':
        this.exit = msg.value;
        this.emit('exit', msg.value);
        this.finish();
        // Requests still in flight will not be answered: the stream ends here.
        this.failPending(new CmdopError(`terminal ${this.terminalId} has exited`, 'FAILED_PRECONDITION'));
        this.resolveDone(msg.value);
        return;
      case 'accepted':
        this.pending.get(msg.value.ref)?.resolve(msg.value.commandId);
        this.pending.delete(msg.value.ref);
        return;
      case 'error': {
        // The control plane answers UNAVAILABLE only for what it did not forward.
        const err =
          msg.value.code === 'UNAVAILABLE'
            ? new NotDeliveredError(msg.value.message, 'UNAVAILABLE')
            : errorFor(msg.value.code, msg.value.message);
        const p = this.pending.get(msg.value.ref);
        if (msg.value.ref && p) {
          this.pending.delete(msg.value.ref);
          p.reject(err);
        } else this.emit('refused', err);
        return;
      }
      case 'state':
        if (msg.value.state === SessionState.DISCONNECTED) this.disconnected = msg.value;
        this.emit('state', msg.value);
        return;
      case 'attached':
        return;
    }
  }

  private onEnded(): void {
    if (this.exit) return;
    if (this.disconnected) {
      this.fail(new SessionDisconnectedError(`machine ${this.machine} disconnected: ${this.disconnected.reason}`));
      return;
    }
    void this.reattach('the control plane ended the stream');
  }

  private onLost(e: grpc.ServiceError): void {
    if (this.disconnected) return this.onEnded();
    if (!RETRYABLE.has(e.code)) {
      this.fail(fromServiceError(e, this.transport.server));
      return;
    }
    void this.reattach(e.details || e.message);
  }

  /** Re-attach from the cursor with backoff until it works or the reconnect timeout passes. */
  private async reattach(reason: string): Promise<void> {
    this.failPending(new UnavailableError(`connection lost (${reason}): input may not have been delivered`));
    this.emit('reconnecting', reason);
    const deadline = Date.now() + this.transport.reconnectTimeoutMs;
    let delay = 100;
    let last: unknown;
    while (!this.closed && Date.now() < deadline) {
      try {
        await this.connect({ ...this.request, open: undefined, terminalId: this.terminalId, fromSeq: this.cursor });
        this.emit('reconnected');
        return;
      } catch (e) {
        last = e;
        if (!(e instanceof UnavailableError)) break;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
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
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private finish(): void {
    clearInterval(this.heartbeat);
    this.closed = true;
  }

  private fail(err: Error): void {
    this.finish();
    this.failPending(err);
    this.call?.cancel();
    this.rejectDone(err);
  }
}
