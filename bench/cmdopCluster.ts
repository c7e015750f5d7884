// CMDOP as a user runs it: a control plane and one agent, each its own
// process started through the CLI on loopback, with state in the bench's
// temp dir. Separate processes so that the control plane's RSS and CPU can
// be read from /proc, and so the bench's own event loop never sits on the
// product's data path (except where the SDK is the client on purpose).
//
// Every gRPC call needs a bearer token: the bench signs in as the admin with
// DATA_DIR/admin.token (written by the control plane on first start), and
// enrolls each agent it starts with a one-time enrollment token, as a user would.
import fs from 'node:fs';
import path from 'node:path';
import { SERVER_NODE_FLAGS } from '../cli/relaunch';
import { CmdopClient } from '../sdk';
import type { ClientOptions } from '../sdk';
import { ProcessSet, Tail, stop, waitForLine } from './procs';

/** bin/cmdop.js, from dist/bench/. */
export const CLI = path.join(__dirname, '..', '..', 'bin', 'cmdop.js');

/**
 * Product logs at warn: info lines on every terminal would only cost CPU during the runs.
 * No CMDOP_TOKEN of the user's: each process is given the token it should use.
 */
export const CMDOP_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  CMDOP_LOG_LEVEL: process.env.CMDOP_LOG_LEVEL ?? 'warn',
  CMDOP_TOKEN: '',
  CMDOP_ENROLL_TOKEN: '',
  BENCH_AUDIT_PROBE: '', // only the auth bench's control plane is probed (bench/auditProbe.ts)
};

/** The environment of a CLI client (`cmdop exec`) signed in with `token`. */
export function cliEnv(token: string): NodeJS.ProcessEnv {
  return { ...CMDOP_ENV, CMDOP_TOKEN: token };
}

export interface CmdopCluster {
  /** HOST:PORT of the control plane. */
  readonly server: string;
  readonly machine: string;
  /** The admin's token (DATA_DIR/admin.token). */
  readonly token: string;
  /** The environment for CLI clients (`execArgs`): signed in as the admin. */
  readonly env: NodeJS.ProcessEnv;
  readonly controlPlanePid: number;
  readonly agentPid: number;
  /** A new SDK client, signed in as the admin unless `o.token` says otherwise. */
  newClient(o?: ClientOptions): CmdopClient;
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
  /** The admin's token, read from DATA_DIR/admin.token once it listens. */
  readonly token: string;
  /** A new SDK client, signed in as the admin unless `o.token` says otherwise. */
  newClient(o?: ClientOptions): CmdopClient;
  /** Enrolls `machine` (a one-time enrollment token, spent at once) and returns its agent credential. */
  enrollAgent(machine: string): Promise<string>;
  /** Recent stderr, for error messages. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  /** Sends `signal` and resolves once it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** How the bench runs a control-plane process beyond its flags (a measuring preload, see bench/auditProbe.ts). */
export interface ControlPlaneOptions {
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

/**
 * A control plane alone (`cmdop server`), with `extraArgs` such as `--heartbeat-timeout 60`.
 * BENCH_CP_NODE_ARGS adds arguments for node itself, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`
 * to see where the control plane's CPU goes (the profile is written when it stops).
 */
export async function startControlPlaneProcess(
  dir: string,
  procs: ProcessSet,
  extraArgs: string[] = [],
  o: ControlPlaneOptions = {},
): Promise<ControlPlaneProcess> {
  const cpLog = new Tail();
  // The server's own node flags given up front, so cli/relaunch.ts runs it in this process:
  // the pid the bench reads CPU and RSS of is the control plane, not a launcher that only waits.
  const nodeArgs = [...SERVER_NODE_FLAGS, ...(process.env.BENCH_CP_NODE_ARGS ?? '').split(/\s+/).filter(Boolean), ...(o.nodeArgs ?? [])];
  const dataDir = path.join(dir, 'control-plane');
  const cp = procs.spawn(
    process.execPath,
    [...nodeArgs, CLI, 'server', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...CMDOP_ENV, ...o.env } },
  );
  cp.stderr!.on('data', (d: Buffer) => cpLog.push(d));
  const [, server] = await waitForLine(cp, 'stdout', /listening on (\S+)/);
  cp.stdout!.resume(); // nothing more is expected there; never let the pipe fill
  // Written before the control plane listens.
  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const newClient = (o: ClientOptions = {}) => new CmdopClient({ server, token, ...o });
  return {
    server,
    pid: cp.pid!,
    token,
    newClient,
    enrollAgent: async (machine) => {
      const admin = newClient();
      try {
        return await enrollAgent(admin, machine);
      } finally {
        admin.close();
      }
    },
    log: () => cpLog.toString(),
    stop: () => stop(cp),
    kill: (signal) =>
      new Promise<void>((resolve) => {
        if (cp.exitCode !== null || cp.signalCode !== null) return resolve();
        cp.once('exit', () => resolve());
        cp.kill(signal);
      }),
  };
}

/** The documented way: the admin creates a one-time enrollment token, which is spent for the agent's credential. */
export async function enrollAgent(admin: CmdopClient, machine: string): Promise<string> {
  const enroll = await admin.auth.createEnrollment(machine);
  const c = new CmdopClient({ server: admin.options.server, token: enroll.token });
  try {
    return (await c.auth.enrollAgent()).token;
  } finally {
    c.close();
  }
}

export async function startCmdop(
  dir: string,
  procs: ProcessSet,
  machine = 'bench',
  serverArgs: string[] = [],
  cpOptions: ControlPlaneOptions = {},
  agentEnv: NodeJS.ProcessEnv = {},
): Promise<CmdopCluster> {
  const cp = await startControlPlaneProcess(dir, procs, serverArgs, cpOptions);
  const server = cp.server;

  // Enrolled like a user would: `cmdop agent --enroll-token` spends a token the admin created.
  const admin = cp.newClient();
  let enrollToken: string;
  try {
    enrollToken = (await admin.auth.createEnrollment(machine)).token;
  } finally {
    admin.close();
  }
  const agentLog = new Tail();
  // BENCH_AGENT_NODE_ARGS: like BENCH_CP_NODE_ARGS, for the agent's node.
  const agentNodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const agent = procs.spawn(
    process.execPath,
    [...agentNodeArgs, CLI, 'agent', '--server', server, '--name', machine, '--state-dir', path.join(dir, 'agent'), '--enroll-token', enrollToken],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...CMDOP_ENV, ...agentEnv } },
  );
  agent.stderr!.on('data', (d: Buffer) => agentLog.push(d));
  await waitForLine(agent, 'stdout', /connected/);
  agent.stdout!.resume();

  return {
    server,
    machine,
    token: cp.token,
    env: cliEnv(cp.token),
    newClient: cp.newClient,
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
