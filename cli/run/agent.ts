// `cmdop agent` (and `cmdop-agent`), run (its options are in ../commands/agent.ts).
import type { Command } from 'commander';
import { nameError } from '../../protocol';
import { Agent } from '../../app/agent';
import { defaultMachineName } from '../../lib/paths';
import { fail } from '../output';
import { serverAddress } from '../server-address';
import { connectionTo } from '../connection';
import { printDeviceCode } from '../deviceCode';
import { type Connection, PinMismatchError, agentCredential, pinnedCredentials } from '../../sdk';
import { keepFreedMemoryForReuse } from '../../lib/mallocReuse';
import { type AgentStatusFile, writeAgentStatus } from '../../lib/agentStatus';
import { Backoff } from '../../protocol/backoff';

export interface AgentOptions {
  name?: string;
  stateDir: string;
  enrollToken?: string;
  login?: boolean;
  heartbeatInterval?: number;
  keepalive: number;
  reconnectMin: number;
  reconnectMax: number;
  fileRoot?: string;
  sleepDetect: number;
  waitForServer?: boolean;
}

/**
 * The control plane's TLS trust, retried while it cannot be reached when
 * `wait` (the service units pass --wait-for-server: at boot the network or
 * the control plane may come up after the agent). A changed certificate is
 * never retried.
 */
async function reachServer(addr: string, wait: boolean, log: (line: string) => void): Promise<Connection> {
  const backoff = new Backoff({ initialMs: 1000, maxMs: 30_000 });
  for (;;) {
    try {
      return await connectionTo(addr);
    } catch (e) {
      if (!wait || e instanceof PinMismatchError) throw e;
      const ms = backoff.next();
      log(`cannot reach ${addr} (${(e as Error).message}); retrying in ${Math.round(ms / 1000)} s`);
      await new Promise((r) => setTimeout(r, ms));
    }
  }
}

export async function runAgent(o: AgentOptions, cmd: Command): Promise<void> {
  const addr = serverAddress(cmd);
  const badName = o.name !== undefined ? nameError('machine name', o.name) : undefined;
  if (badName) fail(badName);
  keepFreedMemoryForReuse();
  const log = (line: string) => process.stderr.write(`cmdop agent: ${line}\n`);
  const startedAtMs = Date.now();
  let status: AgentStatusFile = {
    machine: o.name ?? '', server: addr, state: 'connecting', sessionId: '', pid: process.pid, startedAtMs, updatedAtMs: startedAtMs,
  };
  // status.json in the state dir (lib/agentStatus.ts), for `cmdop agent status` and `cmdop doctor`.
  const report = (change: Partial<AgentStatusFile>) => {
    status = { ...status, ...change, updatedAtMs: Date.now() };
    try {
      writeAgentStatus(o.stateDir, status);
    } catch {
      // A read-only state dir: the agent runs on, `status` shows less.
    }
  };
  const failed = (message: string): never => {
    report({ state: 'stopped', lastError: { message, atMs: Date.now() } });
    return fail(message);
  };
  report({});
  const conn = await reachServer(addr, !!o.waitForServer, log).catch((e) => failed(e.message));
  const cred = await agentCredential(conn, {
    stateDir: o.stateDir,
    machine: o.name ?? defaultMachineName(),
    nameGiven: o.name !== undefined,
    enrollToken: o.enrollToken ?? (process.env.CMDOP_ENROLL_TOKEN || undefined),
    interactive: !!o.login || (!!process.stdin.isTTY && !!process.stderr.isTTY),
    log,
    present: printDeviceCode(true),
  }).catch((e) => failed(e.message));
  report({ machine: cred.machine });
  const agent = new Agent({
    server: conn.address.target,
    token: cred.token,
    // TLS: the pin is checked again before every reconnect; a changed certificate stops the agent.
    credentials: conn.address.tls ? pinnedCredentials(conn) : undefined,
    channelOptions: conn.channelOptions,
    name: cred.machine,
    stateDir: o.stateDir,
    heartbeatIntervalS: o.heartbeatInterval,
    keepaliveS: o.keepalive,
    backoffInitialMs: o.reconnectMin,
    backoffMaxMs: o.reconnectMax,
    sleepDetectMs: o.sleepDetect * 1000,
    fileRoot: o.fileRoot,
  });
  agent.on('status', () => report({ state: agent.status, sessionId: agent.sessionId, lastError: agent.lastError ?? status.lastError }));
  agent.on('fatal', (e: Error) => failed(e.message));
  agent.on('session-ended', ({ reason, terminals }: { reason: string; terminals: string[] }) => {
    const what = terminals.length ? `its terminals ${terminals.join(', ')} were closed` : 'it had no terminals';
    log(`the previous session ended (${reason}); ${what}; starting a new session`);
  });
  await agent.start().catch((e) => failed(e.message));
  // With several control planes, which one it reached.
  const via = () => (conn.address.entries.length > 1 ? ` via ${agent.peer}` : '');
  process.stdout.write(`cmdop agent ${cred.machine} connected to ${conn.address.display}${via()} (session ${agent.sessionId})\n`);
  agent.on('connected', (session: string) => process.stdout.write(`cmdop agent ${cred.machine}: session ${session} connected${via()}\n`));
  const stop = () => {
    agent.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
