// Issue 14, control-plane replicas (BENCH_ONLY=replicas): three `cmdop
// server` processes on one PostgreSQL store and one NATS bus, as a user
// runs them (bench/replicaCluster.ts). Three figures, printed, never judged
// beyond "met"/"MISSED" against the issue's targets:
//
// 1. Failover. A real agent (`cmdop agent --server A,B,C`, enrolled with a
//    one-time token) holds its session on one replica, the owner; an SDK
//    operator attached through ANOTHER replica runs a command writing
//    numbered, time-stamped lines at a steady rate (bench/numberedOutput.ts).
//    The owner is SIGKILLed mid-stream. Timed: from the kill to the arrival,
//    at the operator, of the first line the command wrote after the kill
//    (lines already in flight do not count as "flowing again"). Checked:
//    every line arrived, once, in order, and the sha256 of what arrived is
//    the one the command computed of what it wrote. The killed replica is
//    started again between rounds; each round kills whichever replica owns
//    the session then.
// 2. Keystroke echo through the owner vs through another replica (forwarded
//    over PeerService), one shell terminal each, in alternating blocks of
//    keystrokes, bench/echo.ts's method.
// 3. Idle agents spread over the three replicas (bench/agentSim.ts, each
//    agent a real AgentService.Connect stream with its own credential), then
//    each replica's CPU (utime + stime from /proc over a window) and RSS.
//    Enrollment (2 calls per agent, before any clock) has a time budget: the
//    phase runs with as many agents as were enrolled when it ran out, and
//    says so.
//
// Knobs (environment), with their defaults:
//   BENCH_REPLICA_PARTS=failover,echo,agents (which parts run; echo needs failover's replicas and agent)
//   BENCH_FAILOVER_ROUNDS=5  BENCH_FAILOVER_KBPS=300 (KB/s the command writes)
//   BENCH_FAILOVER_S=12 (each round's command runs this long)
//   BENCH_FAILOVER_KILL_AFTER_S=2 (output received before the kill)
//   BENCH_ECHO_SAMPLES=300 (per route)  BENCH_REPLICA_ECHO_BLOCKS=10
//   BENCH_REPLICA_AGENTS=30000  BENCH_REPLICA_AGENT_PROCS=2 (simulator processes per replica)
//   BENCH_AGENTS_PER_CONN=100  BENCH_AGENT_HEARTBEAT_S=5  BENCH_REPLICA_WINDOW_S=20
//   BENCH_ENROLL_CONCURRENCY=32
//   BENCH_REPLICA_REGISTER_PER_S=100 (agents' first connects per second, all simulators together;
//   0: every agent at once, a registration storm)
//   BENCH_REPLICA_SETUP_BUDGET_S=420 (enrollment + paced registration: the agents run are those that fit)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_TIMEOUTS, SessionState } from '../protocol';
import type { CmdopClient } from '../sdk';
import { simAgentName } from './agentSim';
import { sdkShellChannel } from './channels';
import { CLI, CMDOP_ENV } from './cmdopCluster';
import { measureEcho, prepareEchoShell, type ShellChannel } from './echo';
import { SIM, Sim } from './idleAgents';
import { LINE_BYTES, parseSummary } from './numberedOutput';
import { cpuSeconds, rssMb, sampleRss } from './procfs';
import { ProcessSet, Tail, sleep, stop, waitForLine } from './procs';
import { type Backing, type ReplicaSet, startBacking, startReplicas } from './replicaCluster';
import { median, percentile } from './stats';
import { TARGET_COLUMNS, Verdict, fmt, ratio, renderGrid, verdict, type TargetKey } from './table';
import { machineBusySeconds, watchTreeCpu } from './treeCpu';

export interface ReplicasConfig {
  parts: Set<Part>;
  failover: { rounds: number; bytesPerS: number; seconds: number; killAfterS: number };
  echo: { samples: number; blocks: number; warmup: number };
  agents: {
    agents: number;
    procsPerReplica: number;
    perChannel: number;
    heartbeatS: number;
    windowS: number;
    enrollConcurrency: number;
    /** Enrollment and the paced registration together: enrollment stops when what is enrolled would take this long in all. */
    setupBudgetS: number;
    /** First connects per second, all simulators together; 0: all at once. */
    registerPerS: number;
  };
}

const REPLICAS = 3;

type Part = 'failover' | 'echo' | 'agents';

/** How busy the whole machine is from now until stop(): % of all its cores (other work on it shows here). */
function busyMeter(): { stop(): number } {
  const b0 = machineBusySeconds();
  const t0 = performance.now();
  return { stop: () => ((machineBusySeconds() - b0) / ((performance.now() - t0) / 1000) / os.availableParallelism()) * 100 };
}

export function replicasConfig(envNumber: (name: string, dflt: number) => number): ReplicasConfig {
  const parts = new Set<Part>();
  for (const w of (process.env.BENCH_REPLICA_PARTS?.trim() || 'failover,echo,agents').split(/[\s,]+/).filter(Boolean)) {
    if (w !== 'failover' && w !== 'echo' && w !== 'agents') throw new Error(`BENCH_REPLICA_PARTS: unknown part ${JSON.stringify(w)} (use failover, echo, agents)`);
    parts.add(w);
  }
  return {
    parts,
    failover: {
      rounds: Math.round(envNumber('BENCH_FAILOVER_ROUNDS', 5)),
      bytesPerS: envNumber('BENCH_FAILOVER_KBPS', 300) * 1000,
      seconds: envNumber('BENCH_FAILOVER_S', 12),
      killAfterS: envNumber('BENCH_FAILOVER_KILL_AFTER_S', 2),
    },
    echo: {
      samples: Math.round(envNumber('BENCH_ECHO_SAMPLES', 300)),
      blocks: Math.round(envNumber('BENCH_REPLICA_ECHO_BLOCKS', 10)),
      warmup: 20,
    },
    agents: {
      agents: Math.round(envNumber('BENCH_REPLICA_AGENTS', 30_000)),
      procsPerReplica: Math.round(envNumber('BENCH_REPLICA_AGENT_PROCS', 2)),
      perChannel: Math.round(envNumber('BENCH_AGENTS_PER_CONN', 100)),
      heartbeatS: envNumber('BENCH_AGENT_HEARTBEAT_S', 5),
      windowS: envNumber('BENCH_REPLICA_WINDOW_S', 20),
      enrollConcurrency: Math.round(envNumber('BENCH_ENROLL_CONCURRENCY', 32)),
      setupBudgetS: envNumber('BENCH_REPLICA_SETUP_BUDGET_S', 420),
      // 0 is allowed here (all at once); envNumber wants positive numbers.
      registerPerS: process.env.BENCH_REPLICA_REGISTER_PER_S === '0' ? 0 : envNumber('BENCH_REPLICA_REGISTER_PER_S', 100),
    },
  };
}

// ------------------------------------------------------------ results

export interface FailoverRound {
  /** Replica indexes: the owner killed, the one the operator went through, the owner afterwards (-1: unknown). */
  owner: number;
  via: number;
  newOwner: number;
  /** Kill -> first line written after the kill, at the operator, ms. */
  flowingMs: number;
  /** Kill -> the store names another owner (the agent resumed there), ms. */
  takeoverMs: number;
  /** Kill -> last line written before the kill, at the operator (what was in flight), ms. */
  lastOldMs: number;
  /** The longest time without any output at the operator during the round, ms. */
  silenceMs: number;
  expectedBytes: number;
  receivedBytes: number;
  /** Lines missing, repeated, malformed; the sha256 of what arrived vs what was written. */
  missingLines: number;
  duplicateLines: number;
  badLines: number;
  shaMatch: boolean;
  gaps: number;
  exitCode: number;
}

export interface FailoverResult {
  /** The rounds that ran to the end (those that failed are counted, and said in `problems`). */
  rounds: FailoverRound[];
  failedRounds: number;
  problems: string[];
  /** The machine over the rounds, % of all its cores; its 1-minute load average at the start. */
  machineBusyPercent: number;
  loadAvg: number;
}

export interface EchoResult {
  owner: number[];
  other: number[];
  /** Per block pair: median through the other replica − median through the owner, ms. */
  blockDiffs: number[];
  ownerIndex: number;
  otherIndex: number;
  machineBusyPercent: number;
  loadAvg: number;
  /**
   * CPU per keystroke (its input and its echo), µs, beyond the replicas' idle rate: the owner's when
   * attached to it directly; the owner's and the forwarding replica's when attached through the other.
   * /proc counts CPU in 10 ms ticks: over a few hundred keystrokes these are rough.
   */
  cpuPerKeyUs: { direct: number; forwardedOwner: number; forwardedOther: number };
}

export interface ReplicaWindow {
  heartbeatS: number;
  heartbeatsPerS: number;
  /** Per replica, % of one core over the window. */
  cpuPercent: number[];
  rssMaxMb: number[];
  simCpuPercent: number;
  /** Agents whose stream was registered (or resumed), at the end of the window, by the simulators' count. */
  live: number;
  /** PostgreSQL (the postmaster and its backends) over the window, % of one core. */
  pgCpuPercent: number;
  machineBusyPercent: number;
}

export interface IdleResult {
  requested: number;
  agents: number;
  /** Why fewer than requested, if fewer. */
  why: string;
  enrollMs: number;
  enrollRate: number;
  enrollCpuPercent: number[];
  registerMs: number;
  registerRetries: number;
  /** Every agent registered -> the store says every session is CONNECTED (the replicas' queued writes landed), ms; NaN if never. */
  storeCaughtUpMs: number;
  /** The oldest heartbeat of a running replica seen in the store during the registration and the wait for the store, ms (others take it for dead past 5 s). */
  maxBeatAgeMs: number;
  /** The store's work per registered agent (pg_stat_database over the registration): transactions, rows inserted, rows updated. */
  storePerAgent: { xacts: number; inserted: number; updated: number };
  /** Sessions another replica swept to GRACE_PERIOD ("its control plane replica stopped answering") while their agents were connected. */
  swept: number;
  /** CONNECTED sessions per replica (by owner in the store), after registration and after the windows. */
  connectedBefore: number[];
  connectedAfter: number[];
  rssIdleMb: number[];
  rssAfterRegisterMb: number[];
  windows: ReplicaWindow[];
  simProcs: number;
  simRssMb: number;
  connections: number;
  fdLimit: number;
  problems: string[];
}

export interface ReplicasResult {
  cfg: ReplicasConfig;
  failover?: FailoverResult;
  echo?: EchoResult;
  agents?: IdleResult;
  failed: Partial<Record<Part, string>>;
}

// -------------------------------------------------------------- phase

export async function measureReplicas(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: ReplicasConfig;
  progress: (msg: string) => void;
  cleanups: Set<() => Promise<void>>;
}): Promise<ReplicasResult> {
  const { dir, procs, cfg, progress, cleanups } = opts;
  fs.mkdirSync(dir, { recursive: true });
  const r: ReplicasResult = { cfg, failed: {} };
  const attempt = async (part: Part, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      r.failed[part] = msg;
      progress(`replicas, ${part}: FAILED: ${msg}`);
    }
  };

  progress('replicas: starting PostgreSQL and NATS');
  const backing = await startBacking();
  const stopBacking = () => backing.stop();
  cleanups.add(stopBacking);
  try {
    // 1 and 2 on one set of replicas and one real agent.
    if (cfg.parts.has('failover') || cfg.parts.has('echo')) await attempt('failover', async () => {
      const set = await startReplicas({ backing, dir: path.join(dir, 'failover'), procs, count: REPLICAS, dbPrefix: 'cmdop_failover' });
      const stopSet = () => set.stop();
      cleanups.add(stopSet);
      let agent: ChildProcess | undefined;
      const agentLog = new Tail();
      try {
        progress(`replicas: 3 replicas listening on ${set.list}; starting an agent with --server ${set.list}`);
        agent = await startAgent(set, path.join(dir, 'failover'), procs, agentLog);
        if (cfg.parts.has('failover')) r.failover = await failover(set, cfg.failover, progress);
        if (cfg.parts.has('echo')) await attempt('echo', async () => {
          r.echo = await echoSideBySide(set, cfg.echo, progress);
        });
      } catch (e) {
        process.stderr.write(`\n${set.logs()}\nagent stderr: ${agentLog}\n`);
        throw e;
      } finally {
        if (agent) await stop(agent);
        await set.stop();
        cleanups.delete(stopSet);
      }
    });
    if (r.failed.failover && cfg.parts.has('echo') && !r.echo && !r.failed.echo) r.failed.echo = 'not run: the failover part failed before it';

    // 3 on fresh replicas and a database of its own.
    if (cfg.parts.has('agents')) await attempt('agents', async () => {
      r.agents = await idleAgents(backing, cfg.agents, path.join(dir, 'agents'), procs, progress, cleanups);
    });
  } finally {
    await backing.stop();
    cleanups.delete(stopBacking);
  }
  return r;
}

const MACHINE = 'box';

/** `cmdop agent --server A,B,C`, enrolled the documented way; resolves once it says connected. */
async function startAgent(set: ReplicaSet, dir: string, procs: ProcessSet, log: Tail): Promise<ChildProcess> {
  const admin = set.newClient('all');
  let enroll: string;
  try {
    enroll = (await admin.auth.createEnrollment(MACHINE)).token;
  } finally {
    admin.close();
  }
  const agent = procs.spawn(
    process.execPath,
    [CLI, 'agent', '--server', set.list, '--name', MACHINE, '--state-dir', path.join(dir, 'agent'), '--enroll-token', enroll],
    { stdio: ['ignore', 'pipe', 'pipe'], env: CMDOP_ENV },
  );
  agent.stderr!.on('data', (d: Buffer) => log.push(d));
  await waitForLine(agent, 'stdout', /connected/, 30_000);
  agent.stdout!.resume();
  return agent;
}

/** The replica index owning the machine's session now, waiting until the store names a live one. */
async function ownerNow(set: ReplicaSet, timeoutMs = 30_000): Promise<{ index: number; epoch: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = await set.sessionRow(MACHINE);
    if (row && row.state === SessionState.CONNECTED) {
      const index = set.indexOf(row.owner);
      if (index >= 0) return { index, epoch: row.epoch };
    }
    if (Date.now() > deadline) throw new Error(`no live replica owns ${MACHINE}'s session within ${timeoutMs} ms (store: ${JSON.stringify(row)})`);
    await sleep(50);
  }
}

// ------------------------------------------------------------ 1. failover

async function failover(
  set: ReplicaSet,
  cfg: ReplicasConfig['failover'],
  progress: (msg: string) => void,
): Promise<FailoverResult> {
  const gen = path.join(__dirname, 'numberedOutput.js');
  const rounds: FailoverRound[] = [];
  const problems: string[] = [];
  const loadAvg = os.loadavg()[0];
  const busy = busyMeter();
  let failedRounds = 0;
  for (let round = 0; round < cfg.rounds; round++) {
    const { index: owner, epoch } = await ownerNow(set);
    // Through a replica that does not hold the session; the two others take turns.
    const others = [0, 1, 2].filter((i) => i !== owner);
    const via = others[round % others.length];
    progress(`replicas, failover ${round + 1}/${cfg.rounds}: owner replica ${owner}, operator through replica ${via}; ` +
      `${fmt(cfg.bytesPerS / 1000, 0)} KB/s for ${cfg.seconds} s, SIGKILL after ${cfg.killAfterS} s of output`);
    const client = set.newClient(via, { machine: MACHINE });
    const chunks: Buffer[] = [];
    /** Per chunk: the offset just past it, and when it arrived (performance.now()). */
    const arrivals: { end: number; at: number }[] = [];
    let received = 0;
    let kill: { perf: number; wall: number } | undefined;
    try {
      const run = client.terminal.execute([process.execPath, gen, String(cfg.bytesPerS), String(cfg.seconds)], {
        onOutput: (d, stream) => {
          if (stream !== 'stdout') return;
          const at = performance.now();
          chunks.push(Buffer.from(d));
          received += d.length;
          arrivals.push({ end: received, at });
        },
      });
      run.catch(() => {}); // awaited below; a failure before that must not be unhandled
      const want = cfg.killAfterS * cfg.bytesPerS;
      const deadline = Date.now() + 30_000;
      while (received < want) {
        if (Date.now() > deadline) throw new Error(`only ${received} bytes of output within 30 s`);
        await sleep(20);
      }
      // Watch the store for the takeover (another owner, a higher epoch) from the kill on.
      let takeoverAt = NaN;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const row = await set.sessionRow(MACHINE).catch(() => undefined);
          if (row && row.epoch > epoch && row.state === SessionState.CONNECTED) {
            takeoverAt = performance.now();
            return;
          }
          await sleep(20);
        }
      })();
      kill = { perf: performance.now(), wall: Date.now() };
      await set.kill(owner, 'SIGKILL');
      const res = await Promise.race([
        run,
        sleep((cfg.seconds + 90) * 1000).then(() => {
          throw new Error(`the command did not finish within ${cfg.seconds + 90} s`);
        }),
      ]);
      watching = false;
      await watch;
      const after = await ownerNow(set).catch(() => ({ index: -1, epoch: -1 }));
      const got = Buffer.concat(chunks);
      const summary = parseSummary(res.stderr);
      if (!summary) throw new Error(`the command's summary is missing (exit ${res.exitCode}; stderr ${JSON.stringify(res.stderr.slice(-500))})`);
      const check = checkLines(got);
      const arrivalOf = (offset: number) => arrivals.find((a) => a.end > offset)?.at ?? NaN;
      // The first line written after the kill, and the last one written before it.
      let firstNew = -1;
      let lastOld = -1;
      for (let off = 0; off + LINE_BYTES <= got.length; off += LINE_BYTES) {
        const ts = Number(got.subarray(off + 10, off + 23).toString('latin1'));
        if (ts > kill.wall) {
          firstNew = off;
          break;
        }
        lastOld = off;
      }
      let silence = 0;
      for (let i = 1; i < arrivals.length; i++) silence = Math.max(silence, arrivals[i].at - arrivals[i - 1].at);
      const one: FailoverRound = {
        owner,
        via,
        newOwner: after.index,
        flowingMs: firstNew >= 0 ? arrivalOf(firstNew) - kill.perf : NaN,
        takeoverMs: takeoverAt - kill.perf,
        lastOldMs: lastOld >= 0 ? arrivalOf(lastOld + LINE_BYTES - 1) - kill.perf : NaN,
        silenceMs: silence,
        expectedBytes: summary.bytes,
        receivedBytes: got.length,
        missingLines: Math.max(0, summary.lines - check.lines) + check.missing,
        duplicateLines: check.duplicates,
        badLines: check.bad,
        shaMatch: sha256(got) === summary.sha256,
        gaps: res.gaps.length,
        exitCode: res.exitCode,
      };
      rounds.push(one);
      if (!one.shaMatch || one.receivedBytes !== one.expectedBytes || one.missingLines || one.duplicateLines || one.badLines || one.gaps) {
        problems.push(
          `failover round ${round + 1}: received ${one.receivedBytes} of ${one.expectedBytes} bytes, ${one.missingLines} lines missing, ` +
            `${one.duplicateLines} repeated, ${one.badLines} malformed, ${one.gaps} gap(s) told, sha256 ${one.shaMatch ? 'matches' : 'DIFFERS'}`,
        );
      }
      if (one.exitCode !== 0) problems.push(`failover round ${round + 1}: the command exited ${one.exitCode}`);
      if (firstNew < 0) problems.push(`failover round ${round + 1}: no line written after the kill arrived (the round's command ended too early: raise BENCH_FAILOVER_S)`);
      progress(
        `replicas, failover ${round + 1}: output flowing again ${fmt(one.flowingMs / 1000, 2)} s after the kill ` +
          `(taken over by replica ${one.newOwner} after ${fmt(one.takeoverMs / 1000, 2)} s); ` +
          `${one.expectedBytes - one.receivedBytes} bytes lost, sha256 ${one.shaMatch ? 'matches' : 'DIFFERS'}`,
      );
    } catch (e) {
      // One round gone wrong (a client that could not re-attach, a command that never ended) says so; the next one runs.
      failedRounds++;
      const msg = e instanceof Error ? e.message : String(e);
      problems.push(`failover round ${round + 1} failed: ${msg}`);
      progress(`replicas, failover ${round + 1}: FAILED: ${msg}`);
    } finally {
      client.close();
      // The killed replica comes back (same port, same data dir) for the next round.
      if (kill) await set.start(owner);
    }
    await sleep(1000);
  }
  return { rounds, failedRounds, problems, machineBusyPercent: busy.stop(), loadAvg };
}

/** Numbered lines (numberedOutput.ts) as they arrived: how many, and what is wrong with their order. */
function checkLines(got: Buffer): { lines: number; missing: number; duplicates: number; bad: number } {
  let expect = 1;
  let missing = 0;
  let duplicates = 0;
  let bad = 0;
  let lines = 0;
  if (got.length % LINE_BYTES !== 0) bad++;
  for (let off = 0; off + LINE_BYTES <= got.length; off += LINE_BYTES) {
    const line = got.subarray(off, off + LINE_BYTES).toString('latin1');
    if (!/^\d{9} \d{13}\n$/.test(line)) {
      bad++;
      continue;
    }
    const seq = Number(line.slice(0, 9));
    if (seq === expect) {
      expect++;
      lines++;
    } else if (seq < expect) duplicates++;
    else {
      missing += seq - expect;
      expect = seq + 1;
      lines++;
    }
  }
  return { lines: expect - 1, missing, duplicates, bad };
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

// ---------------------------------------------------------------- 2. echo

async function echoSideBySide(set: ReplicaSet, cfg: ReplicasConfig['echo'], progress: (msg: string) => void): Promise<EchoResult> {
  const { index: ownerIndex } = await ownerNow(set);
  const otherIndex = [0, 1, 2].find((i) => i !== ownerIndex)!;
  const per = Math.max(1, Math.ceil(cfg.samples / cfg.blocks));
  progress(
    `replicas, echo: ${per * cfg.blocks} keystrokes through the owner (replica ${ownerIndex}) and as many through replica ${otherIndex}, ` +
      `alternating in blocks of ${per}`,
  );
  const routes: { index: number; client: CmdopClient; ch?: ShellChannel; close?: () => void; samples: number[] }[] = [ownerIndex, otherIndex].map((index) => ({
    index,
    client: set.newClient(index, { machine: MACHINE }),
    samples: [],
  }));
  try {
    for (const r of routes) {
      const a = await r.client.terminal.open({ cols: 80, rows: 24 });
      r.ch = sdkShellChannel(a);
      r.close = () => {
        a.close();
        void r.client.terminal.close(a.terminalId).catch(() => {});
      };
      await prepareEchoShell(r.ch);
      // Warm-up, thrown away (JIT, first use of the peer link).
      await measureEcho(r.ch, { samples: 0, warmup: cfg.warmup });
    }
    const blockDiffs: number[] = [];
    const loadAvg = os.loadavg()[0];
    // CPU the two replicas spend per keystroke, less what they spend idle (their heartbeats, sweeps, polls):
    // a figure the machine's other load does not stretch, unlike the latencies.
    const pids = [ownerIndex, otherIndex].map((i) => set.pid(i));
    const cpuNow = () => pids.map(cpuSeconds);
    const idle0 = cpuNow();
    const idleT0 = performance.now();
    await sleep(3000);
    const idleRate = cpuNow().map((c, k) => (c - idle0[k]) / ((performance.now() - idleT0) / 1000));
    /** Per route: CPU seconds of [owner, other replica] during its blocks, and those blocks' wall time. */
    const spent = new Map<number, { cpu: number[]; s: number }>(routes.map((r) => [r.index, { cpu: [0, 0], s: 0 }]));
    const busy = busyMeter();
    for (let b = 0; b < cfg.blocks; b++) {
      const order = b % 2 === 0 ? routes : [...routes].reverse();
      const medians = new Map<number, number>();
      for (const r of order) {
        const c0 = cpuNow();
        const t0 = performance.now();
        const xs = await measureEcho(r.ch!, { samples: per, warmup: 0 });
        const c1 = cpuNow();
        const acc = spent.get(r.index)!;
        acc.s += (performance.now() - t0) / 1000;
        acc.cpu = acc.cpu.map((x, k) => x + c1[k] - c0[k]);
        r.samples.push(...xs);
        medians.set(r.index, median(xs));
      }
      blockDiffs.push(medians.get(otherIndex)! - medians.get(ownerIndex)!);
    }
    const machineBusyPercent = busy.stop();
    /** µs per keystroke of [owner, other replica] on a route, idle rate taken out. */
    const perKey = (index: number, count: number) => {
      const acc = spent.get(index)!;
      return acc.cpu.map((c, k) => ((c - idleRate[k] * acc.s) / count) * 1e6);
    };
    const [directOwner] = perKey(ownerIndex, routes[0].samples.length);
    const [fwdOwner, fwdOther] = perKey(otherIndex, routes[1].samples.length);
    return {
      owner: routes[0].samples,
      other: routes[1].samples,
      blockDiffs,
      ownerIndex,
      otherIndex,
      machineBusyPercent,
      loadAvg,
      cpuPerKeyUs: { direct: directOwner, forwardedOwner: fwdOwner, forwardedOther: fwdOther },
    };
  } finally {
    for (const r of routes) {
      r.close?.();
      r.client.close();
    }
  }
}

// ----------------------------------------------------------- 3. idle agents

/** The soft limit on open files of this process (children inherit it). */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

/** The postmaster's pid: the parent of a backend serving the bench's own connection. */
async function postmasterPid(set: ReplicaSet): Promise<number | undefined> {
  try {
    const [row] = await set.query<{ pid: number }>('select pg_backend_pid() as pid');
    const stat = fs.readFileSync(`/proc/${row.pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

async function connectedByReplica(set: ReplicaSet, prefix: string): Promise<number[]> {
  const rows = await set.query<{ owner: string; n: string }>(
    'select owner, count(*) as n from sessions where state = $1 and name like $2 group by owner',
    [SessionState.CONNECTED, `${prefix}%`],
  );
  const out = new Array<number>(set.size).fill(0);
  for (const r of rows) {
    const i = set.indexOf(r.owner);
    if (i >= 0) out[i] += Number(r.n);
  }
  return out;
}

async function idleAgents(
  backing: Backing,
  cfg: ReplicasConfig['agents'],
  dir: string,
  procs: ProcessSet,
  progress: (msg: string) => void,
  cleanups: Set<() => Promise<void>>,
): Promise<IdleResult> {
  const problems: string[] = [];
  const P = REPLICAS * cfg.procsPerReplica;
  const fdLimit = openFilesLimit();
  const connectionsFor = (n: number) => Math.ceil(n / cfg.perChannel) + P;
  if (connectionsFor(cfg.agents) + 500 > fdLimit) {
    throw new Error(`${cfg.agents} agents over ${connectionsFor(cfg.agents)} connections need more open files than the limit of ${fdLimit}`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const serverArgs = ['--heartbeat-interval', String(cfg.heartbeatS)];
  let set = await startReplicas({ backing, dir, procs, count: REPLICAS, serverArgs, dbPrefix: 'cmdop_agents' });
  const stopSet = () => set.stop();
  cleanups.add(stopSet);
  const sims: Sim[] = [];
  let watchingBeats = false;
  try {
    // Agent g is agent floor(g / P) of simulator g % P (which talks to replica (g % P) % 3): enrolled in
    // that order, agents 0..N-1 fill every simulator evenly whenever the budget stops the enrollment.
    const PREFIX = 'rp';
    const nameOf = (g: number) => simAgentName(`${PREFIX}${g % P}`, Math.floor(g / P));
    progress(
      `replicas, idle agents: enrolling up to ${cfg.agents} agents through the 3 replicas (${cfg.enrollConcurrency} at a time; ` +
        `enrollment + registration${cfg.registerPerS > 0 ? ` at ${cfg.registerPerS}/s` : ''} within ${cfg.setupBudgetS} s; not part of any figure)`,
    );
    const registerMsPerAgent = cfg.registerPerS > 0 ? 1000 / cfg.registerPerS : 0;
    const enrolled = await enrollSpread(set, cfg.agents, nameOf, cfg.enrollConcurrency, cfg.setupBudgetS * 1000, registerMsPerAgent, progress);
    const N = enrolled.tokens.length;
    const perAgentS = 1 / enrolled.rate + registerMsPerAgent / 1000;
    const why =
      N < cfg.agents
        ? `enrollment ran at ${Math.round(enrolled.rate)}/s (2 calls per agent; PostgreSQL, 3 replicas and this bench on ` +
          `${os.availableParallelism()} cores)` +
          (cfg.registerPerS > 0 ? ` and registration is paced at ${cfg.registerPerS}/s (faster, the replicas' own heartbeats in the store go stale: see below)` : '') +
          `: the setup budget of ${cfg.setupBudgetS} s (BENCH_REPLICA_SETUP_BUDGET_S) covers ${n(N)}; ${n(cfg.agents)} would need ~${Math.round(cfg.agents * perAgentS)} s`
        : '';
    if (N === 0) throw new Error('no agent was enrolled');
    const counts = Array.from({ length: P }, (_, p) => (N > p ? Math.floor((N - p - 1) / P) + 1 : 0));
    const batches = counts.map((count, p) => ({
      prefix: `${PREFIX}${p}`,
      count,
      replica: p % REPLICAS,
      credentials: path.join(dir, `credentials-${p}.json`),
    }));
    for (const [p, b] of batches.entries()) {
      const tokens: string[] = [];
      for (let k = 0; k < b.count; k++) tokens.push(enrolled.tokens[k * P + p]);
      fs.writeFileSync(b.credentials, JSON.stringify(tokens), { mode: 0o600 });
    }

    // Fresh replica processes on the same store: their figures are of holding agents, not of enrolling them.
    progress(`replicas, idle agents: ${N} enrolled; restarting the 3 replicas (fresh processes)`);
    for (let i = 0; i < REPLICAS; i++) await set.kill(i, 'SIGTERM');
    for (let i = 0; i < REPLICAS; i++) await set.start(i);
    await sleep(1000);
    const rssIdleMb = [0, 1, 2].map((i) => rssMb(set.pid(i)));

    // The replicas' own heartbeats in the store, watched from here on: one older than 5 s is a replica the others take for dead.
    let maxBeatAgeMs = 0;
    watchingBeats = true;
    const beats = (async () => {
      while (watchingBeats) {
        const ids = [0, 1, 2].map((i) => set.id(i));
        const rows = await set.query<{ id: string; heartbeat_ms: string }>('select id, heartbeat_ms from replicas').catch(() => []);
        for (const r of rows) if (ids.includes(r.id)) maxBeatAgeMs = Math.max(maxBeatAgeMs, Date.now() - Number(r.heartbeat_ms));
        await sleep(500);
      }
    })();
    const dbStats = async () => {
      const [x] = await set.query<{ xact_commit: string; tup_inserted: string; tup_updated: string }>(
        'select xact_commit, tup_inserted, tup_updated from pg_stat_database where datname = current_database()',
      );
      return { xacts: Number(x.xact_commit), inserted: Number(x.tup_inserted), updated: Number(x.tup_updated) };
    };
    const db0 = await dbStats();
    const cpu0 = [0, 1, 2].map((i) => cpuSeconds(set.pid(i)));
    const t0 = performance.now();
    for (const b of batches) {
      if (b.count === 0) continue;
      const conf = {
        server: set.addr(b.replica),
        count: b.count,
        perChannel: cfg.perChannel,
        prefix: b.prefix,
        heartbeatS: cfg.heartbeatS,
        credentials: b.credentials,
        ...(cfg.registerPerS > 0 ? { connectPerS: cfg.registerPerS / P } : {}),
      };
      sims.push(new Sim(procs.spawn(process.execPath, [SIM, JSON.stringify(conf)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: CMDOP_ENV })));
    }
    const timer = setInterval(() => progress(`replicas, idle agents: ${sims.reduce((s, x) => s + (x.last.registered ?? 0), 0)} of ${N} registered`), 5000);
    let ready;
    try {
      ready = await Promise.all(sims.map((s) => s.next('ready', 600_000)));
    } finally {
      clearInterval(timer);
    }
    const registerMs = performance.now() - t0;
    const refused = ready.reduce((s, m) => s + (m.refused ?? 0), 0);
    const registerRetries = ready.reduce((s, m) => s + (m.retries ?? 0), 0);
    if (refused) problems.push(`idle agents: ${refused} registrations were refused`);
    progress(
      `replicas, idle agents: ${N} registered in ${(registerMs / 1000).toFixed(1)} s; replica CPU meanwhile ` +
        [0, 1, 2].map((i) => `${(((cpuSeconds(set.pid(i)) - cpu0[i]) / (registerMs / 1000)) * 100).toFixed(0)} %`).join(' / '),
    );
    // The replicas answer `registered` first and write the session to the store behind it: wait for the store.
    const total = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    let connectedBefore = await connectedByReplica(set, PREFIX);
    const s0 = performance.now();
    while (total(connectedBefore) < N && performance.now() - s0 < 120_000) {
      await sleep(250);
      connectedBefore = await connectedByReplica(set, PREFIX);
    }
    const storeCaughtUpMs = total(connectedBefore) === N ? performance.now() - s0 : NaN;
    // pg_stat_database lags by up to a second (its counters are flushed by the backends).
    await sleep(1500);
    const db1 = await dbStats();
    const storePerAgent = { xacts: (db1.xacts - db0.xacts) / N, inserted: (db1.inserted - db0.inserted) / N, updated: (db1.updated - db0.updated) / N };
    watchingBeats = false;
    await beats;
    const [{ n: sweptText }] = await set.query<{ n: string }>(
      "select count(*) as n from session_transitions t join sessions s on s.session_id = t.session_id where s.name like $1 and t.reason = 'its control plane replica stopped answering'",
      [`${PREFIX}%`],
    );
    const swept = Number(sweptText);
    progress(
      `replicas, idle agents: the store says ${total(connectedBefore)} CONNECTED (${connectedBefore.join(' / ')}) ` +
        `${((performance.now() - s0) / 1000).toFixed(1)} s after the last registration; oldest replica heartbeat seen ${(maxBeatAgeMs / 1000).toFixed(1)} s; ` +
        `${swept} sessions swept as orphans`,
    );
    if (total(connectedBefore) !== N) {
      const states = await set.query<{ state: number; reason: string; n: string }>(
        'select state, reason, count(*) as n from sessions where name like $1 group by 1, 2 order by 3 desc',
        [`${PREFIX}%`],
      );
      problems.push(
        `idle agents: ${total(connectedBefore)} of ${N} CONNECTED in the store ${((performance.now() - s0) / 1000).toFixed(0)} s after every agent was registered; ` +
          `the store has ${states.map((x) => `${x.n} ${SessionState[x.state]} ("${x.reason}")`).join(', ')}`,
      );
    }
    if (maxBeatAgeMs > 5000) problems.push(`idle agents: a replica's own heartbeat in the store was ${(maxBeatAgeMs / 1000).toFixed(1)} s old (others take it for dead after 5 s)`);
    if (swept > 0) problems.push(`idle agents: ${swept} sessions of connected agents were swept to GRACE_PERIOD by another replica ("its control plane replica stopped answering")`);
    await sleep(2000);
    const rssAfterRegisterMb = [0, 1, 2].map((i) => rssMb(set.pid(i)));
    const pgPid = await postmasterPid(set);

    const windows: ReplicaWindow[] = [];
    for (const hb of [cfg.heartbeatS, DEFAULT_TIMEOUTS.heartbeatIntervalS]) {
      if (windows.length > 0) {
        for (const s of sims) s.send({ t: 'interval', s: hb });
        await sleep(2000);
      }
      progress(`replicas, idle agents: sampling the 3 replicas for ${cfg.windowS} s, heartbeat every ${hb} s`);
      const pids = [0, 1, 2].map((i) => set.pid(i));
      const beats0 = (await Promise.all(sims.map((s) => s.stats()))).reduce((s, m) => s + (m.heartbeats ?? 0), 0);
      const simPids = sims.map((s) => s.proc.pid!);
      const simCpu0 = simPids.reduce((s, p) => s + cpuSeconds(p), 0);
      const pg = pgPid === undefined ? undefined : watchTreeCpu({ pg: pgPid }, 500);
      const busy = busyMeter();
      const c0 = pids.map(cpuSeconds);
      const w0 = performance.now();
      const rss = sampleRss(pids, 500);
      await sleep(cfg.windowS * 1000);
      const c1 = pids.map(cpuSeconds);
      const w1 = performance.now();
      const pgCpu = pg ? pg.stop().pg : NaN;
      const machineBusyPercent = busy.stop();
      const simCpu1 = simPids.reduce((s, p) => s + cpuSeconds(p), 0);
      const rssMax = rss.stop();
      const stats1 = await Promise.all(sims.map((s) => s.stats()));
      const beats1 = stats1.reduce((s, m) => s + (m.heartbeats ?? 0), 0);
      const live = stats1.reduce((s, m) => s + (m.live ?? 0), 0);
      const secs = (w1 - w0) / 1000;
      windows.push({
        heartbeatS: hb,
        heartbeatsPerS: (beats1 - beats0) / secs,
        cpuPercent: pids.map((_, i) => ((c1[i] - c0[i]) / secs) * 100),
        rssMaxMb: pids.map((p) => rssMax.get(p)!),
        simCpuPercent: ((simCpu1 - simCpu0) / secs) * 100,
        live,
        pgCpuPercent: (pgCpu / secs) * 100,
        machineBusyPercent,
      });
    }
    const connectedAfter = await connectedByReplica(set, PREFIX);
    if (total(connectedAfter) !== N) problems.push(`idle agents: ${total(connectedAfter)} of ${N} still CONNECTED after the windows`);
    const stats = await Promise.all(sims.map((s) => s.stats()));
    const lost = stats.reduce((s, m) => s + (m.lost ?? 0), 0);
    if (lost) problems.push(`idle agents: ${lost} agent streams ended or failed during the run`);
    return {
      requested: cfg.agents,
      agents: N,
      why,
      enrollMs: enrolled.ms,
      enrollRate: enrolled.rate,
      enrollCpuPercent: enrolled.cpuPercent,
      registerMs,
      registerRetries,
      storeCaughtUpMs,
      maxBeatAgeMs,
      storePerAgent,
      swept,
      connectedBefore,
      connectedAfter,
      rssIdleMb,
      rssAfterRegisterMb,
      windows,
      simProcs: sims.length,
      simRssMb: sims.reduce((s, x) => s + (rssMb(x.proc.pid!) || 0), 0),
      connections: connectionsFor(N) - P,
      fdLimit,
      problems,
    };
  } catch (e) {
    process.stderr.write(`\n${set.logs()}\n`);
    throw e;
  } finally {
    watchingBeats = false;
    for (const s of sims) s.send({ t: 'stop' });
    await Promise.all(sims.map((s) => stop(s.proc, 2000)));
    await set.stop();
    cleanups.delete(stopSet);
  }
}

/**
 * Enrolls agents 0, 1, 2, … (named by `nameOf`) the documented way (the
 * admin's CreateEnrollment, then EnrollAgent with the one-time token), each
 * worker through one replica in turn, until `count` are enrolled or the
 * time spent plus `afterMsPerAgent` for each one enrolled reaches `budgetMs`
 * (the ones in flight then still finish). Resolves with the credentials of
 * agents 0..n-1.
 */
async function enrollSpread(
  set: ReplicaSet,
  count: number,
  nameOf: (g: number) => string,
  concurrency: number,
  budgetMs: number,
  afterMsPerAgent: number,
  progress: (msg: string) => void,
): Promise<{ tokens: string[]; ms: number; rate: number; cpuPercent: number[] }> {
  const tokens: string[] = [];
  let next = 0;
  let done = 0;
  const pids = [0, 1, 2].map((i) => set.pid(i));
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  const timer = setInterval(() => progress(`replicas, idle agents: ${done} of ${count} enrolled (${Math.round(done / ((performance.now() - t0) / 1000))}/s)`), 5000);
  const worker = async (w: number) => {
    const i = w % set.size;
    const admin = set.newClient(i);
    const spender = set.newClient(i, { token: '' });
    try {
      while (next < count && performance.now() - t0 + next * afterMsPerAgent < budgetMs) {
        const g = next++;
        const enroll = await admin.auth.createEnrollment(nameOf(g));
        spender.setToken(enroll.token);
        tokens[g] = (await spender.auth.enrollAgent()).token;
        done++;
      }
    } finally {
      admin.close();
      spender.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, (_, w) => worker(w)));
  } finally {
    clearInterval(timer);
  }
  const ms = performance.now() - t0;
  const cpuPercent = pids.map((p, i) => ((cpuSeconds(p) - cpu0[i]) / (ms / 1000)) * 100);
  progress(`replicas, idle agents: ${done} enrolled in ${(ms / 1000).toFixed(1)} s`);
  return { tokens: tokens.slice(0, next), ms, rate: done / (ms / 1000), cpuPercent };
}

// ---------------------------------------------------------------- report

type RRow = Record<TargetKey, string>;
const COLUMNS = TARGET_COLUMNS;

const row = (metric: string, cmdop: string, target: string, vsTarget: string, v: Verdict | 'FAILED'): RRow => ({ metric, cmdop, target, vsTarget, verdict: v });
const info = (metric: string, cmdop: string): RRow => row(metric, cmdop, '(info)', '—', '');
const n = (x: number) => x.toLocaleString('en-US');
const list = (xs: number[], digits = 1) => xs.map((x) => fmt(x, digits)).join(' / ');

function lostBytes(f: FailoverResult): number {
  return f.rounds.reduce((s, x) => s + Math.max(0, x.expectedBytes - x.receivedBytes), 0);
}

function exact(f: FailoverResult): boolean {
  return f.rounds.every((x) => x.shaMatch && x.receivedBytes === x.expectedBytes && !x.missingLines && !x.duplicateLines && !x.badLines && !x.gaps);
}

export function replicasRows(r: ReplicasResult): RRow[] {
  const rows: RRow[] = [];
  const failed = (metric: string) => row(metric, '—', '—', '—', 'FAILED');

  const f = r.failover;
  if (f && f.rounds.length) {
    const xs = f.rounds.map((x) => x.flowingMs / 1000);
    const p50 = median(xs);
    const max = Math.max(...xs);
    const k = f.rounds.length;
    const ok = f.failedRounds === 0;
    rows.push(row(`owner SIGKILLed -> output flowing again at the operator, p50 of ${k} (s)`, fmt(p50, 2), '< 2 s', ratio(p50, 2), verdict([p50 < 2, ok])));
    rows.push(row(`owner SIGKILLed -> output flowing again, max of ${k} (s)`, fmt(max, 2), '< 5 s', ratio(max, 5), verdict([max < 5, ok])));
    const lost = lostBytes(f);
    const bytes = f.rounds.reduce((s, x) => s + x.expectedBytes, 0);
    rows.push(row(`bytes lost over ${k} failovers (of ${n(bytes)})`, n(lost), '0, byte-exact', '—', verdict([lost === 0 && exact(f)])));
    if (!ok) rows.push(row(`failover rounds that failed (of ${k + f.failedRounds})`, String(f.failedRounds), '0', '—', 'MISSED'));
    rows.push(info(`owner SIGKILLed -> session taken over in the store, p50 (s)`, fmt(median(f.rounds.map((x) => x.takeoverMs / 1000)), 2)));
  } else if (r.failed.failover || f) rows.push(failed('failover: owner SIGKILLed -> output flowing again'));

  const e = r.echo;
  if (e) {
    const o50 = percentile(e.owner, 50);
    const x50 = percentile(e.other, 50);
    const d50 = x50 - o50;
    rows.push(info(`keystroke echo through the owner, p50 (ms)`, fmt(o50, 2)));
    rows.push(info(`keystroke echo through another replica, p50 (ms)`, fmt(x50, 2)));
    rows.push(row(`added by the other replica (forwarded), p50 (ms)`, fmt(d50, 2), '< 0.3 ms', ratio(d50, 0.3), verdict([d50 < 0.3])));
    const o99 = percentile(e.owner, 99);
    const x99 = percentile(e.other, 99);
    rows.push(info(`keystroke echo p99: through the owner / another replica (ms)`, `${fmt(o99, 2)} / ${fmt(x99, 2)}`));
    rows.push(info(`added by the other replica, p99 (ms)`, fmt(x99 - o99, 2)));
    rows.push(info(`CPU per keystroke in the forwarding replica (µs)`, fmt(e.cpuPerKeyUs.forwardedOther, 0)));
  } else if (r.failed.echo) rows.push(failed('keystroke echo through the owner vs another replica'));

  const a = r.agents;
  if (a) {
    const label = `${n(a.agents)} idle agents on 3 replicas`;
    const connected = a.connectedBefore.reduce((x, y) => x + y, 0);
    const connectedAfter = a.connectedAfter.reduce((x, y) => x + y, 0);
    const held = connected === a.agents && connectedAfter === a.agents && a.swept === 0;
    for (const w of a.windows) {
      const dflt = w.heartbeatS === DEFAULT_TIMEOUTS.heartbeatIntervalS ? ', default' : '';
      const worst = Math.max(...w.cpuPercent);
      const all = w.live === a.agents && held;
      rows.push(
        row(
          `${label}: CPU of the busiest replica, heartbeat ${w.heartbeatS} s${dflt} (${n(Math.round(w.heartbeatsPerS))}/s` +
            `${all ? '' : `; ${n(w.live)} streams live, ${n(connectedAfter)} CONNECTED in the store`}) (% of a core)`,
          fmt(worst),
          '< 25 % each',
          ratio(worst, 25),
          verdict([w.cpuPercent.every((c) => c < 25), all]),
        ),
      );
    }
    const rss = Math.max(...a.windows.flatMap((w) => w.rssMaxMb));
    rows.push(row(`${label}: RSS of the largest replica, max (MB)`, fmt(rss), '< 1000 MB each', ratio(rss, 1000), verdict([rss < 1000, held])));
    rows.push(
      row(
        `${label}: sessions CONNECTED in the store after registration / after the windows`,
        `${n(connected)} / ${n(connectedAfter)}`,
        `${n(a.agents)}, none swept`,
        ratio(Math.min(connected, connectedAfter), a.agents),
        verdict([held]),
      ),
    );
    rows.push(
      row(`${label}: oldest replica heartbeat in the store while they registered (s)`, fmt(a.maxBeatAgeMs / 1000), '< 5 s (dead past it)', ratio(a.maxBeatAgeMs, 5000), verdict([a.maxBeatAgeMs < 5000])),
    );
    const pace = r.cfg.agents.registerPerS > 0 ? `paced at ${r.cfg.agents.registerPerS}/s` : 'all at once';
    rows.push(info(`${label}: all registered (${pace}) after (s)`, fmt(a.registerMs / 1000)));
    if (a.agents < a.requested) rows.push(row(`idle agents run (of ${n(a.requested)} asked for)`, n(a.agents), `${n(a.requested)}`, ratio(a.agents, a.requested), 'MISSED'));
  } else if (r.failed.agents) rows.push(failed(`idle agents on 3 replicas`));
  return rows;
}

export function replicasReport(r: ReplicasResult): string {
  const lines = ['', 'Replicas (issue 14): 3 control planes on one PostgreSQL and one NATS', '', renderGrid(COLUMNS, replicasRows(r)), '', 'How to read it:'];
  const c = r.cfg;
  if (c.parts.has('failover')) {
    lines.push(
      `  - failover: a real agent (\`cmdop agent --server A,B,C\`, default flags) and an SDK operator attached through a replica`,
      `    that does not own the session, running a command that writes 24-byte numbered lines stamped with their write time at`,
      `    ${fmt(c.failover.bytesPerS / 1000, 0)} KB/s for ${c.failover.seconds} s; after ${c.failover.killAfterS} s of output the owner is SIGKILLed. Timed from the kill to the`,
      '    arrival of the first line written after it (lines in flight before the kill do not count). Loss: every line once and in',
      "    order, and the sha256 of what arrived equals the command's own of what it wrote. The killed replica is restarted between",
      '    rounds; each round kills whichever replica owns the session then. Replicas run with default flags (grace 30 s).',
    );
  }
  if (c.parts.has('echo')) {
    lines.push(
      '  - echo: one key into `stty -icanon; cat > /dev/null` in a shell terminal until its echo returns (bench/echo.ts), one',
      '    SDK client attached through the owner, one through another replica (PeerService to the owner), same agent, keystrokes',
      `    alternating in ${c.echo.blocks} blocks per route (order swapped every block).`,
    );
  }
  if (c.parts.has('agents')) {
    lines.push(
      '  - idle agents: simulated agents (bench/agentSim.ts), each a real AgentService.Connect stream with its own credential,',
      `    ${c.agents.procsPerReplica} simulator process(es) per replica, each talking to one replica, their first connects ` +
        (c.agents.registerPerS > 0 ? `paced at ${c.agents.registerPerS}/s in all` : 'all at once') + ';',
      `    CPU is utime + stime of each replica from /proc over ${c.agents.windowS} s once every agent is CONNECTED, at a heartbeat`,
      `    every ${c.agents.heartbeatS} s, then every ${DEFAULT_TIMEOUTS.heartbeatIntervalS} s (the default). The replicas are restarted after the enrollment`,
      '    (fresh processes). A replica whose own heartbeat in the store is older than 5 s is dead to the others, which',
      '    sweep its sessions to GRACE_PERIOD: that figure is watched while the agents register.',
    );
  }
  lines.push("  - everything (PostgreSQL, NATS, replicas, agent, simulators, this bench) shares this machine's cores.", '', 'Details:');
  const f = r.failover;
  if (f) {
    for (const [i, x] of f.rounds.entries()) {
      lines.push(
        `  failover ${i + 1}: owner replica ${x.owner} killed, operator through replica ${x.via}, taken over by replica ${x.newOwner}: ` +
          `in-flight output until +${fmt(x.lastOldMs / 1000, 2)} s, taken over at +${fmt(x.takeoverMs / 1000, 2)} s, ` +
          `output flowing again at +${fmt(x.flowingMs / 1000, 2)} s; longest silence ${fmt(x.silenceMs / 1000, 2)} s; ` +
          `${n(x.receivedBytes)} of ${n(x.expectedBytes)} bytes, ${x.missingLines} lines missing, ${x.duplicateLines} repeated, ` +
          `sha256 ${x.shaMatch ? 'matches' : 'DIFFERS'}, exit ${x.exitCode}` +
          (x.newOwner === x.via ? ' (the operator\'s replica became the owner)' : ''),
      );
    }
  }
  if (f) lines.push(`  failover rounds: the machine was ${fmt(f.machineBusyPercent, 0)} % busy (all ${os.availableParallelism()} cores), load average ${fmt(f.loadAvg)} at the start`);
  const e = r.echo;
  if (e) {
    const q = (xs: number[]) =>
      `${xs.length} samples, min ${fmt(percentile(xs, 0), 2)} p50 ${fmt(percentile(xs, 50), 2)} p90 ${fmt(percentile(xs, 90), 2)} ` +
      `p99 ${fmt(percentile(xs, 99), 2)} max ${fmt(percentile(xs, 100), 2)} ms`;
    lines.push(`  echo through the owner (replica ${e.ownerIndex}): ${q(e.owner)}`);
    lines.push(`  echo through replica ${e.otherIndex} (forwarded): ${q(e.other)}`);
    lines.push(
      `  per block, median forwarded − median direct (ms): ${e.blockDiffs.map((x) => x.toFixed(2)).join(' ')}; ` +
        `median of those ${fmt(median(e.blockDiffs), 2)} ms; the machine was ${fmt(e.machineBusyPercent, 0)} % busy, load average ${fmt(e.loadAvg)} at the start`,
      `  CPU per keystroke (input + echo, beyond the replicas' idle rate; /proc's 10 ms ticks make these rough): ` +
        `direct: owner ${fmt(e.cpuPerKeyUs.direct, 0)} µs; forwarded: owner ${fmt(e.cpuPerKeyUs.forwardedOwner, 0)} µs + ` +
        `forwarding replica ${fmt(e.cpuPerKeyUs.forwardedOther, 0)} µs`,
    );
  }
  const a = r.agents;
  if (a) {
    lines.push(
      `  idle agents: ${n(a.agents)} of ${n(a.requested)} asked for${a.why ? ` (${a.why})` : ''}; ${a.simProcs} simulator processes, ` +
        `${n(a.connections)} TCP connections (${r.cfg.agents.perChannel} streams each; open files limit ${a.fdLimit})`,
      `    enrollment (before any clock): ${(a.enrollMs / 1000).toFixed(1)} s, ${Math.round(a.enrollRate)}/s, replicas at ${list(a.enrollCpuPercent, 0)} % of a core`,
      `    registration (${r.cfg.agents.registerPerS > 0 ? `first connects paced at ${r.cfg.agents.registerPerS}/s` : 'every agent at once'}): ` +
        `${(a.registerMs / 1000).toFixed(1)} s for all (${Math.round(a.agents / (a.registerMs / 1000))}/s), ${a.registerRetries} stream(s) retried; ` +
        (Number.isFinite(a.storeCaughtUpMs)
          ? `the store had every session CONNECTED ${(a.storeCaughtUpMs / 1000).toFixed(1)} s after the last \`registered\``
          : 'the store never had every session CONNECTED') +
        `; oldest replica heartbeat seen ${(a.maxBeatAgeMs / 1000).toFixed(1)} s; ${n(a.swept)} sessions swept as orphans`,
      `    the store's work per agent registered (pg_stat_database, everything the replicas did meanwhile): ` +
        `${fmt(a.storePerAgent.xacts)} transactions, ${fmt(a.storePerAgent.inserted)} rows inserted, ${fmt(a.storePerAgent.updated)} rows updated`,
      `    CONNECTED per replica (owner in the store): ${a.connectedBefore.map(n).join(' / ')} after registration, ${a.connectedAfter.map(n).join(' / ')} after the windows`,
      `    replica RSS: ${list(a.rssIdleMb, 0)} MB before any agent, ${list(a.rssAfterRegisterMb, 0)} MB with all`,
    );
    for (const w of a.windows) {
      lines.push(
        `    ${r.cfg.agents.windowS} s window, heartbeat every ${w.heartbeatS} s (${Math.round(w.heartbeatsPerS)}/s sent): replicas ` +
          `${list(w.cpuPercent)} % of a core, RSS max ${list(w.rssMaxMb, 0)} MB; PostgreSQL ${fmt(w.pgCpuPercent)} %; simulators ${fmt(w.simCpuPercent, 0)} % together; ` +
          `machine ${fmt(w.machineBusyPercent, 0)} % busy`,
      );
    }
    lines.push(`    simulators' RSS at the end: ${a.simRssMb.toFixed(0)} MB together`);
  }
  const problems = [
    ...(r.failover?.problems ?? []),
    ...(r.agents?.problems ?? []),
    ...Object.entries(r.failed).map(([k, v]) => `${k}: the part failed: ${v}`),
  ];
  lines.push('', problems.length ? `Problems:\n${problems.map((p) => `  - ${p}`).join('\n')}` : 'Problems: none seen.', '');
  return lines.join('\n');
}
