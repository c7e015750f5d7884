// Issue 14, "single-node restart": a control plane holding N agents'
// sessions is killed (SIGKILL: a crash) or stopped (SIGTERM: an upgrade) and
// started again on the same port and data directory, as a supervisor would.
// Timed: from the signal to every agent's session CONNECTED again (resumed,
// the same session ids), with the new process's own start-up inside it.
// The agents are simulated (bench/agentSim.ts) with the agent's resume
// policy: back off at most 4 s with a session to resume; after a drain,
// come back after the delay the control plane gave.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { SessionState } from '../protocol';
import { CMDOP_ENV, ControlPlaneProcess, startControlPlaneProcess } from './cmdopCluster';
import { SIM, Sim, enrollAll } from './idleAgents';
import { simAgentName } from './agentSim';
import { ProcessSet, stop } from './procs';
import fs from 'node:fs';

export interface RestartConfig {
  agents: number;
  processes: number;
  perChannel: number;
}

export interface RestartRun {
  signal: NodeJS.Signals;
  /** Signal -> the new process listens, ms. */
  listenMs: number;
  /** Signal -> every session CONNECTED again, ms. */
  allConnectedMs: number;
  /** Sessions CONNECTED afterwards under the id they had before. */
  sameSession: number;
  /** Agents that had to register a new session instead (resume refused). */
  newSessions: number;
}

export interface RestartResult {
  cfg: RestartConfig;
  runs: RestartRun[];
}

export async function measureRestart(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: RestartConfig;
  progress: (msg: string) => void;
}): Promise<RestartResult> {
  const { dir, procs, cfg, progress } = opts;
  // The control plane itself, not a launcher in front of it: the signal must reach it.
  const env = { ...CMDOP_ENV, CMDOP_RELAUNCH: '0' };
  let cp: ControlPlaneProcess | undefined;
  const sims: Sim[] = [];
  try {
    cp = await startControlPlaneProcess(dir, procs, [], { env });
    const perProc = Math.ceil(cfg.agents / cfg.processes);
    const batches: { prefix: string; names: string[]; credentials: string }[] = [];
    for (let p = 0; p * perProc < cfg.agents; p++) {
      const names = Array.from({ length: Math.min(perProc, cfg.agents - p * perProc) }, (_, i) => simAgentName(`rs${p}`, i));
      batches.push({ prefix: `rs${p}`, names, credentials: path.join(dir, `credentials-${p}.json`) });
    }
    const { tokens } = await enrollAll(cp, batches.flatMap((b) => b.names), 32, (m) => progress(m.replace('idle agents', 'restart')));
    let at = 0;
    for (const b of batches) {
      fs.writeFileSync(b.credentials, JSON.stringify(tokens.slice(at, at + b.names.length)), { mode: 0o600 });
      at += b.names.length;
    }
    for (const b of batches) {
      const conf = { server: cp.server, count: b.names.length, perChannel: cfg.perChannel, prefix: b.prefix, heartbeatS: 30, credentials: b.credentials, resume: true };
      sims.push(new Sim(procs.spawn(process.execPath, [SIM, JSON.stringify(conf)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env })));
    }
    await Promise.all(sims.map((s) => s.next('ready', 120_000)));
    const sessionsOf = async (c: ControlPlaneProcess) => {
      const client = c.newClient();
      try {
        return new Map((await client.machines.list()).filter((m) => m.name.startsWith('rs')).map((m) => [m.name, m]));
      } finally {
        client.close();
      }
    };
    const before = await sessionsOf(cp);
    progress(`restart: ${before.size} agents registered`);
    const runs: RestartRun[] = [];
    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      const allLive = Promise.all(sims.map((s) => s.next('allLive', 60_000)));
      const stats0 = await Promise.all(sims.map((s) => s.stats()));
      const t0 = performance.now();
      await cp.kill(signal);
      cp = await startControlPlaneProcess(dir, procs, ['--listen', cp.server, '--web-listen', '127.0.0.1:0'], { env });
      const listenMs = performance.now() - t0;
      await allLive;
      const allConnectedMs = performance.now() - t0;
      const after = await sessionsOf(cp);
      let sameSession = 0;
      for (const [name, m] of after) if (m.state === SessionState.CONNECTED && m.sessionId === before.get(name)?.sessionId) sameSession++;
      const stats1 = await Promise.all(sims.map((s) => s.stats()));
      const newSessions = stats1.reduce((n, m) => n + (m.registered ?? 0), 0) - stats0.reduce((n, m) => n + (m.registered ?? 0), 0);
      runs.push({ signal, listenMs, allConnectedMs, sameSession, newSessions });
      progress(`restart: ${signal}: all ${cfg.agents} CONNECTED again after ${(allConnectedMs / 1000).toFixed(2)} s (listening after ${(listenMs / 1000).toFixed(2)} s), ${sameSession} in the same session`);
    }
    return { cfg, runs };
  } catch (e) {
    if (cp) process.stderr.write(`\ncontrol plane stderr: ${cp.log()}\n`);
    throw e;
  } finally {
    for (const s of sims) s.send({ t: 'stop' });
    await Promise.all(sims.map((s) => stop(s.proc, 2000)));
    await cp?.stop();
  }
}
