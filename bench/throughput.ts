// Output throughput: `cat` of one large text file through CMDOP, ssh and a
// bare local PTY. Each contestant is a Runner; runs of all contestants are
// interleaved (A B C, A B C, ...) so that a slow spell of the machine is
// spread over all of them instead of landing on one.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import * as pty from 'node-pty';
import { CpuPlan, CpuSummary, Role, RunCpu, watchRunCpu } from './cpuPerGb';
import { ProcessSet, runTimed, sleep } from './procs';
import { mbPerS, median } from './stats';

// ------------------------------------------------------------------ data

export interface DataFile {
  readonly path: string;
  /** Size on disk: the payload every MB/s figure is computed on. */
  readonly bytes: number;
  readonly lines: number;
  /** What a reader of a PTY gets: the line discipline turns each "\n" into "\r\n". */
  readonly ptyBytes: number;
}

const LINE = 76; // base64 the way `base64` wraps it: printable, line-oriented, like real terminal floods
const LINES_PER_BLOCK = 10_000;

/** Writes about `targetBytes` of base64 text in lines of 76 characters (+ "\n"). */
export function makeDataFile(file: string, targetBytes: number): DataFile {
  const lines = Math.max(1, Math.floor(targetBytes / (LINE + 1)));
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < lines; done += LINES_PER_BLOCK) {
      const n = Math.min(LINES_PER_BLOCK, lines - done);
      // 57 random bytes are exactly 76 base64 characters, without padding.
      const text = randomBytes(57 * n).toString('base64').replace(/.{76}/g, '$&\n');
      fs.writeSync(fd, text);
    }
  } finally {
    fs.closeSync(fd);
  }
  return { path: file, bytes: lines * (LINE + 1), lines, ptyBytes: lines * (LINE + 2) };
}

// --------------------------------------------------------------- runners

export interface Runner {
  readonly label: string;
  /** File bytes one run moves: what MB/s is computed on. */
  readonly payloadBytes: number;
  /** What a run must deliver to the reader (the payload, plus a CR per line through a PTY). */
  readonly expectedBytes: number;
  /** One transfer; resolves with its wall time in ms. `onSpawn` is told the pid of the process it starts. */
  timed(onSpawn?: (pid: number) => void): Promise<number>;
  /** One transfer whose output is counted by the bench (the warm-up, and the check that nothing is lost). */
  counted(): Promise<number>;
  /** The same tool running `true`: connection setup and teardown, subtracted from `timed`. Absent: no setup. */
  setup?(): Promise<number>;
  /** The processes whose CPU each timed run is counted for, by role. */
  readonly cpu?: CpuPlan;
}

/** A client program (the cmdop CLI, ssh) run once per transfer with stdout to /dev/null. */
export function childRunner(opts: {
  label: string;
  cmd: string;
  /** argv for running `remoteCommand` remotely. */
  args(remoteCommand: string): string[];
  file: DataFile;
  pty: boolean;
  /** `cat` the file this many times in one run: a fast peer needs a longer transfer to stand out from its setup time. */
  copies?: number;
  env?: NodeJS.ProcessEnv;
  /** What runs besides the client (the control plane and agent, or sshd); the client's role is 'client'. */
  cpu?: Omit<CpuPlan, 'spawned'>;
  procs: ProcessSet;
}): Runner {
  const copies = opts.copies ?? 1;
  const command = `cat${` ${shellQuote(opts.file.path)}`.repeat(copies)}`;
  const run = async (remote: string, stdout: 'null' | 'count', onSpawn?: (pid: number) => void) => {
    const r = await runTimed(opts.cmd, opts.args(remote), { stdout, env: opts.env, timeoutMs: 180_000, procs: opts.procs, onSpawn });
    if (r.code !== 0) throw new Error(`${opts.label}: \`${remote}\` exited ${r.code}; stderr: ${r.stderr}`);
    return r;
  };
  return {
    label: opts.label,
    payloadBytes: copies * opts.file.bytes,
    expectedBytes: copies * (opts.pty ? opts.file.ptyBytes : opts.file.bytes),
    cpu: opts.cpu && { ...opts.cpu, spawned: 'client' },
    timed: async (onSpawn) => (await run(command, 'null', onSpawn)).ms,
    counted: async () => (await run(command, 'count')).bytes,
    setup: async () => (await run('true', 'null')).ms,
  };
}

/**
 * `cat FILE` in a PTY spawned by node-pty in this process: the agent's own
 * read path without anything after it, i.e. the ceiling for CMDOP's PTY mode.
 */
export function rawPtyRunner(file: DataFile): Runner {
  const once = (onSpawn?: (pid: number) => void) => rawPtyCat(file.path, onSpawn);
  return {
    label: 'raw node-pty',
    payloadBytes: file.bytes,
    expectedBytes: file.ptyBytes,
    // The client is this process, reading the PTY (its polling of /proc included).
    cpu: { trees: [], spawned: 'remote command', self: 'client', roles: ['client', 'remote command'], names: { client: 'bench (reads the PTY)' } },
    timed: async (onSpawn) => (await once(onSpawn)).ms,
    counted: async () => (await once()).bytes,
  };
}

/** Output quiet this long after the child is gone: the kernel's PTY buffers are drained. */
const PTY_DRAIN_QUIET_MS = 20;
/** Child gone and output quiet this long, yet no exit report: take what was read as all of it (and check it). */
const PTY_EXIT_TIMEOUT_MS = 2000;

/**
 * node-pty loses the last output of a child that writes a lot and exits at
 * once (docs/ARCHITECTURE.md, "5. Delivery guarantees"; app/agent/processes.ts):
 * the master read fails with EIO when the last slave fd closes while
 * output still sits in the kernel's buffers. Like the agent,
 * the bench holds a slave fd itself and closes it only once the child is
 * gone and its output has gone quiet, so the baseline reads every byte.
 */
function rawPtyCat(file: string, onSpawn?: (pid: number) => void): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve) => {
    const start = performance.now();
    let bytes = 0;
    let lastData = start;
    const term = pty.spawn('cat', [file], {
      name: 'xterm-256color',
      cols: 80,
      rows: 24,
      cwd: os.tmpdir(),
      env: process.env,
      encoding: null, // Buffers: count bytes, decode nothing
    });
    onSpawn?.(term.pid);
    let slave: number | undefined = fs.openSync(
      (term as unknown as { ptsName: string }).ptsName,
      fs.constants.O_RDWR | fs.constants.O_NOCTTY,
    );
    const closeSlave = () => {
      if (slave !== undefined) fs.closeSync(slave);
      slave = undefined;
    };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(poll);
      closeSlave();
      // Time to the last byte: what a reader waits for (the exit report comes after our own polling).
      resolve({ ms: lastData - start, bytes });
    };
    term.onData((d) => {
      bytes += (d as unknown as Buffer).length;
      lastData = performance.now();
    });
    term.onExit(() => finish());
    const poll = setInterval(() => {
      if (alive(term.pid)) return;
      const quietMs = performance.now() - lastData;
      if (slave !== undefined && quietMs >= PTY_DRAIN_QUIET_MS) closeSlave(); // the master now reads EOF once drained
      // Should the exit never be reported, do not hang: what was read is reported (and checked).
      if (quietMs > PTY_EXIT_TIMEOUT_MS) finish();
    }, 10);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ------------------------------------------------------------ measuring

export interface ThroughputResult {
  readonly label: string;
  readonly runsMs: number[];
  readonly setupMs: number[];
  /** Bytes the counted (warm-up) run delivered, and what it should have. */
  readonly countedBytes: number;
  readonly expectedBytes: number;
  readonly payloadBytes: number;
  /** CPU seconds per timed run (medians), per role; absent when the runner names no processes. */
  readonly cpu?: CpuSummary;
  /** MB/s of file payload over (median transfer time − median setup time); NaN when setup took it all. */
  readonly netMBps: number;
  /** The transfer took less than half the time of the setup beside it: the net figure is rough. */
  readonly roughNet: boolean;
  /** MB/s over the whole median run, setup included. */
  readonly grossMBps: number;
}

export async function measureThroughput(
  runners: Runner[],
  reps: number,
  progress: (msg: string) => void,
): Promise<ThroughputResult[]> {
  const runs = runners.map(() => [] as number[]);
  const setups = runners.map(() => [] as number[]);
  const cpu = runners.map(() => [] as RunCpu[]);
  const counted: number[] = [];

  // Warm-up, and the check that every byte arrives: a fast run that loses
  // output would be worse than a slow one, so it is reported.
  for (const r of runners) {
    progress(`${r.label}: warm-up run, counting bytes`);
    counted.push(await r.counted());
  }
  for (let rep = 1; rep <= reps; rep++) {
    for (const [i, r] of runners.entries()) {
      progress(`${r.label}: run ${rep}/${reps}`);
      const watch = r.cpu && watchRunCpu(r.cpu);
      try {
        runs[i].push(await r.timed((pid) => watch?.spawned(pid)));
      } finally {
        const used = await watch?.stop(); // after the run's processes are gone
        if (used) cpu[i].push(used);
      }
      if (r.setup) setups[i].push(await r.setup());
      await sleep(200); // let the previous run's processes finish exiting
    }
  }

  return runners.map((r, i) => {
    const t = median(runs[i]);
    const s = setups[i].length ? median(setups[i]) : 0;
    return {
      label: r.label,
      runsMs: runs[i],
      setupMs: setups[i],
      countedBytes: counted[i],
      expectedBytes: r.expectedBytes,
      payloadBytes: r.payloadBytes,
      cpu: r.cpu && cpu[i].length ? summarize(r.cpu, cpu[i]) : undefined,
      netMBps: t > s ? mbPerS(r.payloadBytes, t - s) : NaN,
      roughNet: t - s < s / 2,
      grossMBps: mbPerS(r.payloadBytes, t),
    };
  });
}

/** Medians over the timed runs, role by role. */
function summarize(plan: CpuPlan, runs: RunCpu[]): CpuSummary {
  const byRole: Partial<Record<Role, number>> = {};
  for (const role of plan.roles) byRole[role] = median(runs.map((u) => u.byRole[role] ?? 0));
  const med = (k: 'kernel' | 'machine') => median(runs.map((u) => u[k]));
  return { byRole, kernel: med('kernel'), machine: med('machine'), roles: plan.roles, names: plan.names ?? {} };
}
