// The two kinds of process a terminal runs: a PTY (node-pty) for shells and
// `exec -t`, and plain pipes (child_process) for exec without a PTY, where
// stdout and stderr stay apart. Both report exit only after the last output.
import { spawn as spawnChild, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import * as pty from 'node-pty';
import { OutputStream, SignalName, TerminalKind, TerminalSpec } from '../../protocol';
import { defaultShell } from './capabilities';
import { foregroundOf, programName } from './foreground';

export interface ExitStatus {
  /** The exit code; 128 + signal number when killed by a signal (as a shell reports it). */
  code: number;
  signal: string;
}

export interface RunningProcess {
  readonly pid: number;
  write(data: Uint8Array): void;
  endInput(): void;
  resize(cols: number, rows: number): void;
  signal(sig: SignalName): void;
  pause(): void;
  resume(): void;
  /** What runs in the foreground when it is not the terminal's own shell; '' while the shell waits (or unknown). */
  foreground(): string;
}

export interface ProcessEvents {
  onData(data: Buffer, stream: OutputStream): void;
  onExit(status: ExitStatus): void;
}

/** How often a PTY checks whether its child is gone (see PtyProcess). */
const EXIT_POLL_MS = 50;
/** After the child is gone, output quiet this long means the kernel's buffers are drained. */
const DRAIN_QUIET_MS = 20;

function signalNumber(name: string): number {
  return (os.constants.signals as Record<string, number>)[name] ?? 0;
}

function signalName(n: number | null | undefined): string {
  if (!n) return '';
  for (const [name, num] of Object.entries(os.constants.signals)) if (num === n) return name;
  return `SIG${n}`;
}

function envFor(spec: TerminalSpec, terminalId: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return { ...env, ...extra, ...spec.env, CMDOP_TERMINAL_ID: terminalId };
}

/**
 * A process in a PTY. Losing the last bytes a child writes before it exits is
 * the classic PTY bug, and it has two causes here, both handled:
 *  - Linux: once the last slave fd closes, a master read can fail with EIO
 *    while output still sits in the kernel's flip buffers (likeliest when the
 *    reader was paused by flow control). We hold a slave fd open ourselves,
 *    so the master never hangs up early, and close it only once the child is
 *    gone and its output has gone quiet.
 *  - node-pty: after the child exits it destroys the socket 200 ms later if
 *    it has not closed, discarding what is unread. When the child is gone we
 *    therefore read regardless of flow control; what is left is bounded by
 *    the kernel's PTY buffers.
 * node-pty reports exit only after its socket closed, so by then every byte
 * has been delivered through onData.
 */
class PtyProcess implements RunningProcess {
  private term: pty.IPty;
  private paused = false;
  private childGone = false;
  private slaveFd: number | undefined;
  private lastDataMs = Date.now();
  private exitPoll: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    args: string[],
    spec: TerminalSpec,
    terminalId: string,
    events: ProcessEvents,
    /** A shell tab: the shell waiting for input is "nothing running". An exec's command always counts. */
    private readonly isShell = false,
  ) {
    this.term = pty.spawn(file, args, {
      name: 'xterm-256color',
      cols: spec.cols,
      rows: spec.rows,
      cwd: spec.cwd || os.homedir(),
      env: envFor(spec, terminalId, { TERM: 'xterm-256color', COLORTERM: 'truecolor' }),
      encoding: null, // Buffers: bytes are counted and forwarded as they are
    } as pty.IPtyForkOptions);
    try {
      this.slaveFd = fs.openSync((this.term as unknown as { ptsName: string }).ptsName, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    } catch {
      this.slaveFd = undefined; // not fatal: only the EIO race protection is lost
    }
    this.term.onData((d) => {
      this.lastDataMs = Date.now();
      events.onData(d as unknown as Buffer, OutputStream.OUTPUT_STREAM_UNSPECIFIED);
    });
    this.term.onExit(({ exitCode, signal }) => {
      clearInterval(this.exitPoll);
      this.closeSlave();
      const sig = signalName(signal);
      events.onExit({ code: sig ? 128 + (signal ?? 0) : exitCode, signal: sig });
    });
    this.exitPoll = setInterval(() => this.checkChild(), EXIT_POLL_MS);
  }

  private checkChild(): void {
    if (!this.childGone) {
      if (alive(this.term.pid)) return;
      this.childGone = true;
      this.term.resume(); // drain the rest now, whatever flow control says
      return;
    }
    if (Date.now() - this.lastDataMs >= DRAIN_QUIET_MS) {
      clearInterval(this.exitPoll);
      this.closeSlave(); // the master now reads EOF once drained, and node-pty reports the exit
    }
  }

  private closeSlave(): void {
    if (this.slaveFd === undefined) return;
    fs.closeSync(this.slaveFd);
    this.slaveFd = undefined;
  }

  get pid(): number {
    return this.term.pid;
  }

  write(data: Uint8Array): void {
    this.term.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength) as unknown as string);
  }

  endInput(): void {
    this.term.write('\x04');
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
  }

  signal(sig: SignalName): void {
    this.term.kill(sig);
  }

  foreground(): string {
    if (this.childGone) return '';
    let current: string;
    try {
      current = this.term.process;
    } catch {
      return ''; // the PTY is closing
    }
    return this.isShell ? foregroundOf(this.term.pid, this.file, current) : programName(current);
  }

  pause(): void {
    if (this.paused || this.childGone) return;
    this.paused = true;
    this.term.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.term.resume();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class PipeProcess implements RunningProcess {
  private child: ChildProcess;

  constructor(file: string, args: string[], spec: TerminalSpec, terminalId: string, events: ProcessEvents) {
    this.child = spawnChild(file, args, {
      cwd: spec.cwd || os.homedir(),
      env: envFor(spec, terminalId),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let failed = false;
    this.child.on('error', (err: NodeJS.ErrnoException) => {
      // The program could not start: report it the way a shell would.
      failed = true;
      const code = err.code === 'ENOENT' ? 127 : err.code === 'EACCES' ? 126 : 1;
      const what = err.code === 'ENOENT' ? 'command not found' : err.message;
      events.onData(Buffer.from(`cmdop: ${file}: ${what}\n`), OutputStream.STDERR);
      events.onExit({ code, signal: '' });
    });
    this.child.stdout!.on('data', (d: Buffer) => events.onData(d, OutputStream.STDOUT));
    this.child.stderr!.on('data', (d: Buffer) => events.onData(d, OutputStream.STDERR));
    this.child.stdin!.on('error', () => {}); // EPIPE when the command does not read its input
    // 'close' comes after both pipes reached EOF: the last output is in.
    this.child.on('close', (code, signal) => {
      if (failed) return;
      events.onExit({ code: signal ? 128 + signalNumber(signal) : (code ?? 0), signal: signal ?? '' });
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  write(data: Uint8Array): void {
    if (this.child.stdin!.writable) this.child.stdin!.write(data);
  }

  endInput(): void {
    this.child.stdin!.end();
  }

  resize(): void {
    // no PTY, nothing to resize
  }

  signal(sig: SignalName): void {
    this.child.kill(sig);
  }

  pause(): void {
    this.child.stdout!.pause();
    this.child.stderr!.pause();
  }

  resume(): void {
    this.child.stdout!.resume();
    this.child.stderr!.resume();
  }

  foreground(): string {
    // No terminal, so no foreground group: the command runs until it exits.
    return this.child.exitCode === null && this.child.signalCode === null ? programName(this.child.spawnfile) : '';
  }
}

/** Starts what `spec` describes. */
export function startProcess(spec: TerminalSpec, terminalId: string, events: ProcessEvents): RunningProcess {
  const shell = defaultShell();
  if (spec.kind === TerminalKind.SHELL) return new PtyProcess(shell, [], spec, terminalId, events, true);
  if (spec.pty) {
    // Through sh so a missing program exits 127 with the shell's message.
    const args = spec.shellCommand ? ['-c', spec.shellCommand] : ['-c', 'exec "$@"', 'sh', ...spec.argv];
    return new PtyProcess(spec.shellCommand ? shell : '/bin/sh', args, spec, terminalId, events);
  }
  if (spec.shellCommand) return new PipeProcess(shell, ['-c', spec.shellCommand], spec, terminalId, events);
  return new PipeProcess(spec.argv[0], spec.argv.slice(1), spec, terminalId, events);
}
