// Issue 3, figure 1: how long after the network comes back does a client
// have the last byte that the agent buffered while it was cut off?
//
// A control plane (child process), an agent in this process that reaches it
// only through a CutProxy, and an SDK client straight to the control plane.
// The client runs a command that waits for a flag file, then writes exactly
// `bytes` bytes and exits. The proxy is blocked first (the agent loses its
// stream, the session goes to GRACE_PERIOD), then the flag is set, so every
// byte lands in the agent's offline buffer. Once the agent holds all of it
// and the command has exited, the clock starts at `proxy.unblock();
// agent.resume()` and stops when the client has counted the last byte.
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent } from '../app/agent';
import { createLogger } from '../lib/logger';
import { SessionState } from '../protocol';
import type { CmdopClient } from '../sdk';
import { CutProxy } from '../test/helpers/proxy';
import { ControlPlaneProcess, startControlPlaneProcess } from './cmdopCluster';
import { ProcessSet, sleep } from './procs';

export interface ReconnectResult {
  bytes: number;
  /** Per repetition: unblock + resume -> last byte at the client, ms. */
  lastByteMs: number[];
  /** Per repetition: unblock + resume -> the agent's session resumed (its 'connected' event), ms. */
  resumedMs: number[];
  problems: string[];
}

const MACHINE = 'reconnect-bench';

/**
 * CutProxy leaves Nagle's algorithm on for both of its sockets (gRPC's own
 * sockets turn it off, on both ends). Through it, a small message such as
 * the control plane's `resumed` can wait for a delayed ACK (~40 ms on Linux):
 * a stall of the test proxy, not of a network path. Turned off here, from
 * outside, on each connection as it is made.
 */
function noDelay(proxy: CutProxy): void {
  const inner = proxy as unknown as { server: net.Server; pairs: Set<[net.Socket, net.Socket]> };
  // Runs after the proxy's own handler, which has just added this connection's pair.
  inner.server.on('connection', () => {
    for (const [a, b] of inner.pairs) {
      a.setNoDelay(true);
      b.setNoDelay(true);
    }
  });
}

/** Polls `cond` every `everyMs` until it holds; rejects after `timeoutMs` saying `what`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000, everyMs = 2): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export async function measureReconnect(opts: {
  dir: string;
  procs: ProcessSet;
  reps: number;
  bytes: number;
  progress: (msg: string) => void;
  /** Holds what a signal must stop while this runs (the in-process agent's commands). */
  cleanups: Set<() => Promise<void>>;
}): Promise<ReconnectResult> {
  const { dir, procs, reps, bytes, progress } = opts;
  const problems: string[] = [];
  let cp: ControlPlaneProcess | undefined;
  let proxy: CutProxy | undefined;
  let agent: Agent | undefined;
  let client: CmdopClient | undefined;
  const cleanup = async () => {
    client?.close();
    await agent?.stop(); // closes its terminals: no command is left waiting for its flag
    await proxy?.close();
    await cp?.stop();
  };
  opts.cleanups.add(cleanup);
  try {
    progress(`reconnect: control plane + in-process agent behind a cutting proxy; ${reps} × ${bytes} bytes buffered offline`);
    cp = await startControlPlaneProcess(dir, procs);
    proxy = await CutProxy.start(cp.server);
    noDelay(proxy);
    // Enrolled before the clock matters: a one-time enrollment token spent for the agent's credential.
    const token = await cp.enrollAgent(MACHINE);
    agent = new Agent({
      server: proxy.address,
      token,
      name: MACHINE,
      stateDir: path.join(dir, 'agent'),
      backoffInitialMs: 10,
      backoffMaxMs: 100,
      logger: createLogger('agent', process.env.BENCH_AGENT_LOG ?? 'silent'),
    });
    await agent.start();
    client = cp.newClient({ machine: MACHINE });
    const state = async () => (await client!.machines.list()).find((m) => m.name === MACHINE)?.state;

    const lastByteMs: number[] = [];
    const resumedMs: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const flag = path.join(dir, `go-${rep}`);
      // No PTY: the bytes arrive exactly as written (a PTY would add nothing here but CRs).
      // (It gives up waiting after about a minute: a bench that died never sets the flag.)
      const cmd =
        `i=0; while [ ! -e '${flag}' ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done; ` +
        `head -c ${bytes} /dev/zero | tr '\\0' x`;
      let received = 0;
      let lastByteAt = 0;
      let gotAll!: () => void;
      const all = new Promise<void>((r) => (gotAll = r));
      const run = client.terminal.execute(cmd, {
        onOutput: (d) => {
          received += d.length;
          if (received >= bytes && lastByteAt === 0) {
            lastByteAt = performance.now();
            gotAll();
          }
        },
      });
      run.catch(() => {}); // awaited below; a failure must not be unhandled meanwhile
      const a = agent;
      await until(() => [...a.terminals.values()].some((t) => t.spec.shellCommand === cmd), 'the agent to start the command');
      const host = [...a.terminals.values()].find((t) => t.spec.shellCommand === cmd)!;
      // And the control plane has attached the client (the agent's `opened` has arrived): cut
      // before that and the open itself is what the reconnect has to recover, not the output.
      await until(
        async () => ((await client!.terminal.list()).find((t) => t.terminalId === host.id)?.operators ?? 0) > 0,
        'the client to be attached',
        10_000,
        5,
      );
      // execute() closes the command's stdin right after attaching; let that reach the agent
      // too (an input sent while the agent is cut off is refused, and execute() fails with it).
      await sleep(200);

      proxy.block();
      await until(async () => (await state()) === SessionState.GRACE_PERIOD, 'the session to enter GRACE_PERIOD', 10_000, 10);
      fs.writeFileSync(flag, '');
      await until(() => host.log.head >= bytes && host.exited, `the agent to buffer ${bytes} bytes and the exit`, 20_000, 1);
      if (received !== 0) problems.push(`reconnect rep ${rep + 1}: ${received} bytes reached the client while the agent was cut off`);

      let resumedAt = 0;
      a.once('connected', () => (resumedAt = performance.now()));
      const t0 = performance.now();
      proxy.unblock();
      a.resume();
      const timedOut = await Promise.race([all.then(() => false), sleep(15_000).then(() => true)]);
      if (timedOut) throw new Error(`reconnect rep ${rep + 1}: the client had ${received} of ${bytes} bytes 15 s after the reconnect`);
      lastByteMs.push(lastByteAt - t0);
      resumedMs.push(resumedAt ? resumedAt - t0 : NaN);

      const r = await run;
      const exact = r.stdoutBytes.length === bytes && r.stdoutBytes.every((b) => b === 0x78);
      if (!exact || r.stderrBytes.length || r.gaps.length || r.exitCode !== 0) {
        problems.push(
          `reconnect rep ${rep + 1}: got ${r.stdoutBytes.length} stdout bytes (${exact ? 'exact' : 'NOT the bytes written'}), ` +
            `${r.stderrBytes.length} stderr bytes, ${r.gaps.length} gap(s), exit ${r.exitCode}`,
        );
      }
      progress(`reconnect rep ${rep + 1}/${reps}: last byte ${lastByteMs[rep].toFixed(1)} ms after unblock (resumed at ${resumedMs[rep].toFixed(1)} ms)`);
    }
    return { bytes, lastByteMs, resumedMs, problems };
  } catch (e) {
    if (cp) process.stderr.write(`\ncontrol plane stderr: ${cp.log()}\n`);
    throw e;
  } finally {
    opts.cleanups.delete(cleanup);
    await cleanup();
  }
}
