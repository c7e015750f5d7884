// One terminal on the agent: its process, its output sequence, and the
// output the control plane has not acknowledged yet (kept so that a dropped
// connection loses nothing: after a resume the agent resends from what the
// control plane says it holds).
//
// Flow control: once the unacknowledged output reaches the window (connected)
// or the offline buffer (no stream), or the screen's parser has fallen
// MAX_BACKLOG behind (screen.ts), the agent stops reading the process's
// output, which blocks the process on its next write. Nothing is dropped.
import {
  AGENT_OFFLINE_BUFFER,
  AGENT_WINDOW,
  AgentMessage,
  Encoded,
  MAX_OUTPUT_CHUNK,
  OUTPUT_FIELD,
  encodeOutputEnvelope,
  OutputLog,
  OutputStream,
  ScreenSnapshot,
  SignalName,
  TerminalKind,
  TerminalSpec,
} from '../../protocol';
import { ExitStatus, RunningProcess, startProcess } from './processes';
import { Screen } from './screen';
import { hop, hopChunk, tracing } from '../../lib/hopTrace';

/** Where a terminal sends its messages: the agent's current stream, if any. */
export interface TerminalSink {
  /** False when there is no stream now; the message was not sent. */
  send(msg: AgentMessage | Encoded): boolean;
  connected(): boolean;
}

/** How long streaming output is gathered into one chunk (see onData). */
const BATCH_MS = 2;
/**
 * ...and once it has streamed for FLOOD_AFTER flushes in a row (a flood):
 * every message costs every process on its way the same whatever its size,
 * and a PTY flood at ~35 MB/s filled 2 ms batches to ~70 KiB. With 8 ms
 * (chunks near MAX_OUTPUT_CHUNK) a 100 MB `cat` took 15-25 % less CPU in
 * the CLI (0.57-0.92 s against 0.76-1.14 s over six alternating pairs; the
 * other processes within noise); a flood's bytes arrive at most 6 ms later.
 * Short bursts (a prompt, a redraw) keep the 2 ms batches.
 */
const FLOOD_BATCH_MS = 8;
const FLOOD_AFTER = 3;

export interface WindowSizes {
  connected: number;
  offline: number;
}

export class TerminalHost {
  readonly log = new OutputLog(); // unacknowledged output
  private proc: RunningProcess;
  private screen: Screen | undefined;
  private sentSeq = 0; // next byte to send on the current stream
  private commandId = '';
  /** What lib/hopTrace.ts noted last here (only with CMDOP_TRACE_HOPS). */
  private echoTraced = '';
  private readonly traced = { flush: { commandId: '' }, send: { commandId: '' } };
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pendingStream = OutputStream.OUTPUT_STREAM_UNSPECIFIED;
  private flushScheduled = false;
  private lastFlushMs = -Infinity;
  /** Flushes in a row that were of streaming output (see FLOOD_BATCH_MS). */
  private streamingFlushes = 0;
  private paused = false;
  private exitStatus: ExitStatus | undefined;
  private exitSent = false;
  private onGone: (() => void) | undefined;

  constructor(
    readonly id: string,
    readonly spec: TerminalSpec,
    private sink: TerminalSink,
    private windows: WindowSizes = { connected: AGENT_WINDOW, offline: AGENT_OFFLINE_BUFFER },
  ) {
    if (spec.kind === TerminalKind.SHELL || spec.pty) {
      this.screen = new Screen(id, spec.cols, spec.rows, () => this.applyWindow());
    }
    this.proc = startProcess(spec, id, {
      onData: (d, s) => this.onData(d, s),
      onExit: (st) => this.onExit(st),
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  get exited(): boolean {
    return this.exitStatus !== undefined;
  }

  /** Called once the exit has been sent and acknowledged: the terminal can be forgotten. */
  whenGone(cb: () => void): void {
    this.onGone = cb;
  }

  // ---- output path (the hottest path: buffer operations only)

  private onData(data: Buffer, stream: OutputStream): void {
    if (this.echoTraced !== this.commandId && tracing()) {
      this.echoTraced = this.commandId;
      hop('agent.read', this.commandId);
    }
    if (this.pendingBytes > 0 && stream !== this.pendingStream) this.flush();
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.pendingStream = stream;
    if (this.pendingBytes >= MAX_OUTPUT_CHUNK) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // A PTY hands over ~4 KiB per read, one read per event-loop turn, and
      // every message costs the same in three processes whatever its size.
      // Output arriving within BATCH_MS of the last flush is a stream: wait
      // BATCH_MS and send it as one chunk. Output after a quiet spell (a
      // keystroke's echo) goes out at the end of this turn, with no delay.
      const streaming = performance.now() - this.lastFlushMs < BATCH_MS;
      this.streamingFlushes = streaming ? this.streamingFlushes + 1 : 0;
      if (!streaming) setImmediate(this.scheduledFlush);
      else setTimeout(this.scheduledFlush, this.streamingFlushes > FLOOD_AFTER ? FLOOD_BATCH_MS : BATCH_MS);
    }
  }

  private scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  private flush(): void {
    if (this.pendingBytes === 0) return;
    this.lastFlushMs = performance.now();
    const data = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (tracing()) hopChunk('agent.flush', this.traced.flush, '', this.log.head, data.length);
    this.log.append(data, this.commandId, this.pendingStream);
    // Out to the control plane before the copy to the screen's worker: a keystroke's echo waits on the first, not the second.
    this.sendPending();
    this.screen?.write(data);
    this.applyWindow();
  }

  /** Sends what the current stream has not had yet, then the exit once all output is out. */
  sendPending(): void {
    if (!this.sink.connected()) return;
    if (this.sentSeq < this.log.start) this.sentSeq = this.log.start;
    for (const c of this.log.readFrom(this.sentSeq)) {
      const msg = encodeOutputEnvelope(OUTPUT_FIELD.agent, this.id, c.seq, c.data, c.commandId, c.stream);
      if (!this.sink.send(msg)) return;
      if (tracing()) hopChunk('agent.send', this.traced.send, c.commandId, c.seq, c.data.length);
      this.sentSeq = c.seq + c.data.length;
    }
    if (this.exitStatus && !this.exitSent && this.pendingBytes === 0) {
      const { code, signal } = this.exitStatus;
      const value = { terminalId: this.id, exitCode: code, signal, finalSeq: this.log.head, error: '' };
      if (this.sink.send({ msg: { $case: 'exit', value } })) this.exitSent = true;
    }
  }

  private applyWindow(): void {
    const limit = this.sink.connected() ? this.windows.connected : this.windows.offline;
    const full = this.log.size >= limit || this.screen?.congested === true;
    if (!this.paused && full && !this.exitStatus) {
      this.paused = true;
      this.proc.pause();
    } else if (this.paused && !full) {
      this.paused = false;
      this.proc.resume();
    }
  }

  private onExit(status: ExitStatus): void {
    this.flush();
    this.exitStatus = status;
    this.screen?.dispose();
    this.screen = undefined;
    this.sendPending();
  }

  // ---- from the control plane

  onAck(seq: number, exit: boolean): void {
    if (seq > this.log.head) return; // never acknowledge what was not sent
    this.log.trimTo(seq);
    this.applyWindow();
    if (exit && this.exitSent) this.onGone?.();
  }

  /** A new stream: the control plane holds output up to `fromSeq`; send the rest. */
  onResumed(fromSeq: number): void {
    this.sentSeq = Math.max(fromSeq, this.log.start);
    this.exitSent = false;
    this.log.trimTo(fromSeq);
    this.sendPending();
    this.applyWindow();
  }

  /** The stream is gone: keep reading up to the offline buffer, resend later. */
  onStreamLost(): void {
    this.applyWindow();
  }

  input(commandId: string, data: Uint8Array, eof: boolean): void {
    if (this.exitStatus) return;
    // Output read before this input answers the previous one.
    this.flush();
    this.commandId = commandId;
    if (data.length > 0) this.proc.write(data);
    if (tracing()) hop('agent.pty', commandId);
    if (eof) this.proc.endInput();
  }

  resize(cols: number, rows: number): void {
    if (this.exitStatus) return;
    this.proc.resize(cols, rows);
    this.screen?.resize(cols, rows);
  }

  signal(sig: SignalName): void {
    if (!this.exitStatus) this.proc.signal(sig);
  }

  /** What runs in the foreground when it is not the shell itself; '' while the shell waits, or once exited. */
  foreground(): string {
    return this.exitStatus ? '' : this.proc.foreground();
  }

  close(): void {
    if (this.exitStatus) return;
    this.proc.resume(); // let it drain while it hangs up
    this.proc.signal('SIGHUP');
    const pid = this.proc.pid;
    setTimeout(() => {
      if (!this.exitStatus) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, 3000).unref();
  }

  async snapshot(): Promise<ScreenSnapshot | undefined> {
    if (!this.screen) return undefined;
    this.flush();
    const seq = this.log.head;
    const s = await this.screen.snapshot();
    if (!s) return undefined;
    // The screen is after exactly the bytes up to `seq` (every byte is
    // parsed, in order); chunks up to `seq` went out (or will be resent)
    // before this message.
    return { terminalId: this.id, seq, data: s.data, cols: s.cols, rows: s.rows };
  }

  resumeInfo(): { terminalId: string; ackedSeq: number; producedSeq: number } {
    this.flush();
    return { terminalId: this.id, ackedSeq: this.log.start, producedSeq: this.log.head };
  }
}
