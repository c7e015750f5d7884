// Issue 3, figure 3: many observers on one terminal that streams fast.
//
// A control plane and an agent (child processes); an SDK operator in this
// process runs `execute()` of pacedWriter.js, which waits for a flag file and
// then writes self-describing blocks at a set rate (streamFormat.ts). Before
// the flag is set, the observers attach (OBSERVER, from offset 0) from a few
// child processes (observerSim.ts), each on its own connection. Every
// observer checks every byte it gets and the lag of every block (receive
// time − the write time in its header; one machine, one clock); the
// operator counts what it gets. CPU time of every process is read from /proc
// around the stream, to say where the CPU went.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { CmdopClient } from '../sdk';
import { CMDOP_ENV, CmdopCluster, startCmdop } from './cmdopCluster';
import type { ObserverReport } from './observerSim';
import { cpuSeconds, cpuTimes, sampleRss } from './procfs';
import { ProcessSet, Tail, stop } from './procs';
import { StreamChecker, now } from './streamFormat';
import { until } from './reconnect';

export interface ObserversConfig {
  observers: number;
  processes: number;
  /** Producer rate, bytes/s. */
  rate: number;
  seconds: number;
  blockBytes: number;
}

export interface StreamRun {
  seconds: number;
  /** What the producer wrote. */
  written: { blocks: number; bytes: number; start: number; ms: number; cpuS: number; maxBehindMs: number };
  /** The operator (execute() in this process): bytes, bytes unlike those written, lag per block, ms. */
  operator: { bytes: number; badBytes: number; lags: number[]; gaps: number; exitCode: number; ms: number };
  observers: ObserverReport[];
  /** Lag of every block every observer got whole, ms. */
  lags: number[];
  /** From the first block written to the last observer's last byte, ms. */
  deliveryMs: number;
  /** CPU seconds per process over the stream (flag set -> every observer done). */
  cpu: Record<string, number>;
  /** The control plane's share of that in the kernel (socket writes), s. */
  controlPlaneSystemS: number;
  wallS: number;
  controlPlaneRssMaxMb: number;
}

export interface ObserversResult {
  cfg: ObserversConfig;
  /** The same stream for a few seconds first, on the cold processes (JIT, windows); not the figure. */
  warmup: StreamRun | undefined;
  run: StreamRun;
  problems: string[];
}

const WRITER = path.join(__dirname, 'pacedWriter.js');
const OBSERVER = path.join(__dirname, 'observerSim.js');
const MACHINE = 'observe-bench';

interface ObsMsg {
  t: string;
  terminalId?: string;
  observers?: ObserverReport[];
  lags?: number[];
}

interface ObserverProc {
  proc: ChildProcess;
  log: Tail;
}

function nextMessage(c: ObserverProc, t: string, terminalId: string | undefined, timeoutMs: number): Promise<ObsMsg> {
  const { proc, log } = c;
  return new Promise((resolve, reject) => {
    const onMsg = (m: ObsMsg) => {
      if (m.t !== t || m.terminalId !== terminalId) return;
      cleanup();
      resolve(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`observer process ${proc.pid} exited (${code}) before '${t}'; stderr: ${log}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`observer process ${proc.pid}: no '${t}' within ${timeoutMs} ms; stderr: ${log}`));
    }, timeoutMs);
    function cleanup() {
      clearTimeout(timer);
      proc.off('message', onMsg);
      proc.off('exit', onExit);
    }
    proc.on('message', onMsg);
    proc.once('exit', onExit);
  });
}

export async function measureObservers(opts: {
  dir: string;
  procs: ProcessSet;
  cfg: ObserversConfig;
  /** Seconds of the same stream before the measured one; 0: none. */
  warmupS: number;
  progress: (msg: string) => void;
}): Promise<ObserversResult> {
  const { dir, procs, cfg, progress } = opts;
  const problems: string[] = [];
  let cmdop: CmdopCluster | undefined;
  let client: CmdopClient | undefined;
  const children: ObserverProc[] = [];
  try {
    progress(
      `observers: ${cfg.observers} observers in ${cfg.processes} processes on one terminal writing ` +
        `${(cfg.rate / 1e6).toFixed(1)} MB/s for ${cfg.seconds} s` + (opts.warmupS ? ` (after a ${opts.warmupS} s warm-up stream)` : ''),
    );
    cmdop = await startCmdop(dir, procs, MACHINE);
    client = cmdop.newClient({ machine: MACHINE });
    const per = Math.ceil(cfg.observers / cfg.processes);
    for (let p = 0; p < cfg.processes; p++) {
      const count = Math.min(per, cfg.observers - p * per);
      if (count <= 0) break;
      // The observers sign in as the admin too (a bearer token on each attach stream).
      const conf = { server: cmdop.server, token: cmdop.token, machine: MACHINE, count, blockBytes: cfg.blockBytes };
      const proc = procs.spawn(process.execPath, [OBSERVER, JSON.stringify(conf)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: CMDOP_ENV });
      const c = { proc, log: new Tail() };
      proc.stderr!.on('data', (d: Buffer) => c.log.push(d));
      proc.stdout!.resume();
      const ready = nextMessage(c, 'ready', undefined, 20_000);
      children.push(c);
      await ready;
    }
    const ctx = { dir, cfg, cmdop, client, children, problems, progress };
    const warmup = opts.warmupS > 0 ? await stream(ctx, 'warm-up', opts.warmupS) : undefined;
    const run = await stream(ctx, 'measured', cfg.seconds);
    return { cfg, warmup, run, problems };
  } catch (e) {
    if (cmdop) process.stderr.write(`\n${cmdop.logs()}\n`);
    throw e;
  } finally {
    client?.close();
    await Promise.all(children.map((c) => stop(c.proc, 2000)));
    await cmdop?.stop();
  }
}

async function stream(
  ctx: {
    dir: string;
    cfg: ObserversConfig;
    cmdop: CmdopCluster;
    client: CmdopClient;
    children: ObserverProc[];
    problems: string[];
    progress: (msg: string) => void;
  },
  label: string,
  seconds: number,
): Promise<StreamRun> {
  const { dir, cfg, cmdop, client, children, problems } = ctx;
  const flag = path.join(dir, `go-${label}`);
  const summary = path.join(dir, `writer-${label}.json`);
  const cmd = `exec '${process.execPath}' '${WRITER}' '${flag}' '${summary}' ${cfg.blockBytes} ${cfg.rate} ${seconds}`;

  // The operator checks its bytes and times its blocks like the observers do.
  const opCheck = new StreamChecker(cfg.blockBytes);
  let opLastAt = 0;
  const run = client.terminal.execute(cmd, {
    onOutput: (d) => {
      opCheck.add(opCheck.bytes, d, now());
      opLastAt = performance.now();
    },
  });
  run.catch(() => {});
  let terminalId = '';
  await until(async () => {
    const t = (await client.terminal.list()).find((x) => x.spec?.shellCommand === cmd && x.operators > 0);
    terminalId = t?.terminalId ?? '';
    return terminalId !== '';
  }, 'the operator to be attached', 15_000, 20);

  const attached = children.map((c) => nextMessage(c, 'attached', terminalId, 60_000));
  for (const c of children) c.proc.send({ t: 'watch', terminalId });
  await Promise.all(attached);
  // Set up before the flag: the reports come once every observer has the exit.
  const reports = children.map((c) => nextMessage(c, 'done', terminalId, (seconds + 120) * 1000));
  reports.forEach((r) => r.catch(() => {}));
  const info = (await client.terminal.list()).find((t) => t.terminalId === terminalId);
  if (info?.observers !== cfg.observers) {
    problems.push(`observers (${label}): the control plane lists ${info?.observers} observers, not ${cfg.observers}`);
  }

  const pids: Record<string, number> = { 'control plane': cmdop.controlPlanePid, agent: cmdop.agentPid };
  children.forEach((c, i) => (pids[`observers ${i + 1}`] = c.proc.pid!));
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const cpSys0 = cpuTimes(cmdop.controlPlanePid).system;
  const self0 = process.cpuUsage();
  const rss = sampleRss([cmdop.controlPlanePid], 200);
  const t0 = performance.now();
  fs.writeFileSync(flag, '');
  ctx.progress(`observers: ${label} stream, ${seconds} s`);

  // Observers that fall behind still end: the stream is bounded, and they are told what they skipped.
  const op = await run;
  const got = await Promise.all(reports);
  const t1 = performance.now();
  const cpu: Record<string, number> = {};
  for (const [k, p] of Object.entries(pids)) cpu[k] = cpuSeconds(p) - cpu0[k];
  const controlPlaneSystemS = cpuTimes(cmdop.controlPlanePid).system - cpSys0;
  const self = process.cpuUsage(self0);
  cpu['operator (bench process)'] = (self.user + self.system) / 1e6;
  const controlPlaneRssMaxMb = rss.stop().get(cmdop.controlPlanePid)!;

  const w = JSON.parse(fs.readFileSync(summary, 'utf8')) as {
    blocks: number; bytes: number; start: number; end: number; cpuS: number; maxBehindMs: number;
  };
  cpu['writer'] = w.cpuS;
  const observers = got.flatMap((m) => m.observers ?? []);
  const lags = got.flatMap((m) => m.lags ?? []);
  const lastAt = Math.max(...observers.map((o) => o.lastAt));

  const tag = `observers (${label})`;
  if (op.exitCode !== 0) problems.push(`${tag}: the writer exited with ${op.exitCode}: ${op.stderr.slice(0, 500)}`);
  if (op.stdoutBytes.length !== w.bytes || op.gaps.length || opCheck.badBytes) {
    problems.push(`${tag}: the operator got ${op.stdoutBytes.length} of ${w.bytes} bytes with ${op.gaps.length} gap(s), ${opCheck.badBytes} bad`);
  }
  const bad = observers.filter((o) => o.badBytes > 0).length;
  if (bad) problems.push(`${tag}: ${bad} observer(s) received bytes that differ from what was written`);
  const failed = observers.filter((o) => o.error);
  if (failed.length) problems.push(`${tag}: ${failed.length} observer(s) failed: ${failed[0].error}`);
  const noExit = observers.filter((o) => o.finalSeq < 0 && !o.error).length;
  if (noExit) problems.push(`${tag}: ${noExit} observer(s) never got the exit`);
  const unaccounted = observers.filter((o) => o.finalSeq >= 0 && o.bytes + o.gapBytes !== o.finalSeq).length;
  if (unaccounted) {
    problems.push(`${tag}: for ${unaccounted} observer(s), bytes received + gaps reported ≠ bytes written (silent loss or duplication)`);
  }
  return {
    seconds,
    written: { blocks: w.blocks, bytes: w.bytes, start: w.start, ms: w.end - w.start, cpuS: w.cpuS, maxBehindMs: w.maxBehindMs },
    operator: { bytes: opCheck.bytes, badBytes: opCheck.badBytes, lags: opCheck.lags, gaps: op.gaps.length, exitCode: op.exitCode, ms: opLastAt - t0 },
    observers,
    lags,
    deliveryMs: lastAt - w.start,
    cpu,
    controlPlaneSystemS,
    wallS: (t1 - t0) / 1000,
    controlPlaneRssMaxMb,
  };
}
