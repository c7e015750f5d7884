// Issue 3, figure 2: a control plane holding the streams of 10,000 idle
// agents. The agents are simulated (bench/agentSim.ts) in a few child
// processes, each agent a real AgentService.Connect stream that registers and
// then only sends heartbeats. Once every one is registered and CONNECTED, the
// control plane's CPU (utime + stime from /proc) and RSS are sampled over a
// window, first with a short heartbeat interval (the harder case), then
// with the default interval of 30 s.
//
// Every agent needs its own credential, bound to its name. Before anything
// is timed, the bench enrolls them all the documented way (the admin creates
// a one-time enrollment token per machine, which is spent for the agent's
// credential), many calls in flight at once. That happens on a first control-
// plane process, which is then restarted on the same data dir: the figures
// are those of a fresh control plane whose agents are already enrolled (as
// before auth, when it was fresh too), and the registration still measures
// registration (now with each stream's token check and audit row in it).
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_TIMEOUTS, SessionState } from '../protocol';
import type { CmdopClient } from '../sdk';
import { CMDOP_ENV, ControlPlaneProcess, startControlPlaneProcess } from './cmdopCluster';
import { simAgentName } from './agentSim';
import { cpuSeconds, rssMb, sampleRss } from './procfs';
import { ProcessSet, Tail, sleep, stop } from './procs';

export interface IdleAgentsConfig {
  agents: number;
  processes: number;
  perChannel: number;
  /** The short heartbeat interval of the first window, s. */
  heartbeatS: number;
  windowS: number;
  /** Enrollments in flight at once, before the clock starts. */
  enrollConcurrency: number;
}

export interface EnrollmentResult {
  /** Every agent's enrollment (2 calls each: CreateEnrollment, then EnrollAgent), ms. */
  ms: number;
  /** Control-plane CPU during it, % of one core. */
  cpuPercent: number;
  /** The enrollment rate over the first and the last 10 % of the agents, per second (a slowdown as the tables grow). */
  firstRate: number;
  lastRate: number;
}

export interface IdleWindow {
  heartbeatS: number;
  /** Heartbeats the simulators sent during the window, per second. */
  heartbeatsPerS: number;
  /** Control-plane CPU over the window, % of one core. */
  cpuPercent: number;
  rssMaxMb: number;
  /** The simulators' CPU over the window, % of one core, all of them together. */
  simCpuPercent: number;
}

export interface IdleAgentsResult {
  cfg: IdleAgentsConfig;
  enrollment: EnrollmentResult;
  connections: number;
  /** Spawn of the simulators -> every agent registered, ms. */
  registerMs: number;
  /** Streams that failed before registering and were retried (a listen backlog overflowing). */
  registerRetries: number;
  /** Control-plane CPU during the registration, % of one core. */
  registerCpuPercent: number;
  connectedBefore: number;
  connectedAfter: number;
  rssIdleMb: number;
  rssAfterRegisterMb: number;
  windows: IdleWindow[];
  simRssMb: number;
  problems: string[];
}

/** dist/bench/agentSim.js, next to this file once compiled. */
export const SIM = path.join(__dirname, 'agentSim.js');

export interface SimMsg {
  t: string;
  registered?: number;
  refused?: number;
  lost?: number;
  heartbeats?: number;
  retries?: number;
  resumed?: number;
  live?: number;
}

export class Sim {
  readonly log = new Tail();
  private waiters: ((m: SimMsg) => void)[] = [];
  last: SimMsg = { t: 'none', registered: 0 };
  exited = false;
  constructor(readonly proc: ChildProcess) {
    proc.stderr!.on('data', (d: Buffer) => this.log.push(d));
    proc.stdout!.resume();
    proc.on('message', (m: SimMsg) => {
      if (m.t === 'progress' || m.t === 'ready') this.last = m;
      for (const w of this.waiters.splice(0)) w(m);
    });
    proc.once('exit', () => (this.exited = true));
  }
  next(t: string, timeoutMs: number): Promise<SimMsg> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        reject(new Error(`agent simulator ${this.proc.pid} exited (${code}) waiting for '${t}'; stderr: ${this.log}`));
      };
      const timer = setTimeout(() => {
        this.proc.off('exit', onExit);
        reject(new Error(`agent simulator ${this.proc.pid}: no '${t}' within ${timeoutMs} ms; stderr: ${this.log}`));
      }, timeoutMs);
      const w = (m: SimMsg) => {
        if (m.t !== t) return void this.waiters.push(w);
        clearTimeout(timer);
        this.proc.off('exit', onExit);
        resolve(m);
      };
      this.waiters.push(w);
      this.proc.once('exit', onExit);
    });
  }
  send(m: object): void {
    if (!this.exited) this.proc.send(m);
  }
  async stats(): Promise<SimMsg> {
    const p = this.next('stats', 10_000);
    this.send({ t: 'stats' });
    return p;
  }
}

/** The soft limit on open files of this process (children inherit it). */
function openFilesLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

async function countConnected(client: CmdopClient, prefix: string): Promise<number> {
  const machines = await client.machines.list();
  return machines.filter((m) => m.name.startsWith(prefix) && m.state === SessionState.CONNECTED).length;
}

export async function measureIdleAgents(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: IdleAgentsConfig;
  progress: (msg: string) => void;
}): Promise<IdleAgentsResult> {
  const { dir, procs, cfg, progress } = opts;
  const problems: string[] = [];
  const connections = Math.ceil(cfg.agents / cfg.perChannel);
  const perProc = Math.ceil(cfg.agents / cfg.processes);
  const fdNeed = Math.max(connections, Math.ceil(perProc / cfg.perChannel)) + 200;
  const fdLimit = openFilesLimit();
  if (fdNeed > fdLimit) {
    throw new Error(
      `${cfg.agents} agents over ${connections} connections need about ${fdNeed} open files; the limit is ${fdLimit} ` +
        '(raise `ulimit -n`, or BENCH_AGENTS_PER_CONN)',
    );
  }

  let cp: ControlPlaneProcess | undefined;
  let client: CmdopClient | undefined;
  const sims: Sim[] = [];
  try {
    progress(
      `idle agents: ${cfg.agents} agents in ${cfg.processes} processes, ${cfg.perChannel} streams per connection ` +
        `(${connections} connections), heartbeat every ${cfg.heartbeatS} s`,
    );
    // The heartbeat interval the control plane hands out matches the one simulated;
    // its timeout stays the default (60 s), far above both intervals.
    const serverArgs = ['--heartbeat-interval', String(cfg.heartbeatS)];
    const prefix = 'sim';
    const batches: { prefix: string; names: string[]; credentials: string }[] = [];
    for (let p = 0; p < cfg.processes; p++) {
      const count = Math.min(perProc, cfg.agents - p * perProc);
      if (count <= 0) break;
      const names = Array.from({ length: count }, (_, i) => simAgentName(`${prefix}${p}`, i));
      batches.push({ prefix: `${prefix}${p}`, names, credentials: path.join(dir, `credentials-${p}.json`) });
    }

    // Not timed as registration: every agent's credential, on a first control-plane process.
    cp = await startControlPlaneProcess(dir, procs, serverArgs);
    const names = batches.flatMap((b) => b.names);
    const { tokens, result: enrollment } = await enrollAll(cp, names, cfg.enrollConcurrency, progress);
    let at = 0;
    for (const b of batches) {
      fs.writeFileSync(b.credentials, JSON.stringify(tokens.slice(at, at + b.names.length)), { mode: 0o600 });
      at += b.names.length;
    }
    progress(`idle agents: restarting the control plane on the same data dir (fresh process, ${names.length} agents enrolled)`);
    await cp.stop();
    cp = await startControlPlaneProcess(dir, procs, serverArgs);

    client = cp.newClient();
    await sleep(500);
    const rssIdleMb = rssMb(cp.pid);

    const cpu0 = cpuSeconds(cp.pid);
    const t0 = performance.now();
    for (const b of batches) {
      const conf = {
        server: cp.server,
        count: b.names.length,
        perChannel: cfg.perChannel,
        prefix: b.prefix,
        heartbeatS: cfg.heartbeatS,
        credentials: b.credentials,
      };
      const proc = procs.spawn(process.execPath, [SIM, JSON.stringify(conf)], {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: CMDOP_ENV,
      });
      sims.push(new Sim(proc));
    }
    const progressTimer = setInterval(() => {
      const n = sims.reduce((s, x) => s + (x.last.registered ?? 0), 0);
      progress(`idle agents: ${n} of ${cfg.agents} registered`);
    }, 5000);
    let ready: SimMsg[];
    try {
      ready = await Promise.all(sims.map((s) => s.next('ready', 120_000)));
    } finally {
      clearInterval(progressTimer);
    }
    const registerMs = performance.now() - t0;
    const registerCpuPercent = ((cpuSeconds(cp.pid) - cpu0) / (registerMs / 1000)) * 100;
    const registered = ready.reduce((s, m) => s + (m.registered ?? 0), 0);
    const refused = ready.reduce((s, m) => s + (m.refused ?? 0), 0);
    const registerRetries = ready.reduce((s, m) => s + (m.retries ?? 0), 0);
    if (refused) problems.push(`idle agents: ${refused} registrations were refused`);
    progress(`idle agents: ${registered} registered in ${(registerMs / 1000).toFixed(1)} s`);

    const connectedBefore = await countConnected(client, prefix);
    if (connectedBefore !== cfg.agents) problems.push(`idle agents: ${connectedBefore} of ${cfg.agents} CONNECTED after registration`);
    await sleep(2000); // let the registration's garbage settle
    const rssAfterRegisterMb = rssMb(cp.pid);

    const windows: IdleWindow[] = [];
    for (const hb of [cfg.heartbeatS, DEFAULT_TIMEOUTS.heartbeatIntervalS]) {
      if (windows.length > 0) {
        for (const s of sims) s.send({ t: 'interval', s: hb });
        await sleep(2000); // beats of the old interval are out of the way
      }
      progress(`idle agents: sampling the control plane for ${cfg.windowS} s, heartbeat every ${hb} s`);
      const beats0 = (await Promise.all(sims.map((s) => s.stats()))).reduce((s, m) => s + (m.heartbeats ?? 0), 0);
      const simPids = sims.map((s) => s.proc.pid!);
      const simCpu0 = simPids.reduce((s, p) => s + cpuSeconds(p), 0);
      const c0 = cpuSeconds(cp.pid);
      const w0 = performance.now();
      const rss = sampleRss([cp.pid], 500);
      await sleep(cfg.windowS * 1000);
      const c1 = cpuSeconds(cp.pid);
      const w1 = performance.now();
      const simCpu1 = simPids.reduce((s, p) => s + cpuSeconds(p), 0);
      const rssMax = rss.stop().get(cp.pid)!;
      const beats1 = (await Promise.all(sims.map((s) => s.stats()))).reduce((s, m) => s + (m.heartbeats ?? 0), 0);
      const secs = (w1 - w0) / 1000;
      windows.push({
        heartbeatS: hb,
        heartbeatsPerS: (beats1 - beats0) / secs,
        cpuPercent: ((c1 - c0) / secs) * 100,
        rssMaxMb: rssMax,
        simCpuPercent: ((simCpu1 - simCpu0) / secs) * 100,
      });
    }

    const connectedAfter = await countConnected(client, prefix);
    if (connectedAfter !== cfg.agents) problems.push(`idle agents: ${connectedAfter} of ${cfg.agents} still CONNECTED after the windows`);
    const stats = await Promise.all(sims.map((s) => s.stats()));
    const lost = stats.reduce((s, m) => s + (m.lost ?? 0), 0);
    if (lost) problems.push(`idle agents: ${lost} agent streams ended or failed during the run`);
    const simRssMb = sims.reduce((s, x) => s + (rssMb(x.proc.pid!) || 0), 0);

    return {
      cfg,
      enrollment,
      connections,
      registerMs,
      registerRetries,
      registerCpuPercent,
      connectedBefore,
      connectedAfter,
      rssIdleMb,
      rssAfterRegisterMb,
      windows,
      simRssMb,
      problems,
    };
  } catch (e) {
    if (cp) process.stderr.write(`\ncontrol plane stderr: ${cp.log()}\n`);
    throw e;
  } finally {
    client?.close();
    for (const s of sims) s.send({ t: 'stop' });
    await Promise.all(sims.map((s) => stop(s.proc, 2000)));
    await cp?.stop();
  }
}

/**
 * Enrolls every name the documented way, `concurrency` enrollments in flight:
 * the admin's CreateEnrollment, then EnrollAgent with the one-time token it
 * returned. Resolves with each name's agent credential, in order.
 */
export async function enrollAll(
  cp: ControlPlaneProcess,
  names: string[],
  concurrency: number,
  progress: (msg: string) => void,
): Promise<{ tokens: string[]; result: EnrollmentResult }> {
  progress(`idle agents: enrolling ${names.length} agents (${concurrency} at a time; not part of the registration time)`);
  const admin = cp.newClient();
  const tokens = new Array<string>(names.length);
  const doneAt = new Array<number>(names.length);
  let next = 0;
  let done = 0;
  const cpu0 = cpuSeconds(cp.pid);
  const t0 = performance.now();
  const timer = setInterval(() => progress(`idle agents: ${done} of ${names.length} enrolled`), 5000);
  const worker = async () => {
    // The enrollment token is this client's token for one call at a time.
    const spender = cp.newClient({ token: '' });
    try {
      while (next < names.length) {
        const i = next++;
        const enroll = await admin.auth.createEnrollment(names[i]);
        spender.setToken(enroll.token);
        tokens[i] = (await spender.auth.enrollAgent()).token;
        doneAt[done++] = performance.now();
      }
    } finally {
      spender.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
  } finally {
    clearInterval(timer);
    admin.close();
  }
  const ms = performance.now() - t0;
  const cpuPercent = ((cpuSeconds(cp.pid) - cpu0) / (ms / 1000)) * 100;
  const tenth = Math.max(1, Math.floor(names.length / 10));
  const rate = (from: number, to: number, n: number) => (n / Math.max(1e-3, to - from)) * 1000;
  const firstRate = rate(t0, doneAt[tenth - 1], tenth);
  const lastRate = rate(doneAt[names.length - tenth - 1] ?? t0, doneAt[names.length - 1], tenth);
  progress(`idle agents: ${names.length} enrolled in ${(ms / 1000).toFixed(1)} s`);
  return { tokens, result: { ms, cpuPercent, firstRate, lastRate } };
}
