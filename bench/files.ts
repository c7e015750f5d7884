// Issue 7: file transfers (BENCH_ONLY=files). "1 GiB download and upload vs
// `scp` against the same throwaway sshd as issue 2's bench (target >= 1.0x
// scp), and keystroke echo p99 during the transfer vs without it."
//
//  - One file of random (incompressible) bytes, BENCH_FILES_MB MiB (1024: 1 GiB),
//    in the bench's temp dir. Both "machines" are this one: the agent and
//    sshd read and write the same disk as the clients, and the page cache is
//    not dropped (that needs root tricks), so the source is read from memory
//    in every run. Each run starts after `sync` (no write-back of an earlier
//    run competing), its copy is checked against the source's SHA-256 and
//    then deleted.
//  - CMDOP: `cmdop cp MACHINE:PATH LOCAL` and `cmdop cp LOCAL MACHINE:PATH` as
//    child processes through the CLI, as a user runs them, against a control
//    plane and agent that are child processes too (bench/cmdopCluster.ts).
//  - scp: OpenSSH's scp against the issue-2 sshd (bench/sshPeer.ts) with
//    `-o Compression=no` and ssh's default ciphers. scp speaks SFTP by
//    default (OpenSSH >= 9.0), and that sshd has no `Subsystem sftp` line, so
//    scp's ssh is a wrapper (written to the temp dir) that runs
//    /usr/lib/openssh/sftp-server as the remote command: what a stock Debian
//    sshd's `Subsystem sftp /usr/lib/openssh/sftp-server` runs.
//    BENCH_FILES_SCP=legacy measures `scp -O` (the old SCP protocol) instead.
//  - A small warm-up transfer of each kind first (JIT, and a check that all
//    four work), then BENCH_FILES_ROUNDS rounds of download then upload,
//    CMDOP and scp alternating which goes first; medians. Wall time from
//    spawn to exit, so startup and connection setup are included on both sides.
//  - CPU per run from /proc: the CLI, control plane and agent; scp with its
//    ssh, and sshd with what it forks; and the whole machine (2 shared cores:
//    anything else running shows there).
//  - Keystroke echo (bench/echo.ts) in a shell terminal opened through the SDK:
//    idle, then while `cmdop cp` moves the file down, then up. "During"
//    counts keystrokes sent while the destination was growing (its size polled
//    every 20 ms), i.e. while file bytes were moving.
//
// Knobs: BENCH_FILES_MB (1024), BENCH_FILES_ROUNDS (3), BENCH_FILES_SCP
// (sftp | legacy), BENCH_ECHO_SAMPLES (idle keystrokes, 300), BENCH_SKIP_SSH.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sdkShellChannel } from './channels';
import { CLI, CmdopCluster, startCmdop } from './cmdopCluster';
import { ShellChannel, measureEcho, prepareEchoShell, waitForOutput } from './echo';
import { ProcessSet, Tail, sleep } from './procs';
import { SSH_INSTALL_HINT, SshPeer, sshMissing, startSshPeer } from './sshPeer';
import { mbPerS, median, percentile } from './stats';
import { Column, Verdict, fmt, ratio, renderGrid, verdict } from './table';
import { machineBusySeconds, watchTreeCpu } from './treeCpu';

export interface FilesConfig {
  /** File size in MiB. */
  mb: number;
  rounds: number;
  /** Keystrokes timed on the idle terminal. */
  echoSamples: number;
  echoWarmup: number;
  scp: 'sftp' | 'legacy';
}

export function filesConfig(envNumber: (name: string, dflt: number) => number): FilesConfig {
  const scp = process.env.BENCH_FILES_SCP?.trim() || 'sftp';
  if (scp !== 'sftp' && scp !== 'legacy') throw new Error(`BENCH_FILES_SCP must be sftp or legacy (got ${JSON.stringify(scp)})`);
  return {
    mb: envNumber('BENCH_FILES_MB', 1024),
    rounds: Math.round(envNumber('BENCH_FILES_ROUNDS', 3)),
    echoSamples: Math.round(envNumber('BENCH_ECHO_SAMPLES', 300)),
    echoWarmup: 20,
    scp,
  };
}

type Direction = 'download' | 'upload';
type Tool = 'cmdop' | 'scp';
const DIRECTIONS: Direction[] = ['download', 'upload'];

export interface TransferRun {
  ms: number;
  /** CPU seconds per process (tree) during the run. */
  cpu: Record<string, number>;
  /** CPU seconds the whole machine spent during the run, all cores, every process. */
  machineCpu: number;
}

export interface EchoDuring {
  /** Echo times of keystrokes sent while file bytes were moving, ms. */
  samples: number[];
  /** Keystrokes timed over the whole run (setup and the final fsync included). */
  allSamples: number[];
  /** The transfer's wall time, and how long file bytes were moving (destination growing). */
  transferMs: number;
  movingMs: number;
}

export interface FilesResult {
  cfg: FilesConfig;
  bytes: number;
  ssh?: string;
  /** Why scp was not measured. */
  scpSkipped?: string;
  scpHow: string;
  runs: Record<Direction, Record<Tool, TransferRun[]>>;
  /** fsync() of a fresh copy of the file, ms: CMDOP syncs before its rename, scp does not. */
  fsyncMs: number;
  echo: { idle: number[]; download: EchoDuring; upload: EchoDuring };
  problems: string[];
}

const MACHINE = 'files-bench';
/** Random bytes are written in blocks of this size. */
const WRITE_BLOCK = 16 * 1024 * 1024;
/** Warm-up transfers move this many MiB (or the whole file, if smaller). */
const WARMUP_MB = 32;
/** A transfer slower than 5 MB/s is taken as stuck. */
const timeoutFor = (bytes: number) => 60_000 + bytes / 5e3;

export async function measureFiles(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: FilesConfig;
  progress: (msg: string) => void;
  cleanups: Set<() => Promise<void>>;
}): Promise<FilesResult> {
  const { procs, cfg, progress } = opts;
  const dir = opts.dir;
  const data = path.join(dir, 'data');
  fs.mkdirSync(data, { recursive: true });
  const bytes = Math.round(cfg.mb * 1024 * 1024);
  const problems: string[] = [];

  progress(`files: writing ${fmt(bytes / 1e6, 0)} MB of random bytes`);
  const source = path.join(data, 'source.bin');
  writeRandom(source, bytes);
  const warmSource = path.join(data, 'warm.bin');
  writeRandom(warmSource, Math.min(bytes, WARMUP_MB * 1024 * 1024));
  const sums = new Map([source, warmSource].map((f) => [f, sha256(f)]));

  let cmdop: CmdopCluster | undefined;
  let ssh: SshPeer | undefined;
  const cleanup = async () => {
    await cmdop?.stop();
  };
  opts.cleanups.add(cleanup);
  try {
    const missing = process.env.BENCH_SKIP_SSH ? 'BENCH_SKIP_SSH is set' : sshMissing() ?? scpMissing(cfg);
    if (missing) {
      process.stderr.write(`\n*** scp comparison is SKIPPED: ${missing}.\n*** Install OpenSSH with: ${SSH_INSTALL_HINT}\n\n`);
    } else {
      progress('files: starting a throwaway sshd on loopback');
      ssh = await startSshPeer(path.join(dir, 'ssh'), procs);
    }
    progress('files: starting a CMDOP control plane and agent on loopback');
    cmdop = await startCmdop(path.join(dir, 'cmdop'), procs, MACHINE);
    const sshd = ssh?.pid;
    const scpArgs = ssh ? scpCommand(ssh, cfg, dir) : undefined;

    /** One transfer as a child process: timed, its CPU counted, its copy checked and removed. */
    const transfer = async (tool: Tool, direction: Direction, src: string, label: string): Promise<TransferRun> => {
      const dst = path.join(data, `${direction}-${tool}-${label}.bin`);
      const cmd = tool === 'cmdop' ? cmdopCommand(cmdop!, direction, src, dst) : scpArgs!(direction, src, dst);
      fs.rmSync(dst, { force: true });
      execFileSync('sync');
      const roots: Record<string, number[]> =
        tool === 'cmdop'
          ? { 'control plane': [cmdop!.controlPlanePid], agent: [cmdop!.agentPid] }
          : { sshd: sshd !== undefined ? [sshd] : [] };
      const machine0 = machineBusySeconds();
      const child = spawnTimed(cmd, procs, timeoutFor(bytes));
      const cpu = watchTreeCpu({ [tool === 'cmdop' ? 'cmdop CLI' : 'scp + ssh']: [child.pid], ...roots });
      const r = await child.done;
      const cpuUsed = cpu.stop();
      const machineCpu = machineBusySeconds() - machine0;
      if (r.code !== 0) throw new Error(`${tool} ${direction} exited ${r.code}: ${r.stderr}`);
      const got = sha256(dst);
      if (got !== sums.get(src)) problems.push(`${tool} ${direction} (${label}): the copy's SHA-256 differs from the source's`);
      fs.rmSync(dst, { force: true });
      return { ms: r.ms, cpu: cpuUsed, machineCpu };
    };

    const tools: Tool[] = ssh ? ['cmdop', 'scp'] : ['cmdop'];
    progress(`files: warm-up, ${fmt(fs.statSync(warmSource).size / 1e6, 0)} MB each way with each tool`);
    for (const direction of DIRECTIONS) {
      for (const tool of tools) {
        const r = await transfer(tool, direction, warmSource, 'warm-up');
        progress(`files: warm-up: ${tool} ${direction} ${(r.ms / 1000).toFixed(2)} s`);
      }
    }

    const runs: FilesResult['runs'] = { download: { cmdop: [], scp: [] }, upload: { cmdop: [], scp: [] } };
    for (let round = 1; round <= cfg.rounds; round++) {
      const order = round % 2 === 1 ? tools : [...tools].reverse();
      for (const direction of DIRECTIONS) {
        for (const tool of order) {
          const r = await transfer(tool, direction, source, `round-${round}`);
          runs[direction][tool].push(r);
          progress(`files: round ${round}/${cfg.rounds}: ${tool} ${direction} ${fmt(mbPerS(bytes, r.ms))} MB/s`);
        }
      }
    }

    progress('files: fsync of a fresh copy of the file');
    const fsyncMs = timeFsync(source, path.join(data, 'fsync.bin'));

    progress(`files: keystroke echo, ${cfg.echoSamples} keystrokes on an idle terminal`);
    const client = cmdop.newClient({ machine: MACHINE });
    const a = await client.terminal.open({ cols: 80, rows: 24 });
    let echo: FilesResult['echo'];
    try {
      const ch = sdkShellChannel(a);
      await prepareEchoShell(ch);
      const idle = await measureEcho(ch, { samples: cfg.echoSamples, warmup: cfg.echoWarmup });
      const during = async (direction: Direction): Promise<EchoDuring> => {
        progress(`files: keystroke echo while \`cmdop cp\` moves the file (${direction})`);
        const dst = path.join(data, `${direction}-echo.bin`);
        fs.rmSync(dst, { force: true });
        execFileSync('sync');
        const r = await echoDuring(ch, () => spawnTimed(cmdopCommand(cmdop!, direction, source, dst), procs, timeoutFor(bytes)), dst, bytes);
        if (sha256(dst) !== sums.get(source)) problems.push(`cmdop ${direction} during the echo test: the copy's SHA-256 differs from the source's`);
        fs.rmSync(dst, { force: true });
        return r;
      };
      echo = { idle, download: await during('download'), upload: await during('upload') };
    } finally {
      a.close();
      await client.terminal.close(a.terminalId).catch(() => {});
      client.close();
    }

    return {
      cfg,
      bytes,
      ssh: ssh?.version,
      scpSkipped: missing,
      scpHow:
        cfg.scp === 'legacy'
          ? '`scp -O` (the SCP protocol)'
          : '`scp` (SFTP protocol; sftp-server run as the remote command, see bench/files.ts)',
      runs,
      fsyncMs,
      echo,
      problems,
    };
  } catch (e) {
    if (cmdop) process.stderr.write(`\n${cmdop.logs()}\n`);
    if (ssh) process.stderr.write(`sshd log: ${ssh.log()}\n`);
    throw e;
  } finally {
    await cleanup();
    opts.cleanups.delete(cleanup);
    fs.rmSync(data, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------ the pieces

function writeRandom(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(WRITE_BLOCK, bytes - done);
      fs.writeSync(fd, crypto.randomBytes(n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function sha256(file: string): string {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(WRITE_BLOCK);
  const fd = fs.openSync(file, 'r');
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Copies `src` to `dst` and times fsync() of the copy alone (what writing it to the disk costs), ms. */
function timeFsync(src: string, dst: string): number {
  execFileSync('sync');
  fs.copyFileSync(src, dst);
  const fd = fs.openSync(dst, 'r+');
  try {
    const t0 = performance.now();
    fs.fsyncSync(fd);
    return performance.now() - t0;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dst, { force: true });
  }
}

interface Command {
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

function cmdopCommand(c: CmdopCluster, direction: Direction, src: string, dst: string): Command {
  const remote = (p: string) => `${c.machine}:${p}`;
  const [from, to] = direction === 'download' ? [remote(src), dst] : [src, remote(dst)];
  return { cmd: process.execPath, args: [CLI, '--server', c.server, 'cp', from, to], env: c.env };
}

const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

function scpMissing(cfg: FilesConfig): string | undefined {
  try {
    execFileSync('sh', ['-c', 'command -v scp'], { stdio: 'ignore' });
  } catch {
    return 'scp not found';
  }
  if (cfg.scp === 'sftp' && !fs.existsSync(SFTP_SERVER)) return `${SFTP_SERVER} not found (BENCH_FILES_SCP=legacy does without it)`;
  return undefined;
}

/**
 * scp's argv for a transfer: the issue-2 ssh options (its -p becomes scp's
 * -P), no compression. In SFTP mode scp runs `ssh ... -s -- HOST sftp`
 * (a subsystem request); the bench sshd has no subsystem, so `-S` names a
 * wrapper that asks for sftp-server as a plain command instead.
 */
function scpCommand(peer: SshPeer, cfg: FilesConfig, dir: string): (direction: Direction, src: string, dst: string) => Command {
  const sshArgs = peer.args({ tty: false });
  const host = sshArgs.pop()!;
  const port = sshArgs.indexOf('-p');
  if (port < 0) throw new Error(`no -p in the ssh arguments: ${sshArgs.join(' ')}`);
  sshArgs[port] = '-P';
  const mode: string[] = ['-O'];
  if (cfg.scp === 'sftp') {
    const wrapper = path.join(dir, 'ssh-sftp-as-command');
    fs.writeFileSync(
      wrapper,
      [
        '#!/bin/sh',
        '# scp (SFTP mode) runs: ssh OPTIONS -s -- HOST sftp. Run sftp-server as a command instead of a subsystem.',
        'n=$#; i=0',
        'for a; do',
        '  i=$((i + 1)); shift',
        '  if [ "$a" = -s ]; then continue; fi',
        `  if [ $i -eq $n ] && [ "$a" = sftp ]; then set -- "$@" ${SFTP_SERVER}; else set -- "$@" "$a"; fi`,
        'done',
        `exec ${peer.bin} "$@"`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    mode.splice(0, 1, '-S', wrapper);
  }
  return (direction, src, dst) => {
    const remote = (p: string) => `${host}:${p}`;
    const [from, to] = direction === 'download' ? [remote(src), dst] : [src, remote(dst)];
    return { cmd: 'scp', args: [...mode, ...sshArgs, '-o', 'Compression=no', from, to] };
  };
}

interface Spawned {
  pid: number;
  done: Promise<{ ms: number; code: number | null; stderr: string }>;
}

/** Runs a command with stdin and stdout on /dev/null; `done` resolves at its exit with the wall time since spawn. */
function spawnTimed(c: Command, procs: ProcessSet, timeoutMs: number): Spawned {
  const t0 = performance.now();
  const p = procs.spawn(c.cmd, c.args, { stdio: ['ignore', 'ignore', 'pipe'], env: c.env ?? process.env });
  const stderr = new Tail();
  p.stderr!.on('data', (d: Buffer) => stderr.push(d));
  const done = new Promise<{ ms: number; code: number | null; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${c.cmd} ${c.args.join(' ')} took longer than ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${c.cmd}: ${e.message}`));
    });
    p.on('exit', (code, sig) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - t0, code: code ?? (sig ? 128 : null), stderr: stderr.toString() });
    });
  });
  if (p.pid === undefined) return { pid: -1, done };
  return { pid: p.pid, done };
}

/** Bytes of `dst` written so far: the file itself once renamed, else a partial file beside it (the CLI's or the agent's). */
function bytesSoFar(dst: string): number {
  const size = (p: string) => fs.statSync(p, { throwIfNoEntry: false })?.size;
  const done = size(dst);
  if (done !== undefined) return done;
  const base = path.basename(dst);
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.dirname(dst));
  } catch {
    return 0;
  }
  for (const n of names) {
    // sdk/files.ts writes DEST.cmdop-part; the agent writes .DEST.cmdop-<transfer id>.part.
    if (n === `${base}.cmdop-part` || (n.startsWith(`.${base}.cmdop-`) && n.endsWith('.part'))) {
      return size(path.join(path.dirname(dst), n)) ?? 0;
    }
  }
  return 0;
}

/** Keystroke echo (bench/echo.ts's procedure) for as long as a transfer runs; samples from while its bytes moved. */
async function echoDuring(ch: ShellChannel, start: () => Spawned, dst: string, total: number): Promise<EchoDuring> {
  const sizes: { t: number; bytes: number }[] = [];
  const poll = setInterval(() => sizes.push({ t: performance.now(), bytes: bytesSoFar(dst) }), 20);
  const samples: { t0: number; ms: number }[] = [];
  const child = start();
  let over = false;
  const ended = child.done.finally(() => (over = true));
  ended.catch(() => {}); // awaited below
  try {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    for (let i = 0; !over; i++) {
      const key = letters[i % letters.length];
      const echoed = waitForOutput(ch, key, 10_000);
      const t0 = performance.now();
      ch.write(key);
      samples.push({ t0, ms: (await echoed) - t0 });
      await sleep(5 + (i % 7) * 2);
    }
  } finally {
    clearInterval(poll);
  }
  const r = await ended;
  if (r.code !== 0) throw new Error(`cmdop cp exited ${r.code} during the echo test: ${r.stderr}`);
  const from = sizes.find((s) => s.bytes > 0)?.t ?? Infinity;
  const to = sizes.find((s) => s.bytes >= total)?.t ?? sizes[sizes.length - 1]?.t ?? -Infinity;
  return {
    samples: samples.filter((s) => s.t0 >= from && s.t0 <= to).map((s) => s.ms),
    allSamples: samples.map((s) => s.ms),
    transferMs: r.ms,
    movingMs: Math.max(0, to - from),
  };
}

// ---------------------------------------------------------------- report

type Key = 'metric' | 'cmdop' | 'scp' | 'ratio' | 'target' | 'verdict';
const COLUMNS: Column<Key>[] = [
  { key: 'metric', title: 'metric' },
  { key: 'cmdop', title: 'CMDOP', numeric: true },
  { key: 'scp', title: 'scp', numeric: true },
  { key: 'ratio', title: 'CMDOP/scp', numeric: true },
  { key: 'target', title: 'target' },
  { key: 'verdict', title: 'result' },
];

type EchoKey = 'metric' | 'idle' | 'download' | 'dlRatio' | 'upload' | 'ulRatio';
const ECHO_COLUMNS: Column<EchoKey>[] = [
  { key: 'metric', title: 'keystroke echo, CMDOP terminal' },
  { key: 'idle', title: 'idle', numeric: true },
  { key: 'download', title: 'during download', numeric: true },
  { key: 'dlRatio', title: '×idle', numeric: true },
  { key: 'upload', title: 'during upload', numeric: true },
  { key: 'ulRatio', title: '×idle', numeric: true },
];

const sum = (o: Record<string, number>) => Object.values(o).reduce((s, v) => s + v, 0);

export function filesReport(r: FilesResult): string {
  const size = r.bytes % (1024 * 1024 * 1024) === 0 ? `${r.bytes / (1024 * 1024 * 1024)} GiB` : `${fmt(r.bytes / 1e6, 0)} MB`;
  const rateOf = (runs: TransferRun[]) => (runs.length ? median(runs.map((x) => mbPerS(r.bytes, x.ms))) : undefined);
  const cpuOf = (runs: TransferRun[]) => (runs.length ? median(runs.map((x) => sum(x.cpu))) : undefined);
  const row = (metric: string, c: string, s: string, rat: string, target = '(info)', v: Verdict = ''): Record<Key, string> => ({
    metric,
    cmdop: c,
    scp: s,
    ratio: rat,
    target,
    verdict: v,
  });
  const rows: Record<Key, string>[] = [];
  for (const d of DIRECTIONS) {
    const c = rateOf(r.runs[d].cmdop);
    const s = rateOf(r.runs[d].scp);
    rows.push(row(`${d} ${size} (MB/s, median)`, fmt(c), fmt(s), ratio(c, s), '≥ 0.8× scp (issue 15)', verdict([s === undefined ? undefined : c! >= 0.8 * s])));
  }
  const cores = os.availableParallelism();
  for (const d of DIRECTIONS) {
    const c = cpuOf(r.runs[d].cmdop);
    const s = cpuOf(r.runs[d].scp);
    rows.push(row(`${d}: CPU of the processes involved (s)`, fmt(c, 2), fmt(s, 2), ratio(c, s)));
    // The cost model: what a GB costs all processes together, and the rate that cost allows on this machine's cores.
    const perGb = (x: number | undefined) => (x === undefined ? undefined : x / (r.bytes / 1e9));
    rows.push(row(`${d}: CPU-s per GB, all processes`, fmt(perGb(c), 2), fmt(perGb(s), 2), ratio(perGb(c), perGb(s))));
    const ceiling = (x: number | undefined) => (x === undefined ? undefined : (cores * 1000) / x);
    rows.push(row(`${d}: ceiling at that cost on ${cores} cores (MB/s)`, fmt(ceiling(perGb(c))), fmt(ceiling(perGb(s))), ratio(ceiling(perGb(c)), ceiling(perGb(s)))));
  }
  rows.push(row(`fsync of a fresh ${size} copy (s)`, fmt(r.fsyncMs / 1000, 2), '—', '—', '(info: CMDOP syncs before its rename, scp does not)'));

  const q = (xs: number[], p: number) => percentile(xs, p);
  const echoRow = (p: number): Record<EchoKey, string> => {
    const idle = q(r.echo.idle, p);
    const dl = q(r.echo.download.samples, p);
    const ul = q(r.echo.upload.samples, p);
    return { metric: `p${p} (ms)`, idle: fmt(idle, 2), download: fmt(dl, 2), dlRatio: ratio(dl, idle), upload: fmt(ul, 2), ulRatio: ratio(ul, idle) };
  };

  const secs = (runs: TransferRun[]) => runs.map((x) => (x.ms / 1000).toFixed(2)).join(' ');
  const rates = (runs: TransferRun[]) => runs.map((x) => fmt(mbPerS(r.bytes, x.ms))).join(' ');
  // Every run's figure, not only the median: the control plane's and the agent's CPU for the same transfer can differ 2-3x between runs.
  const each = (xs: number[]) => xs.map((x) => x.toFixed(2)).join('/');
  const cpuLine = (runs: TransferRun[]) => {
    const keys = Object.keys(runs[0]?.cpu ?? {});
    const per = keys.map((k) => `${k} ${each(runs.map((x) => x.cpu[k]))}`).join(', ');
    const machine = each(runs.map((x) => x.machineCpu));
    const others = each(runs.map((x) => x.machineCpu - sum(x.cpu)));
    return `CPU per run (s): ${per}; whole machine ${machine}, of which other processes ${others}`;
  };
  const details: string[] = [];
  for (const d of DIRECTIONS) {
    for (const t of ['cmdop', 'scp'] as Tool[]) {
      const runs = r.runs[d][t];
      if (!runs.length) continue;
      details.push(`  ${t === 'cmdop' ? 'CMDOP' : 'scp'} ${d}: runs ${secs(runs)} s = ${rates(runs)} MB/s`, `    ${cpuLine(runs)}`);
    }
  }
  const echoLine = (label: string, xs: number[]) =>
    `  echo ${label}: ${xs.length} keystrokes, min ${fmt(q(xs, 0), 2)} p50 ${fmt(q(xs, 50), 2)} p90 ${fmt(q(xs, 90), 2)} ` +
    `p99 ${fmt(q(xs, 99), 2)} max ${fmt(q(xs, 100), 2)} ms`;
  const duringLine = (d: Direction) => {
    const e = r.echo[d];
    return (
      `    the ${d} took ${(e.transferMs / 1000).toFixed(2)} s (${fmt(mbPerS(r.bytes, e.transferMs))} MB/s), bytes moving for ` +
      `${(e.movingMs / 1000).toFixed(2)} s; over the whole run: p50 ${fmt(q(e.allSamples, 50), 2)} p99 ${fmt(q(e.allSamples, 99), 2)} ms ` +
      `(${e.allSamples.length} keystrokes)`
    );
  };

  const lines = [
    '',
    'File transfers (issue 7)',
    `${r.ssh ? `scp: ${r.scpHow}, ${r.ssh}` : `scp: skipped (${r.scpSkipped})`}; file: ${r.bytes} random bytes; ` +
      `${r.cfg.rounds} rounds, medians; MB = 10^6 bytes`,
    '',
    renderGrid(COLUMNS, rows),
    '',
    renderGrid(ECHO_COLUMNS, [echoRow(50), echoRow(99)]),
    '',
    'How to read it:',
    '  - a run is one `cmdop cp` or `scp` process, timed from spawn to exit (startup, sign-in or key exchange,',
    '    the MD5 check and fsync on the CMDOP side included). Control plane, agent and sshd are long-running child',
    '    processes on loopback; "remote" and local files are in the same directory on the same disk.',
    "  - the page cache is warm and not dropped (the source is read from memory in every run); `sync` runs before",
    "    each run so no earlier run's write-back competes; each copy is checked by SHA-256, then deleted.",
    '  - rounds alternate which tool goes first. CPU: user + system seconds from /proc of the client process tree',
    '    and the servers (with what they fork); "whole machine" is every process on both cores.',
    '  - echo: one key into `stty -icanon; cat > /dev/null` in a terminal opened through the SDK (bench/echo.ts),',
    '    idle, then while `cmdop cp` moves the file; "during" counts keys sent while the destination was growing.',
    ...(r.ssh ? [] : [`  - scp was skipped: install it with \`${SSH_INSTALL_HINT}\``]),
    '',
    'Details:',
    ...details,
    echoLine('idle', r.echo.idle),
    echoLine('during download', r.echo.download.samples),
    duringLine('download'),
    echoLine('during upload', r.echo.upload.samples),
    duringLine('upload'),
    '',
    r.problems.length ? `Problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}` : 'Problems: none seen.',
    '',
  ];
  return lines.join('\n');
}
