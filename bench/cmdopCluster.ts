// CMDOP as a user runs it: a control plane and one agent, each its own
// process started through the CLI on loopback, with state in the bench's
// temp dir. Separate processes so that the control plane's RSS and CPU can
// be read from /proc, and so the bench's own event loop never sits on the
// product's data path (except where the SDK is the client on purpose).
import path from 'node:path';
import { ProcessSet, Tail, stop, waitForLine } from './procs';

/** bin/cmdop.js, from dist/bench/. */
export const CLI = path.join(__dirname, '..', '..', 'bin', 'cmdop.js');

/** Product logs at warn: info lines on every terminal would only cost CPU during the runs. */
export const CMDOP_ENV: NodeJS.ProcessEnv = { ...process.env, CMDOP_LOG_LEVEL: process.env.CMDOP_LOG_LEVEL ?? 'warn' };

export interface CmdopCluster {
  /** HOST:PORT of the control plane. */
  readonly server: string;
  readonly machine: string;
  readonly controlPlanePid: number;
  readonly agentPid: number;
  /** argv (after node) for `cmdop --server S exec [-t] MACHINE -- COMMAND`. */
  execArgs(command: string, opts: { tty: boolean }): string[];
  /** Recent stderr of both processes, for error messages. */
  logs(): string;
  /** Stops the agent, then the control plane. */
  stop(): Promise<void>;
}

export interface ControlPlaneProcess {
  /** HOST:PORT it listens on. */
  readonly server: string;
  readonly pid: number;
  /** Recent stderr, for error messages. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
}

/**
 * A control plane alone (`cmdop server`), with `extraArgs` such as `--heartbeat-timeout 60`.
 * BENCH_CP_NODE_ARGS adds arguments for node itself, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to see where the control plane's CPU goes (the profile is written when it stops).
 */
export async function startControlPlaneProcess(dir: string, procs: ProcessSet, extraArgs: string[] = []): Promise<ControlPlaneProcess> {
  const cpLog = new Tail();
  const nodeArgs = (process.env.BENCH_CP_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const cp = procs.spawn(
    process.execPath,
    [...nodeArgs, CLI, 'server', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'control-plane'), ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env: CMDOP_ENV },
  );
  cp.stderr!.on('data', (d: Buffer) => cpLog.push(d));
  const [, server] = await waitForLine(cp, 'stdout', /listening on (\S+)/);
  cp.stdout!.resume(); // nothing more is expected there; never let the pipe fill
  return { server, pid: cp.pid!, log: () => cpLog.toString(), stop: () => stop(cp) };
}

export async function startCmdop(dir: string, procs: ProcessSet, machine = 'bench', serverArgs: string[] = []): Promise<CmdopCluster> {
  const cp = await startControlPlaneProcess(dir, procs, serverArgs);
  const server = cp.server;

  const agentLog = new Tail();
  const agent = procs.spawn(
    process.execPath,
    [CLI, 'agent', '--server', server, '--name', machine, '--state-dir', path.join(dir, 'agent')],
    { stdio: ['ignore', 'pipe', 'pipe'], env: CMDOP_ENV },
  );
  agent.stderr!.on('data', (d: Buffer) => agentLog.push(d));
  await waitForLine(agent, 'stdout', /connected/);
  agent.stdout!.resume();

  return {
    server,
    machine,
    controlPlanePid: cp.pid,
    agentPid: agent.pid!,
    execArgs: (command, { tty }) => [CLI, '--server', server, 'exec', ...(tty ? ['-t'] : []), machine, '--', command],
    logs: () => `control plane stderr: ${cp.log()}\nagent stderr: ${agentLog}`,
    stop: async () => {
      await stop(agent);
      await cp.stop();
    },
  };
}
