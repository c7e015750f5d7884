// Child processes for the bench: every process it starts is tracked so that
// all of them are stopped at the end, also when a measurement fails; runs of
// a command are timed from spawn to exit.
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** The last `max` characters a stream produced: kept for error messages, and draining keeps the pipe from filling. */
export class Tail {
  private text = '';
  constructor(private readonly max = 8192) {}
  push(d: Buffer | string): void {
    this.text = (this.text + d.toString()).slice(-this.max);
  }
  toString(): string {
    return this.text;
  }
}

/** Every long-lived child of the bench (servers, agents, clients), stopped by `stopAll`. */
export class ProcessSet {
  private readonly procs = new Set<ChildProcess>();

  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = spawn(cmd, args, opts);
    this.procs.add(p);
    p.once('exit', () => this.procs.delete(p));
    // A failed spawn (ENOENT) would otherwise throw from an 'error' event nobody listens to.
    p.on('error', () => {});
    return p;
  }

  /** SIGTERM each process by its pid; SIGKILL whatever is still there after `graceMs`. */
  async stopAll(graceMs = 3000): Promise<void> {
    await Promise.all([...this.procs].map((p) => stop(p, graceMs)));
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export function stop(p: ChildProcess, graceMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) return resolve();
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

/** Resolves with the first match of `re` in what `stream` of `proc` prints; rejects if it exits or times out first. */
export function waitForLine(
  proc: ChildProcess,
  stream: 'stdout' | 'stderr',
  re: RegExp,
  timeoutMs = 20_000,
): Promise<RegExpMatchArray> {
  const src = proc[stream];
  if (!src) return Promise.reject(new Error(`${stream} of pid ${proc.pid} is not a pipe`));
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; saw: ${seen.slice(-2000)}`)), timeoutMs);
    const onData = (d: Buffer) => {
      seen += d.toString();
      const m = seen.match(re);
      if (m) finish(undefined, m);
    };
    const onExit = (code: number | null, sig: string | null) =>
      finish(new Error(`exited (${code ?? sig}) before printing ${re}; output: ${seen.slice(-2000)}`));
    function finish(err?: Error, m?: RegExpMatchArray): void {
      clearTimeout(timer);
      src!.off('data', onData);
      proc.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    src.on('data', onData);
    proc.once('exit', onExit);
  });
}

export interface TimedRun {
  /** Wall time from spawn to exit (to EOF of stdout when counting), ms. */
  ms: number;
  /** Bytes seen on stdout; only when counted. */
  bytes: number;
  code: number | null;
  stderr: string;
}

export interface RunOptions {
  /** 'null': stdout goes to /dev/null (the cheapest consumer, like `> /dev/null`); 'count': piped here and counted. */
  stdout: 'null' | 'count';
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Tracks the child, so that a bench stopped mid-run stops it too. */
  procs?: ProcessSet;
  /** Called with the child's pid right after it is spawned (to watch its CPU, bench/cpuPerGb.ts). */
  onSpawn?: (pid: number) => void;
}

/** Runs a command to completion with stdin from /dev/null; rejects on timeout, resolves with its exit code otherwise. */
export function runTimed(cmd: string, args: string[], opts: RunOptions): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const devNull = opts.stdout === 'null' ? fs.openSync('/dev/null', 'w') : undefined;
    const start = performance.now();
    const spawnOpts: SpawnOptions = { stdio: ['ignore', devNull ?? 'pipe', 'pipe'], env: opts.env ?? process.env };
    const p = opts.procs ? opts.procs.spawn(cmd, args, spawnOpts) : spawn(cmd, args, spawnOpts);
    if (devNull !== undefined) fs.closeSync(devNull); // the child has its own copy
    if (p.pid !== undefined) opts.onSpawn?.(p.pid);
    const stderr = new Tail();
    let bytes = 0;
    let exitMs = 0;
    let code: number | null = null;
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} took longer than ${opts.timeoutMs} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    p.stdout?.on('data', (d: Buffer) => (bytes += d.length));
    p.stderr!.on('data', (d: Buffer) => stderr.push(d));
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    p.on('exit', (c, sig) => {
      exitMs = performance.now() - start;
      code = c ?? (sig ? 128 : null);
    });
    // 'close' comes after 'exit' and after every pipe reached EOF: all output is counted.
    p.on('close', () => {
      clearTimeout(timer);
      const ms = opts.stdout === 'count' ? performance.now() - start : exitMs;
      resolve({ ms, bytes, code, stderr: stderr.toString() });
    });
  });
}

/** Waits `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
