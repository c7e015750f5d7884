// The issue-3 figures ("Sessions"), run by `npm run bench` after the issue-2
// ones: reconnect -> last buffered byte, 10,000 idle agents on one control
// plane, observers on one fast terminal (issue 15's fan-outs: 100 at 2 MB/s,
// then 10 at 10 MB/s), and a restart. Each phase starts its own
// control plane (a fresh process: its CPU and memory are that phase's), in
// its own directory under the bench's temp dir, and stops it at its end.
//
// Knobs (environment), with their defaults:
//   BENCH_RECONNECT_REPS=5  BENCH_RECONNECT_BYTES=1000000
//   BENCH_AGENTS=10000  BENCH_AGENT_PROCS=4  BENCH_AGENTS_PER_CONN=100
//   BENCH_AGENT_HEARTBEAT_S=5  BENCH_AGENT_WINDOW_S=20
//   BENCH_ENROLL_CONCURRENCY=32 (agent enrollments in flight, before the clock)
//   BENCH_OBSERVERS, BENCH_OBSERVER_MBPS (unset: issue 15's two fan-outs, 100
//   observers at 2 MB/s and 10 at 10 MB/s; either set: that one)  BENCH_OBSERVER_PROCS=4
//   BENCH_OBSERVER_S=10  BENCH_OBSERVER_WARMUP_S=3  BENCH_OBSERVER_BLOCK=100000
// For digging: BENCH_AGENT_LOG=debug (the reconnect phase's in-process agent
// logs), BENCH_CP_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' (profile every
// control plane the bench starts).
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_TIMEOUTS } from '../protocol';
import { IdleAgentsConfig, IdleAgentsResult, measureIdleAgents } from './idleAgents';
import { ObserversConfig, ObserversResult, StreamRun, measureObservers } from './observers';
import { ProcessSet } from './procs';
import { ReconnectResult, measureReconnect } from './reconnect';
import { RestartConfig, RestartResult, measureRestart } from './restart';
import { median, percentile } from './stats';
import { TARGET_COLUMNS, Verdict, fmt, ratio, renderGrid, verdict, type TargetKey } from './table';

export type SessionPhase = 'reconnect' | 'agents' | 'observers' | 'restart';
export const SESSION_PHASES: SessionPhase[] = ['reconnect', 'agents', 'observers', 'restart'];

export interface SessionsConfig {
  reconnect: { reps: number; bytes: number };
  agents: IdleAgentsConfig;
  /** One stream per fan-out, each on its own control plane. */
  observers: ObserversConfig[];
  observerWarmupS: number;
  restart: RestartConfig;
}

export function sessionsConfig(envNumber: (name: string, dflt: number) => number): SessionsConfig {
  return {
    reconnect: {
      reps: Math.round(envNumber('BENCH_RECONNECT_REPS', 5)),
      bytes: Math.round(envNumber('BENCH_RECONNECT_BYTES', 1_000_000)),
    },
    agents: {
      agents: Math.round(envNumber('BENCH_AGENTS', 10_000)),
      processes: Math.round(envNumber('BENCH_AGENT_PROCS', 4)),
      perChannel: Math.round(envNumber('BENCH_AGENTS_PER_CONN', 100)),
      heartbeatS: envNumber('BENCH_AGENT_HEARTBEAT_S', 5),
      windowS: envNumber('BENCH_AGENT_WINDOW_S', 20),
      enrollConcurrency: Math.round(envNumber('BENCH_ENROLL_CONCURRENCY', 32)),
    },
    observers: fanOuts(envNumber).map(([observers, mbps]) => ({
      observers,
      processes: Math.round(envNumber('BENCH_OBSERVER_PROCS', 4)),
      rate: mbps * 1e6,
      seconds: envNumber('BENCH_OBSERVER_S', 10),
      blockBytes: Math.round(envNumber('BENCH_OBSERVER_BLOCK', 100_000)),
    })),
    // 0 is allowed here (no warm-up); envNumber wants positive numbers.
    observerWarmupS: process.env.BENCH_OBSERVER_WARMUP_S === '0' ? 0 : envNumber('BENCH_OBSERVER_WARMUP_S', 3),
    restart: {
      agents: Math.round(envNumber('BENCH_RESTART_AGENTS', 1000)),
      processes: Math.round(envNumber('BENCH_AGENT_PROCS', 4)),
      perChannel: Math.round(envNumber('BENCH_AGENTS_PER_CONN', 100)),
    },
  };
}

/** Issue 15's fan-out targets: many observers at a modest rate, a few at a fast one. */
function fanOuts(envNumber: (name: string, dflt: number) => number): [number, number][] {
  if (process.env.BENCH_OBSERVERS || process.env.BENCH_OBSERVER_MBPS) {
    return [[Math.round(envNumber('BENCH_OBSERVERS', 100)), envNumber('BENCH_OBSERVER_MBPS', 2)]];
  }
  return [
    [100, 2],
    [10, 10],
  ];
}

export interface SessionsResults {
  cfg: SessionsConfig;
  reconnect?: ReconnectResult;
  agents?: IdleAgentsResult;
  observers?: ObserversResult[];
  restart?: RestartResult;
  /** Phases that failed, with why: their rows say so, and the bench exits 1. */
  failed: Partial<Record<SessionPhase, string>>;
}

export async function runSessions(opts: {
  phases: SessionPhase[];
  cfg: SessionsConfig;
  dir: string;
  procs: ProcessSet;
  progress: (msg: string) => void;
  /** What a signal must stop besides `procs` (in-process agents), while a phase runs. */
  cleanups: Set<() => Promise<void>>;
}): Promise<SessionsResults> {
  const { phases, cfg, dir, procs, progress, cleanups } = opts;
  const r: SessionsResults = { cfg, failed: {} };
  const attempt = async (phase: SessionPhase, fn: () => Promise<void>) => {
    if (!phases.includes(phase)) return;
    try {
      await fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      r.failed[phase] = msg;
      progress(`${phase}: FAILED: ${msg}`);
    }
  };
  await attempt('reconnect', async () => {
    r.reconnect = await measureReconnect({ dir: path.join(dir, 'reconnect'), procs, progress, cleanups, ...cfg.reconnect });
  });
  await attempt('agents', async () => {
    r.agents = await measureIdleAgents({ dir: path.join(dir, 'agents'), procs, progress, cfg: cfg.agents });
  });
  await attempt('observers', async () => {
    r.observers = [];
    for (const [i, o] of cfg.observers.entries()) {
      r.observers.push(
        await measureObservers({ dir: path.join(dir, `observers-${i}`), procs, progress, cfg: o, warmupS: cfg.observerWarmupS }),
      );
    }
  });
  await attempt('restart', async () => {
    r.restart = await measureRestart({ dir: path.join(dir, 'restart'), procs, progress, cfg: cfg.restart });
  });
  return r;
}

// ---------------------------------------------------------------- report

type SRow = Record<TargetKey, string>;
const COLUMNS = TARGET_COLUMNS;

const row = (metric: string, cmdop: string, target: string, vsTarget: string, v: Verdict | 'FAILED'): SRow => ({
  metric,
  cmdop,
  target,
  vsTarget,
  verdict: v,
});
const info = (metric: string, cmdop: string): SRow => row(metric, cmdop, '(info)', '—', '');

const MB = 1e6;
const n = (x: number) => x.toLocaleString('en-US');

/** Per-observer delivered rate, MB/s: its bytes over the time from the first block written to its last byte. */
function observerRates(run: StreamRun): number[] {
  return run.observers.map((o) => o.bytes / MB / ((o.lastAt - run.written.start) / 1000));
}

function lost(run: StreamRun): { bytes: number; gaps: number; bad: number; accounted: boolean } {
  const bytes = run.observers.reduce((s, o) => s + Math.max(0, run.written.bytes - o.bytes), 0);
  const gaps = run.observers.reduce((s, o) => s + o.gaps, 0);
  const bad = run.observers.reduce((s, o) => s + o.badBytes, 0);
  const accounted = run.observers.every((o) => o.finalSeq >= 0 && o.bytes + o.gapBytes === o.finalSeq);
  return { bytes, gaps, bad, accounted };
}

export function sessionRows(r: SessionsResults): SRow[] {
  const rows: SRow[] = [];
  const failedRow = (metric: string) => row(metric, '—', '—', '—', 'FAILED');

  // 1. Reconnect -> last buffered byte.
  const rc = r.reconnect;
  const mbLabel = `${(r.cfg.reconnect.bytes / MB).toFixed(r.cfg.reconnect.bytes % MB ? 2 : 0)} MB`;
  if (rc) {
    const med = median(rc.lastByteMs);
    const max = Math.max(...rc.lastByteMs);
    rows.push(row(`reconnect -> last of ${mbLabel} buffered, median (ms)`, fmt(med), '< 100 ms', ratio(med, 100), verdict([med < 100])));
    rows.push(row(`reconnect -> last of ${mbLabel} buffered, max of ${rc.lastByteMs.length} (ms)`, fmt(max), '< 100 ms', ratio(max, 100), verdict([max < 100])));
    rows.push(info('reconnect -> session resumed, median (ms)', fmt(median(rc.resumedMs))));
  } else if (r.failed.reconnect) rows.push(failedRow(`reconnect -> last of ${mbLabel} buffered (ms)`));

  // 2. Idle agents.
  const ag = r.agents;
  const agentsLabel = n(r.cfg.agents.agents);
  if (ag) {
    for (const w of ag.windows) {
      const rate = Math.round(w.heartbeatsPerS).toLocaleString('en-US');
      const dflt = w.heartbeatS === DEFAULT_TIMEOUTS.heartbeatIntervalS ? ', default' : '';
      rows.push(
        row(
          `${agentsLabel} idle agents: control-plane CPU, heartbeat ${w.heartbeatS} s${dflt} (${rate}/s) (% of a core)`,
          fmt(w.cpuPercent),
          '< 25 %',
          ratio(w.cpuPercent, 25),
          verdict([w.cpuPercent < 25]),
        ),
      );
    }
    const rss = Math.max(...ag.windows.map((w) => w.rssMaxMb));
    rows.push(row(`${agentsLabel} idle agents: control-plane RSS max (MB)`, fmt(rss), '< 1000 MB', ratio(rss, 1000), verdict([rss < 1000])));
    rows.push(info(`${agentsLabel} idle agents: all registered after (s)`, fmt(ag.registerMs / 1000)));
    rows.push(info(`${agentsLabel} idle agents: enrolled first, not timed above (s)`, fmt(ag.enrollment.ms / 1000)));
  } else if (r.failed.agents) rows.push(failedRow(`${agentsLabel} idle agents`));

  // 3. Observers, one stream per fan-out.
  for (const ob of r.observers ?? []) {
    const obsLabel = `${ob.cfg.observers} observers at ${fmt(ob.cfg.rate / MB)} MB/s`;
    const run = ob.run;
    const target = ob.cfg.rate / MB;
    const rates = observerRates(run);
    const med = median(rates);
    rows.push(row(`${obsLabel}: delivered to each, median (MB/s)`, fmt(med), `≥ ${fmt(target)} MB/s`, ratio(med, target), verdict([med >= 0.98 * target])));
    const l = lost(run);
    rows.push(
      row(
        `${obsLabel}: bytes lost (gaps told)`,
        `${n(l.bytes)} (${l.gaps})`,
        '0, byte-exact',
        '—',
        verdict([l.bytes === 0 && l.bad === 0 && l.accounted]),
      ),
    );
    const p50 = percentile(run.lags, 50);
    const p99 = percentile(run.lags, 99);
    rows.push(row(`${obsLabel}: lag p50 (ms)`, fmt(p50), '(info)', '—', ''));
    rows.push(row(`${obsLabel}: lag p99 (ms)`, fmt(p99), '< 100 ms', ratio(p99, 100), verdict([p99 < 100])));
    rows.push(info(`${obsLabel}: rate the writer achieved (MB/s)`, fmt(run.written.bytes / MB / (run.written.ms / 1000))));
    rows.push(info(`${obsLabel}: delivered, all together (MB/s)`, fmt(run.observers.reduce((s, o) => s + o.bytes, 0) / MB / (run.deliveryMs / 1000))));
    const cp = run.cpu['control plane'];
    rows.push(info(`${obsLabel}: control-plane CPU (% of a core)`, fmt((cp / run.wallS) * 100)));
  }
  if (r.failed.observers) rows.push(failedRow('observers'));

  // 4. A control-plane restart (issue 14).
  const rs = r.restart;
  const rsLabel = `${n(r.cfg.restart.agents)} sessions`;
  if (rs) {
    for (const run of rs.runs) {
      const sec = run.allConnectedMs / 1000;
      const all = run.sameSession === r.cfg.restart.agents && run.newSessions === 0;
      rows.push(row(`${rsLabel}: ${run.signal} + restart -> all CONNECTED in the same session (s)`, fmt(sec), '< 5 s', ratio(sec, 5), verdict([sec < 5, all])));
      rows.push(info(`${rsLabel}: ${run.signal} + restart -> listening again (s)`, fmt(run.listenMs / 1000)));
    }
  } else if (r.failed.restart) rows.push(failedRow(`${rsLabel}: restart`));
  return rows;
}

function reconnectDetails(rc: ReconnectResult): string[] {
  const s = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(' ');
  return [
    `  reconnect (${rc.bytes} bytes buffered by the agent while cut off, ${rc.lastByteMs.length} runs):`,
    `    unblock + resume -> last byte at the client, ms: ${s(rc.lastByteMs)}`,
    `    unblock + resume -> session resumed, ms:         ${s(rc.resumedMs)}`,
  ];
}

function agentsDetails(ag: IdleAgentsResult): string[] {
  const c = ag.cfg;
  const perAgentKb = ((ag.rssAfterRegisterMb - ag.rssIdleMb) * 1e6) / 1024 / c.agents;
  const e = ag.enrollment;
  const regCpuS = (ag.registerCpuPercent / 100) * (ag.registerMs / 1000);
  const lines = [
    `  idle agents: ${n(c.agents)} simulated agents (bench/agentSim.ts) in ${c.processes} processes, ${c.perChannel} streams ` +
      `per connection (${n(ag.connections)} TCP connections); each registers, then heartbeats`,
    `    enrollment (before the clock, then a control-plane restart): ${(e.ms / 1000).toFixed(1)} s for all ` +
      `(${Math.round(c.agents / (e.ms / 1000))}/s, ${c.enrollConcurrency} in flight, 2 calls each), control plane at ` +
      `${e.cpuPercent.toFixed(0)} % of a core; ${Math.round(e.firstRate)}/s over the first 10 %, ${Math.round(e.lastRate)}/s over the last 10 %`,
    `    registration: ${(ag.registerMs / 1000).toFixed(1)} s for all (${Math.round(c.agents / (ag.registerMs / 1000))}/s), ` +
      `control plane at ${ag.registerCpuPercent.toFixed(0)} % of a core meanwhile ` +
      `(${regCpuS.toFixed(1)} CPU-s, ${((regCpuS / c.agents) * 1e6).toFixed(0)} µs per agent: steadier than the wall time on a busy machine); ` +
      `${ag.registerRetries} stream(s) retried`,
    `    CONNECTED: ${n(ag.connectedBefore)} after registration, ${n(ag.connectedAfter)} after the windows`,
    `    control-plane RSS: ${ag.rssIdleMb.toFixed(0)} MB before any agent, ${ag.rssAfterRegisterMb.toFixed(0)} MB with all ` +
      `(~${perAgentKb.toFixed(1)} KiB per agent)`,
  ];
  for (const w of ag.windows) {
    lines.push(
      `    ${c.windowS} s window, heartbeat every ${w.heartbeatS} s (${Math.round(w.heartbeatsPerS)}/s sent): control plane ` +
        `${w.cpuPercent.toFixed(1)} % of a core, RSS max ${w.rssMaxMb.toFixed(0)} MB; simulators ${w.simCpuPercent.toFixed(0)} % together`,
    );
  }
  lines.push(`    simulators' RSS at the end: ${ag.simRssMb.toFixed(0)} MB together`);
  return lines;
}

function streamDetails(label: string, run: StreamRun, cfg: ObserversConfig): string[] {
  const rates = observerRates(run);
  const l = lost(run);
  const q = (xs: number[], p: number) => percentile(xs, p).toFixed(1);
  const cpuTotal = Object.values(run.cpu).reduce((s, x) => s + x, 0);
  const cpu = Object.entries(run.cpu)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
    .join(', ');
  const cp = run.cpu['control plane'];
  const delivered = run.observers.reduce((s, o) => s + o.bytes, 0);
  const perGb = cp / (delivered / 1e9);
  const writtenRate = run.written.bytes / MB / (run.written.ms / 1000);
  const out = [
    `  ${label}: ${run.written.blocks} blocks of ${cfg.blockBytes} bytes (${(run.written.bytes / MB).toFixed(0)} MB) written in ` +
      `${(run.written.ms / 1000).toFixed(1)} s (schedule: ${run.seconds} s; at worst ${(run.written.maxBehindMs / 1000).toFixed(1)} s behind it)`,
    `    each observer: min ${fmt(Math.min(...rates))} / median ${fmt(median(rates))} / max ${fmt(Math.max(...rates))} MB/s; ` +
      `lost ${n(l.bytes)} bytes in ${l.gaps} gap(s); ${l.bad} bytes unlike those written; ` +
      `received + gaps = written for ${l.accounted ? 'every' : 'NOT every'} observer`,
    `    lag (receive − write time of each block's last byte): p50 ${q(run.lags, 50)} p90 ${q(run.lags, 90)} ` +
      `p99 ${q(run.lags, 99)} max ${q(run.lags, 100)} ms over ${n(run.lags.length)} blocks; ` +
      `operator: p50 ${q(run.operator.lags, 50)} p99 ${q(run.operator.lags, 99)} ms, ${n(run.operator.bytes)} bytes`,
    `    CPU over ${run.wallS.toFixed(1)} s (${(cpuTotal / run.wallS).toFixed(2)} of ${os.availableParallelism()} cores busy): ${cpu}`,
    `    control plane: ${((cp / run.wallS) * 100).toFixed(0)} % of a core (${((run.controlPlaneSystemS / cp) * 100).toFixed(0)} % of it in the kernel), ` +
      `${perGb.toFixed(2)} CPU-s per GB delivered; RSS max ${run.controlPlaneRssMaxMb.toFixed(0)} MB`,
    `    at that cost, ${cfg.observers} × ${fmt(cfg.rate / MB)} MB/s needs ${(perGb * ((cfg.observers * cfg.rate) / 1e9)).toFixed(2)} cores ` +
      'of control plane alone (its event loop is one thread)',
  ];
  if (writtenRate < 0.98 * (cfg.rate / MB)) {
    out.push(
      `    the writer managed ${fmt(writtenRate)} of ${fmt(cfg.rate / MB)} MB/s: the operator paces the terminal (the agent stops reading`,
      '    once its window of unacknowledged output is full), and it was only as fast as the busy machine let it be;',
      l.gaps === 0
        ? '    observers never pace; these kept up with that rate'
        : `    observers never pace; ${l.gaps} time(s) one fell behind the control plane's buffer and was told what it skipped`,
    );
  }
  return out;
}

export function sessionsReport(r: SessionsResults): string {
  const rows = sessionRows(r);
  const lines = ['', 'Sessions (issues 3 and 14)', '', renderGrid(COLUMNS, rows), '', 'How to read it:'];
  if (r.reconnect || r.failed.reconnect) {
    lines.push(
      '  - reconnect: an in-process agent reaches a control plane (child process) through a TCP proxy; the proxy',
      `    is blocked, then a command writes ${n(r.cfg.reconnect.bytes)} bytes, which the agent buffers; timed from`,
      '    `proxy.unblock(); agent.resume()` to the last byte counted by an SDK client (execute(), no PTY) attached',
      '    straight to the control plane. The agent, the proxy and the client share the bench process.',
    );
  }
  if (r.agents || r.failed.agents) {
    const a = r.cfg.agents;
    lines.push(
      `  - idle agents: real AgentService.Connect streams, each with its own agent credential (enrolled beforehand, on a`,
      '    control plane then restarted), that register, then heartbeat; CPU is utime + stime of the',
      `    control plane from /proc over ${a.windowS} s with every agent CONNECTED, first at a heartbeat every ${a.heartbeatS} s,`,
      `    then every ${DEFAULT_TIMEOUTS.heartbeatIntervalS} s (the default). ${a.perChannel} agents share each TCP connection`,
      '    (BENCH_AGENTS_PER_CONN=1 gives each its own: more sockets and memory, and a slower mass registration).',
    );
  }
  if (r.observers || r.failed.observers) {
    const o = r.cfg.observers[0];
    const fans = r.cfg.observers.map((x) => `${x.observers} observers at ${fmt(x.rate / MB)} MB/s`).join(', then ');
    lines.push(
      `  - observers (${fans}, each on a control plane of its own): an exec terminal (no PTY) runs a writer of ${o.blockBytes}-byte blocks paced, each`,
      '    stamped with its number and write time; the operator is execute() in the bench process (it paces the',
      `    terminal), the observers attach from offset 0 in ${o.processes} processes, each on its own connection, and check`,
      '    every byte. Lag: receive time of a block\'s last byte − its write time (same machine, same clock).',
      `    The figures are of a second stream, after a ${r.cfg.observerWarmupS} s warm-up stream on the same processes.`,
      '    Everything (control plane, agent, writer, operator, observers) shares this machine\'s cores.',
    );
  }
  if (r.restart || r.failed.restart) {
    lines.push(
      `  - restart: ${n(r.cfg.restart.agents)} simulated agents (bench/agentSim.ts, the agent's resume policy) hold sessions on a`,
      '    control plane that is killed (SIGKILL) or stopped (SIGTERM: it drains) and started again on the same port and',
      '    data dir; timed from the signal to every agent resumed, its session CONNECTED under the id it had before.',
    );
  }
  lines.push('', 'Details:');
  if (r.reconnect) lines.push(...reconnectDetails(r.reconnect));
  if (r.agents) lines.push(...agentsDetails(r.agents));
  if (r.restart) {
    for (const run of r.restart.runs) {
      lines.push(
        `  restart, ${run.signal}: listening again after ${(run.listenMs / 1000).toFixed(2)} s, all CONNECTED after ${(run.allConnectedMs / 1000).toFixed(2)} s; ` +
          `${run.sameSession} in the session they had, ${run.newSessions} registered anew`,
      );
    }
  }
  for (const ob of r.observers ?? []) {
    const label = `${ob.cfg.observers} observers at ${fmt(ob.cfg.rate / MB)} MB/s`;
    if (ob.warmup) lines.push(...streamDetails(`${label}, warm-up stream (cold processes)`, ob.warmup, ob.cfg));
    lines.push(...streamDetails(`${label}, measured stream`, ob.run, ob.cfg));
  }
  const problems = [
    ...(r.reconnect?.problems ?? []),
    ...(r.agents?.problems ?? []),
    ...(r.observers ?? []).flatMap((o) => o.problems),
    ...Object.entries(r.failed).map(([k, v]) => `${k}: the phase failed: ${v}`),
  ];
  lines.push('', problems.length ? `Problems:\n${problems.map((p) => `  - ${p}`).join('\n')}` : 'Problems: none seen.', '');
  return lines.join('\n');
}
