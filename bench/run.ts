// `npm run bench`: CMDOP against OpenSSH and a bare PTY, side by side, in one
// run (issue 2, with issue 15's targets): PTY and exec output throughput,
// keystroke echo latency, and the control plane's memory while a terminal
// floods and when idle. Prints one table with ratios and whether each target
// is met; then a table of CPU-seconds per GB of output for each process of
// each throughput contestant (client, control plane, agent or sshd, the
// remote `cat`; bench/cpuPerGb.ts); then the raw figures behind both, with
// the CPU per GB again on each contestant's line.
//
// Everything runs on this machine over loopback: a throwaway sshd and a
// CMDOP control plane + agent as child processes, with state in one temp dir.
// All of it is stopped and removed at the end, also on failure or Ctrl-C.
// Exit status: 0 when the bench ran (targets missed or not: it measures, it
// does not judge); 1 when the bench itself failed.
//
// Then what sign-in costs (bench/authCost.ts, BENCH_ONLY=auth): unary calls
// per kind of token, keystroke echo next to one audit insert, a paste flood.
//
// Then the issue-3 figures (bench/sessions.ts), in a second table "Sessions
// (issue 3)": reconnect -> last buffered byte, 10,000 idle agents on one
// control plane, observers on one fast terminal (100 at 2 MB/s, 10 at 10 MB/s).
//
// Last, the issue-5 figures (bench/consoleRender.ts, BENCH_ONLY=console): the
// browser console rendering `cat` of 50 MB next to a bare xterm.js page, and
// the longest main-thread stall during it, in Debian's Chromium; beside them
// the same `cat` through the gateway to a Node client that renders nothing.
//
// Then the issue-7 figures (bench/files.ts, BENCH_ONLY=files): a 1 GiB file
// downloaded and uploaded with `cmdop cp` and with `scp` against the issue-2
// sshd, and keystroke echo on a terminal while `cmdop cp` runs vs idle.
//
// Last, the issue-14 replica figures (bench/replicas.ts, BENCH_ONLY=replicas):
// three control-plane replicas on one PostgreSQL and NATS: failover after
// the owner is SIGKILLed, echo through a replica that forwards to the owner,
// idle agents spread over the three. Needs PostgreSQL and nats-server.
//
// Knobs (environment): BENCH_ONLY (comma-separated phases to run: issue2,
// auth, sessions, or one of reconnect, agents, observers; console; files;
// hops; replicas; default all),
// BENCH_MB (file size, default 100), BENCH_REPS (timed runs per contestant,
// default 3), BENCH_ECHO_SAMPLES (default 300), BENCH_FLOOD_S (default 5),
// BENCH_SKIP_SSH (set: no ssh comparison); for auth: BENCH_AUTH_CALLS (default
// 2000), BENCH_PASTE_MIB (8), BENCH_PASTE_REPS (3), BENCH_AUTH_MICRO (20000),
// and BENCH_ECHO_SAMPLES; the issue-3 knobs are listed in bench/sessions.ts;
// for console: BENCH_RENDER_MB (default 50), BENCH_RENDER_ROUNDS (3),
// BENCH_RENDER_CHUNK_KIB (the bare page's write size, 64); for files:
// BENCH_FILES_MB (MiB, default 1024), BENCH_FILES_ROUNDS (3), BENCH_FILES_SCP
// (sftp or legacy: `scp -O`), and BENCH_ECHO_SAMPLES, BENCH_SKIP_SSH; the
// replicas knobs are listed in bench/replicas.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CmdopClient } from '../sdk';
import { authCostConfig, authCostReport, measureAuthCost } from './authCost';
import { cpuLine, cpuTable } from './cpuPerGb';
import { consoleRenderConfig, consoleRenderReport, measureConsoleRender } from './consoleRender';
import { sdkShellChannel, sshShellChannel } from './channels';
import { CmdopCluster, startCmdop } from './cmdopCluster';
import { measureEcho, prepareEchoShell } from './echo';
import { measureHops } from './hops';
import { filesConfig, filesReport, measureFiles } from './files';
import { FloodResult, measureFlood } from './flood';
import { ProcessSet, sleep } from './procs';
import { measureReplicas, replicasConfig, replicasReport } from './replicas';
import { rssMb, sampleRss } from './procfs';
import { SESSION_PHASES, SessionPhase, runSessions, sessionsConfig, sessionsReport } from './sessions';
import { SSH_INSTALL_HINT, SshPeer, sshMissing, startSshPeer } from './sshPeer';
import { median, percentile } from './stats';
import { Row, fmt, ratio, renderTable, verdict } from './table';
import { DataFile, Runner, ThroughputResult, childRunner, makeDataFile, measureThroughput, rawPtyRunner } from './throughput';

// ------------------------------------------------------------------ setup

interface Config {
  fileMb: number;
  reps: number;
  echoSamples: number;
  echoWarmup: number;
  floodSeconds: number;
  rssSampleMs: number;
}

function envNumber(name: string, dflt: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number (got ${JSON.stringify(raw)})`);
  return n;
}

type Phase = 'issue2' | 'auth' | SessionPhase | 'console' | 'files' | 'hops' | 'replicas';

/** BENCH_ONLY=issue2,auth,sessions,reconnect,agents,observers,console,files,replicas (any of them); unset: every phase. */
function phasesToRun(): Set<Phase> {
  const raw = process.env.BENCH_ONLY?.trim();
  if (!raw) return new Set<Phase>(['issue2', 'auth', ...SESSION_PHASES, 'console', 'files', 'hops', 'replicas']);
  const out = new Set<Phase>();
  for (const word of raw.split(/[\s,]+/).filter(Boolean)) {
    if (word === 'issue2') out.add('issue2');
    else if (word === 'auth') out.add('auth');
    else if (word === 'console' || word === 'issue5') out.add('console');
    else if (word === 'files' || word === 'issue7') out.add('files');
    else if (word === 'hops') out.add('hops');
    else if (word === 'replicas' || word === 'issue14') out.add('replicas');
    else if (word === 'sessions' || word === 'issue3') SESSION_PHASES.forEach((p) => out.add(p));
    else if ((SESSION_PHASES as string[]).includes(word)) out.add(word as SessionPhase);
    else {
      throw new Error(`BENCH_ONLY: unknown phase ${JSON.stringify(word)} (use issue2, auth, sessions, ${SESSION_PHASES.join(', ')}, console, files, hops, replicas)`);
    }
  }
  return out;
}

function config(): Config {
  // Defaults sized so the whole bench stays around 2-3 minutes on 2 cores.
  return {
    fileMb: envNumber('BENCH_MB', 100),
    reps: Math.round(envNumber('BENCH_REPS', 3)),
    echoSamples: Math.round(envNumber('BENCH_ECHO_SAMPLES', 300)),
    echoWarmup: 20,
    floodSeconds: envNumber('BENCH_FLOOD_S', 5),
    rssSampleMs: 200,
  };
}

const started = performance.now();

/** Progress on stderr, so stdout holds only the report. */
function progress(msg: string): void {
  process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
}

interface Context {
  cfg: Config;
  dir: string;
  procs: ProcessSet;
  file: DataFile;
  cmdop: CmdopCluster;
  client: CmdopClient;
  ssh: SshPeer | undefined;
}

function machineInfo(): string[] {
  const cpus = os.cpus();
  let files = '?';
  try {
    files = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '?';
  } catch {
    // not Linux
  }
  return [
    `machine: ${os.availableParallelism()} CPU(s) (${cpus[0]?.model.trim() ?? 'unknown'}), ` +
      `${(os.totalmem() / 1e9).toFixed(1)} GB RAM, ${os.type()} ${os.release()} ${os.arch()}`,
    `node ${process.version}; open files limit ${files}`,
  ];
}

// ---------------------------------------------------------------- phases

interface Results {
  pty: { cmdop: ThroughputResult; ssh?: ThroughputResult; raw: ThroughputResult };
  exec: { cmdop: ThroughputResult; ssh?: ThroughputResult };
  echo: { cmdop: number[]; ssh?: number[] };
  flood: FloodResult;
  /** The control plane over the whole bench: its largest RSS, its RSS idle after the throughput runs, and once every phase is over. */
  controlPlane: { maxMb: number; idleMb: number; endMb: number };
}

async function ptyThroughput(ctx: Context): Promise<Results['pty']> {
  const cmdop = cmdopRunner(ctx, true);
  const ssh = sshRunner(ctx, true);
  const raw = rawPtyRunner(ctx.file);
  const results = await measureThroughput([cmdop, ...(ssh ? [ssh] : []), raw], ctx.cfg.reps, progress);
  return { cmdop: results[0], ssh: ssh ? results[1] : undefined, raw: results[results.length - 1] };
}

/**
 * Without a PTY, ssh moves 100 MB in a fraction of its own connection
 * setup (~0.8 s here), which would leave its net figure mostly noise: each
 * run cats the file this many times instead.
 */
const EXEC_COPIES = 5;

async function execThroughput(ctx: Context): Promise<Results['exec']> {
  const cmdop = cmdopRunner(ctx, false);
  const ssh = sshRunner(ctx, false);
  const results = await measureThroughput([cmdop, ...(ssh ? [ssh] : [])], ctx.cfg.reps, progress);
  return { cmdop: results[0], ssh: ssh ? results[1] : undefined };
}

function cmdopRunner(ctx: Context, pty: boolean): Runner {
  return childRunner({
    copies: pty ? 1 : EXEC_COPIES,
    label: pty ? 'CMDOP exec -t' : 'CMDOP exec',
    cmd: process.execPath,
    args: (remote) => ctx.cmdop.execArgs(remote, { tty: pty }),
    file: ctx.file,
    pty,
    env: ctx.cmdop.env, // CMDOP_TOKEN: the admin's
    procs: ctx.procs,
    cpu: {
      trees: [
        // Its whole tree: `cmdop server` may run the control plane in a child of the pid the bench started (cli/relaunch.ts).
        { pid: ctx.cmdop.controlPlanePid, role: () => 'control plane' },
        // The agent's node process; below it, the shell and `cat` it runs for the command.
        { pid: ctx.cmdop.agentPid, role: (_comm, isRoot) => (isRoot ? 'agent' : 'remote command') },
      ],
      roles: ['client', 'control plane', 'agent', 'remote command'],
    },
  });
}

function sshRunner(ctx: Context, pty: boolean): Runner | undefined {
  const ssh = ctx.ssh;
  if (!ssh) return undefined;
  return childRunner({
    label: pty ? 'ssh -tt' : 'ssh',
    cmd: ssh.bin,
    args: (remote) => [...ssh.args({ tty: pty }), remote],
    copies: pty ? 1 : EXEC_COPIES,
    file: ctx.file,
    pty,
    procs: ctx.procs,
    cpu: {
      // The listener and each connection's sshd processes; below them, the shell and `cat` they run.
      trees: [{ pid: ssh.pid, role: (comm, isRoot) => (isRoot || comm.startsWith('sshd') ? 'sshd' : 'remote command') }],
      roles: ['client', 'sshd', 'remote command'],
    },
  });
}

async function echoLatency(ctx: Context): Promise<Results['echo']> {
  const opts = { samples: ctx.cfg.echoSamples, warmup: ctx.cfg.echoWarmup };
  progress(`CMDOP: ${opts.samples} keystrokes into a shell terminal (SDK)`);
  const a = await ctx.client.terminal.open({ cols: 80, rows: 24 });
  let cmdop: number[];
  try {
    const ch = sdkShellChannel(a);
    await prepareEchoShell(ch);
    cmdop = await measureEcho(ch, opts);
  } finally {
    a.close();
    await ctx.client.terminal.close(a.terminalId).catch(() => {});
  }
  let ssh: number[] | undefined;
  if (ctx.ssh) {
    progress(`ssh -tt: ${opts.samples} keystrokes into a login shell`);
    const ch = sshShellChannel(ctx.ssh, ctx.procs);
    try {
      await prepareEchoShell(ch);
      ssh = await measureEcho(ch, opts);
    } finally {
      ch.close();
    }
  }
  return { cmdop, ssh };
}

/**
 * The control plane's RSS once the throughput runs are over and it has sat
 * idle: long enough for its idle collector (lib/idleCollector.ts, which
 * looks every 2 s) to have run, as it would on any server between bursts.
 */
async function idleRss(ctx: Context): Promise<number> {
  progress('control-plane RSS, idle after the throughput runs');
  await sleep(IDLE_WAIT_MS);
  return rssMb(ctx.cmdop.controlPlanePid);
}
const IDLE_WAIT_MS = 6000;

async function flood(ctx: Context): Promise<FloodResult> {
  progress(`control-plane RSS while a terminal runs \`yes\` for ${ctx.cfg.floodSeconds} s`);
  return measureFlood(
    ctx.client,
    { controlPlane: ctx.cmdop.controlPlanePid, agent: ctx.cmdop.agentPid },
    ctx.cfg.floodSeconds,
    ctx.cfg.rssSampleMs,
  );
}

// ---------------------------------------------------------------- report

function buildRows(r: Results, cfg: Config): Row[] {
  const rows: Row[] = [];
  const sshOk = (x: number | undefined, check: (v: number) => boolean) => (x === undefined ? undefined : check(x));

  // Throughput: higher is better.
  {
    const c = r.pty.cmdop.netMBps;
    const s = r.pty.ssh?.netMBps;
    const w = r.pty.raw.netMBps;
    rows.push({
      metric: `PTY output, cat ${cfg.fileMb} MB (MB/s)`,
      cmdop: fmt(c),
      ssh: fmt(s),
      raw: fmt(w),
      vsSsh: ratio(c, s),
      vsRaw: ratio(c, w),
      target: '≥ 1.0× ssh, ≥ 0.9× raw',
      verdict: verdict([sshOk(s, (v) => c >= v), c >= 0.9 * w]),
    });
  }
  {
    const c = r.exec.cmdop.netMBps;
    const s = r.exec.ssh?.netMBps;
    rows.push({
      metric: `exec output, no PTY, cat ${EXEC_COPIES}× (MB/s)`,
      cmdop: fmt(c),
      ssh: fmt(s),
      raw: '—',
      vsSsh: ratio(c, s),
      vsRaw: '—',
      target: '≥ 0.8× ssh',
      verdict: verdict([sshOk(s, (v) => c >= 0.8 * v)]),
    });
  }
  // Latency: lower is better. p50 has a bound of its own besides ssh's.
  const echoTargets = [
    { p: 50, maxMs: 1.0, vsSsh: 1.5, target: '≤ 1.0 ms and ≤ 1.5× ssh' },
    { p: 99, maxMs: undefined, vsSsh: 2, target: '≤ 2× ssh' },
  ];
  for (const t of echoTargets) {
    const c = percentile(r.echo.cmdop, t.p);
    const s = r.echo.ssh ? percentile(r.echo.ssh, t.p) : undefined;
    rows.push({
      metric: `keystroke echo p${t.p} (ms)`,
      cmdop: fmt(c, 2),
      ssh: fmt(s, 2),
      raw: '—',
      vsSsh: ratio(c, s),
      vsRaw: '—',
      target: t.target,
      verdict: verdict([t.maxMs === undefined ? undefined : c <= t.maxMs, sshOk(s, (v) => c <= t.vsSsh * v)]),
    });
  }
  // Memory: at most.
  const rss = (metric: string, mb: number, max: number): Row => ({
    metric,
    cmdop: fmt(mb),
    ssh: '—',
    raw: '—',
    vsSsh: '—',
    vsRaw: '—',
    target: `≤ ${max} MB`,
    verdict: verdict([Number.isFinite(mb) ? mb <= max : undefined]),
  });
  rows.push(rss('control-plane RSS max, flood (MB)', r.flood.controlPlaneMaxMb, 200));
  rows.push(rss('control-plane RSS idle, after the throughput runs (MB)', r.controlPlane.idleMb, 120));

  // For reading the figures above; no target.
  const info = (metric: string, cmdop: string, ssh = '—', vsSsh = '—'): Row => ({
    metric,
    cmdop,
    ssh,
    raw: '—',
    vsSsh,
    vsRaw: '—',
    target: '(info)',
    verdict: '',
  });
  const setupC = median(r.exec.cmdop.setupMs) / 1000;
  const setupS = r.exec.ssh ? median(r.exec.ssh.setupMs) / 1000 : undefined;
  rows.push(info('exec `true`: connect + run + exit (s)', fmt(setupC, 2), fmt(setupS, 2), ratio(setupC, setupS)));
  rows.push(info('agent RSS max, flood (MB)', fmt(r.flood.agentMaxMb)));
  rows.push(info('control-plane RSS max, whole bench (MB)', fmt(r.controlPlane.maxMb)));
  rows.push(info('flood received by the SDK operator (MB/s)', fmt(r.flood.receivedMBps)));
  rows.push(info('Ctrl-C to exit during the flood (ms)', fmt(r.flood.stopMs, 0)));
  return rows;
}

function throughputDetails(t: ThroughputResult): string {
  const s = (ms: number[]) => ms.map((x) => (x / 1000).toFixed(2)).join(' ');
  return [
    `  ${t.label}: runs ${s(t.runsMs)} s` + (t.setupMs.length ? `; \`true\` ${s(t.setupMs)} s` : ''),
    `    net ${t.netMBps.toFixed(1)} MB/s, gross ${t.grossMBps.toFixed(1)} MB/s; ` +
      `warm-up delivered ${t.countedBytes} of ${t.expectedBytes} bytes`,
    ...(t.cpu ? [`    ${cpuLine(t.cpu, t.payloadBytes)}`] : []),
  ].join('\n');
}

function echoDetails(label: string, xs: number[] | undefined): string {
  if (!xs) return `  ${label}: skipped`;
  const q = (p: number) => percentile(xs, p).toFixed(2);
  return `  ${label}: ${xs.length} samples, min ${q(0)} p50 ${q(50)} p90 ${q(90)} p99 ${q(99)} max ${q(100)} ms`;
}

/** What the run found wrong beyond speed: lost bytes, an operator told to skip, a flood that would not stop. */
function problems(r: Results): string[] {
  const out = [...r.flood.problems];
  for (const t of [r.pty.cmdop, r.pty.ssh, r.pty.raw, r.exec.cmdop, r.exec.ssh]) {
    if (t && t.countedBytes !== t.expectedBytes) {
      out.push(`${t.label}: delivered ${t.countedBytes} bytes, expected ${t.expectedBytes}`);
    }
  }
  return out;
}

/** Where a figure says less than it seems to. */
function caveats(r: Results): string[] {
  const out: string[] = [];
  for (const t of [r.pty.cmdop, r.pty.ssh, r.pty.raw, r.exec.cmdop, r.exec.ssh]) {
    if (t?.roughNet) {
      const net = (median(t.runsMs) - median(t.setupMs)) / 1000;
      out.push(
        `${t.label}: the transfer took ${net.toFixed(2)} s beyond a setup of ${(median(t.setupMs) / 1000).toFixed(2)} s; ` +
          'its MB/s is rough (raise BENCH_MB)',
      );
    }
  }
  return out;
}

function report(r: Results, ctx: Context): string {
  const lines = [
    '',
    'CMDOP benchmark (issue 2)',
    `ssh: ${ctx.ssh ? ctx.ssh.version : 'skipped'}`,
    `file: ${ctx.file.bytes} bytes of base64 text in ${ctx.file.lines} lines; ${ctx.cfg.reps} timed runs each, medians; ` +
      `MB = 10^6 bytes`,
    '',
    renderTable(buildRows(r, ctx.cfg)),
    '',
    'CPU-seconds per GB of output, by process (medians of the timed runs; GB = 10^9 bytes of the file):',
    '',
    cpuTable([r.pty.cmdop, r.pty.ssh, r.pty.raw, r.exec.cmdop, r.exec.ssh].filter((t): t is ThroughputResult => t !== undefined)),
    '',
    'How to read it:',
    '  - throughput is the file bytes moved over (median transfer time − median time of the same tool running',
    '    `true`), i.e. connection setup excluded (gross figures below); CMDOP and ssh are client processes writing',
    `    to /dev/null, raw PTY is node-pty in the bench process. PTY runs cat the file once (plus one CR per line`,
    `    on the wire), exec runs cat it ${EXEC_COPIES} times so that ssh's transfer outlasts its setup.`,
    '  - echo: one key typed into `stty -icanon; cat > /dev/null` in a shell, until its echo returns;',
    '    CMDOP through the SDK, ssh through `ssh -tt` with pipes.',
    '  - RSS: /proc/PID/status VmRSS every 200 ms while `yes` floods a terminal with an SDK operator attached',
    `    (the first phase, on a fresh control plane); idle: once more ${IDLE_WAIT_MS / 1000} s after the last throughput run.`,
    '  - CPU per GB: the CPU (user + system) each process used during a timed run, over the file bytes it moved,',
    '    polled from /proc and completed from the parents\' reaped-children time. Nothing is subtracted: unlike',
    '    MB/s, it includes the client\'s start-up and connection setup (node loading the CLI, the ssh handshake).',
    '    client: the `cmdop` CLI or `ssh` process; for raw node-pty, the bench process itself, which reads the PTY',
    '    (and polls /proc). agent: the agent\'s node process; sshd: the listener and each connection\'s sshd',
    '    processes; remote cat: what they run for the command (the shell and `cat`). total: the sum of the',
    '    roles (of medians). kernel threads: kworkers and the like in the same window (through a PTY, part of the',
    '    line discipline\'s work runs there, charged to no process); whole machine: all busy CPU in that window',
    '    (the bench and anything else running). total + kernel threads should come close to whole machine.',
    ...(ctx.ssh ? [] : [`  - ssh comparisons were skipped: install them with \`${SSH_INSTALL_HINT}\``]),
    '',
    'Details:',
    throughputDetails(r.pty.cmdop),
    ...(r.pty.ssh ? [throughputDetails(r.pty.ssh)] : []),
    throughputDetails(r.pty.raw),
    throughputDetails(r.exec.cmdop),
    ...(r.exec.ssh ? [throughputDetails(r.exec.ssh)] : []),
    echoDetails('echo CMDOP', r.echo.cmdop),
    echoDetails('echo ssh', r.echo.ssh),
    `  flood: control plane ${r.flood.controlPlaneIdleMb.toFixed(1)} MB idle -> ${r.flood.controlPlaneMaxMb.toFixed(1)} MB max; ` +
      `agent ${r.flood.agentMaxMb.toFixed(1)} MB max; ${r.flood.gaps} gap(s)`,
    `  control plane over the whole bench: ${r.controlPlane.maxMb.toFixed(1)} MB max, ` +
      `${r.controlPlane.idleMb.toFixed(1)} MB idle after the throughput runs, ${r.controlPlane.endMb.toFixed(1)} MB at the end`,
  ];
  const list = (title: string, items: string[], none: string) =>
    items.length ? `${title}:\n${items.map((p) => `  - ${p}`).join('\n')}` : `${title}: ${none}`;
  lines.push('', list('Problems', problems(r), 'none seen.'));
  const c = caveats(r);
  if (c.length) lines.push(list('Caveats', c, ''));
  lines.push('');
  return lines.join('\n');
}

// ------------------------------------------------------------------ main

/** Stops and removes everything the bench started; safe to call twice (failure, then a signal). */
type Teardown = () => Promise<void>;
let teardown: Teardown | undefined;

async function main(): Promise<number> {
  const phases = phasesToRun();
  const cfg = config();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-bench-'));
  const procs = new ProcessSet();
  const held: Held = {};
  const cleanups = new Set<() => Promise<void>>();
  let torn: Promise<void> | undefined;
  teardown = () =>
    (torn ??= (async () => {
      held.client?.close();
      await Promise.all([...cleanups].map((c) => c().catch(() => {})));
      await procs.stopAll();
      fs.rmSync(dir, { recursive: true, force: true });
    })());

  try {
    process.stdout.write(['', 'CMDOP benchmark', ...machineInfo(), ''].join('\n'));
    let code = 0;
    if (phases.has('issue2')) {
      try {
        process.stdout.write(await issue2(cfg, dir, procs, held));
      } catch (e) {
        // What the servers said is usually the explanation.
        if (held.cmdop) process.stderr.write(`\n${held.cmdop.logs()}\n`);
        if (held.ssh) process.stderr.write(`sshd log: ${held.ssh.log()}\n`);
        throw e;
      } finally {
        // The issue-3 phases start their own control planes, on a quiet machine.
        held.client?.close();
        held.client = undefined;
        await procs.stopAll();
      }
    }
    if (phases.has('auth')) {
      // Its own control plane and agent, stopped at its end.
      const r = await measureAuthCost({ dir: path.join(dir, 'auth'), procs, cfg: authCostConfig(envNumber), progress });
      process.stdout.write(authCostReport(r));
    }
    const sessionPhases = SESSION_PHASES.filter((p) => phases.has(p));
    if (sessionPhases.length > 0) {
      const r = await runSessions({
        phases: sessionPhases,
        cfg: sessionsConfig(envNumber),
        dir: path.join(dir, 'sessions'),
        procs,
        progress,
        cleanups,
      });
      process.stdout.write(sessionsReport(r));
      if (Object.keys(r.failed).length > 0) code = 1;
    }
    if (phases.has('console')) {
      // Its own control plane, agent and Chromium, stopped at its end.
      const r = await measureConsoleRender({
        dir: path.join(dir, 'console'),
        procs,
        cfg: consoleRenderConfig(envNumber),
        progress,
        cleanups,
      });
      process.stdout.write(consoleRenderReport(r));
    }
    if (phases.has('hops')) {
      // Its own control plane and agent, every hop traced (tracing costs a little: not the issue-2 figures).
      const report = await measureHops({
        dir: path.join(dir, 'hops'),
        procs,
        cfg: { keystrokes: Math.round(envNumber('BENCH_HOPS_KEYSTROKES', 300)), floodMb: Math.round(envNumber('BENCH_HOPS_FLOOD_MB', 64)) },
        progress,
      });
      process.stdout.write('\n' + report);
    }
    if (phases.has('files')) {
      // Its own sshd, control plane and agent, stopped at its end.
      const r = await measureFiles({ dir: path.join(dir, 'files'), procs, cfg: filesConfig(envNumber), progress, cleanups });
      process.stdout.write(filesReport(r));
      await procs.stopAll(); // the sshd
    }
    if (phases.has('replicas')) {
      // Its own PostgreSQL, NATS, replicas, agent and simulators, stopped at its end.
      const r = await measureReplicas({ dir: path.join(dir, 'replicas'), procs, cfg: replicasConfig(envNumber), progress, cleanups });
      process.stdout.write(replicasReport(r));
      if (Object.keys(r.failed).length > 0) code = 1;
    }
    return code;
  } finally {
    progress('cleaning up');
    await teardown();
  }
}

/** What the issue-2 phases have started, for error messages and the teardown. */
interface Held {
  client?: CmdopClient;
  cmdop?: CmdopCluster;
  ssh?: SshPeer;
}

/** The issue-2 phases and their report. */
async function issue2(cfg: Config, dir: string, procs: ProcessSet, held: Held): Promise<string> {
  let ssh: SshPeer | undefined;
  const missing = process.env.BENCH_SKIP_SSH ? 'BENCH_SKIP_SSH is set' : sshMissing();
  if (missing) {
    process.stderr.write(`\n*** ssh comparisons are SKIPPED: ${missing}.\n*** Install OpenSSH with: ${SSH_INSTALL_HINT}\n\n`);
  }
  progress(`writing ${cfg.fileMb} MB of base64 text`);
  const file = makeDataFile(path.join(dir, 'big.txt'), cfg.fileMb * 1e6);
  if (!missing) {
    progress('starting a throwaway sshd on loopback');
    ssh = held.ssh = await startSshPeer(path.join(dir, 'ssh'), procs);
  }
  progress('starting a CMDOP control plane and agent on loopback');
  const cmdop = (held.cmdop = await startCmdop(path.join(dir, 'cmdop'), procs));
  const client = (held.client = cmdop.newClient({ machine: cmdop.machine }));
  const ctx: Context = { cfg, dir, procs, file, cmdop, client, ssh };

  // The flood runs first, on a fresh control plane, so that its RSS is the
  // flood's; what the later phases leave behind is watched separately.
  const whole = sampleRss([cmdop.controlPlanePid], ctx.cfg.rssSampleMs);
  const floodResult = await flood(ctx);
  const echo = await echoLatency(ctx);
  const pty = await ptyThroughput(ctx);
  const exec = await execThroughput(ctx);
  const idleMb = await idleRss(ctx);
  const results: Results = {
    pty,
    exec,
    echo,
    flood: floodResult,
    controlPlane: { maxMb: whole.stop().get(cmdop.controlPlanePid)!, idleMb, endMb: rssMb(cmdop.controlPlanePid) },
  };
  fs.rmSync(file.path, { force: true });
  return report(results, ctx);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    progress(`${sig}: stopping everything the bench started`);
    void (teardown?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`\nbench failed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
