// Real processes for tests: a control plane and agents started through the
// CLI on loopback ports, each with its own temp dirs, and a way to run the
// CLI itself. Everything started here is stopped by `stop()`.
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CmdopClient } from '../../sdk';
import type { ClientOptions } from '../../sdk';

/** Admin tokens by server address, so runCli can sign in to whichever cluster it is pointed at. */
const tokens = new Map<string, string>();

/**
 * The repository: the nearest directory above this file with the project's
 * package.json. This file runs compiled (dist/test/helpers, under node:test)
 * and from source (test/helpers, under Playwright), at different depths.
 */
export const ROOT = ((dir: string): string => {
  for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) {
    const pkg = path.join(d, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'cmdop') return d;
  }
  throw new Error(`no cmdop package.json above ${dir}`);
})(__dirname);
export const CLI = path.join(ROOT, 'bin', 'cmdop.js');

/**
 * Every process a test starts, so none outlives it: a test file killed by
 * the runner's timeout would otherwise leave its control plane and agents
 * running.
 */
const started = new Set<ChildProcess>();
export function track<T extends ChildProcess>(p: T): T {
  started.add(p);
  p.once('exit', () => started.delete(p));
  return p;
}
const killAll = () => {
  for (const p of started) p.kill('SIGKILL');
};
process.once('exit', killAll);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(1);
  });
}

export { freePort, restartablePort } from '../../devcluster/ports';

export function tempDir(prefix = 'cmdop-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Waits until `proc` prints a line matching `re` on stdout; rejects if it exits first. */
export function waitForLine(proc: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${re} (stdout: ${out}; stderr: ${err.slice(-2000)})`)), timeoutMs);
    const onOut = (d: Buffer) => {
      out += d.toString();
      const m = out.match(re);
      if (m) done(undefined, m);
    };
    const onErr = (d: Buffer) => {
      err += d.toString();
    };
    const onExit = (code: number | null) => done(new Error(`exited with ${code} before ${re}: ${err.slice(-2000)}`));
    function done(e?: Error, m?: RegExpMatchArray) {
      clearTimeout(timer);
      proc.stdout!.off('data', onOut);
      proc.stderr!.off('data', onErr);
      proc.off('exit', onExit);
      if (e) reject(e);
      else resolve(m!);
    }
    proc.stdout!.on('data', onOut);
    proc.stderr!.on('data', onErr);
    proc.once('exit', onExit);
  });
}

export interface Cluster {
  server: string;
  /** The admin's token (DATA_DIR/admin.token); runCli and `client` carry it. */
  token: string;
  /** A signed-in SDK client (the admin's unless `token` is given). */
  newClient(o?: ClientOptions): CmdopClient;
  /** The credential an agent started by startAgent stored. */
  storedAgentToken(name: string): string;
  /** Enrolls `name` (as the admin's machine) and returns its agent credential. */
  agentToken(name: string): Promise<string>;
  cp: ChildProcess;
  agents: Map<string, ChildProcess>;
  client: CmdopClient;
  dir: string;
  startAgent(name: string, args?: string[]): Promise<ChildProcess>;
  /**
   * Stops the control plane with `signal` (SIGKILL: a crash) and starts it
   * again on the same port and data directory, as a supervisor would.
   * Resolves once it listens again; `downMs` is how long it stays down.
   * `listen` (HOST:PORT) starts it on another port instead: a stand-in for
   * a replica taking its sessions over. Resolves with where it listens.
   */
  restartServer(signal: NodeJS.Signals, downMs?: number, listen?: string): Promise<string>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  serverArgs?: string[];
  agent?: string | false;
  agentArgs?: string[];
  env?: Record<string, string>;
}

// Quiet logs, and a config/data home of the test's own: the CLI must not
// find this user's real sign-ins, pins or local admin.token.
const HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-home-'));
process.once('exit', () => fs.rmSync(HOME, { recursive: true, force: true }));
const LOG_ENV = {
  CMDOP_LOG_LEVEL: process.env.CMDOP_LOG_LEVEL ?? 'warn',
  XDG_CONFIG_HOME: path.join(HOME, 'config'),
  XDG_DATA_HOME: path.join(HOME, 'data'),
  CMDOP_TOKEN: '',
  CMDOP_NO_BROWSER: '1',
};

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const dir = tempDir();
  const procs: ChildProcess[] = [];
  const startServer = (listen: string, extra: string[] = []) => {
    const p = track(
      spawn(process.execPath, [CLI, 'server', '--listen', listen, '--data-dir', path.join(dir, 'cp'), ...extra, ...(opts.serverArgs ?? [])], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // No launcher process in between: the signal a test sends reaches the control plane itself.
        env: { ...process.env, ...LOG_ENV, CMDOP_RELAUNCH: '0', ...opts.env },
      }),
    );
    procs.push(p);
    return p;
  };
  const cp = startServer('127.0.0.1:0');
  const [, server] = await waitForLine(cp, /listening on (\S+)/);
  const token = fs.readFileSync(path.join(dir, 'cp', 'admin.token'), 'utf8').trim();
  tokens.set(server, token);
  const agents = new Map<string, ChildProcess>();
  const cluster: Cluster = {
    server,
    token,
    cp,
    agents,
    dir,
    client: new CmdopClient({ server, token }),
    newClient: (o = {}) => new CmdopClient({ server, token, ...o }),
    storedAgentToken(name) {
      const all = JSON.parse(fs.readFileSync(path.join(dir, `agent-${name}`, 'credentials.json'), 'utf8'));
      return (Object.values(all)[0] as { token: string }).token;
    },
    async agentToken(name) {
      const enroll = await cluster.client.auth.createEnrollment(name);
      const c = new CmdopClient({ server, token: enroll.token });
      try {
        return (await c.auth.enrollAgent()).token;
      } finally {
        c.close();
      }
    },
    async startAgent(name, args = []) {
      const stateDir = path.join(dir, `agent-${name}`);
      // Enrolled once; a restarted agent uses the credential it stored.
      const enroll = fs.existsSync(path.join(stateDir, 'credentials.json'))
        ? []
        : ['--enroll-token', (await cluster.client.auth.createEnrollment(name)).token];
      const a = track(
        spawn(process.execPath, [CLI, 'agent', '--server', server, '--name', name, '--state-dir', stateDir, ...enroll, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, ...LOG_ENV, ...opts.env },
        }),
      );
      procs.push(a);
      await waitForLine(a, /connected/);
      agents.set(name, a);
      return a;
    },
    async restartServer(signal, downMs = 0, listen) {
      const old = cluster.cp;
      const gone = new Promise<void>((r) => (old.exitCode !== null || old.signalCode !== null ? r() : void old.once('exit', () => r())));
      old.kill(signal);
      await gone;
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      // The same gRPC port (clients and agents dial it) unless told; any free web port.
      const p = startServer(listen ?? server.replace(/^grpcs:\/\//, ''), ['--web-listen', '127.0.0.1:0']);
      const [, at] = await waitForLine(p, /listening on (\S+)/);
      cluster.cp = p;
      return at;
    },
    async stop() {
      cluster.client.close();
      tokens.delete(server);
      await Promise.all(
        procs.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null || p.signalCode !== null) return resolve();
              p.once('exit', () => resolve());
              p.kill('SIGCONT');
              p.kill('SIGTERM');
              setTimeout(() => p.kill('SIGKILL'), 3000).unref();
            }),
        ),
      );
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.agent !== false) await cluster.startAgent(opts.agent ?? 'box', opts.agentArgs);
  return cluster;
}

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** The environment a CLI process gets: quiet, hermetic, signed in to `server` if it is a test cluster's. */
export function cliEnv(server?: string, extra: Record<string, string> = {}): Record<string, string> {
  const token = server && tokens.has(server) ? { CMDOP_TOKEN: tokens.get(server)! } : {};
  return { ...(process.env as Record<string, string>), ...LOG_ENV, ...token, ...extra };
}

/** Runs `cmdop ARGS` to completion. */
export function runCli(
  args: string[],
  opts: { server?: string; input?: Buffer | string; env?: Record<string, string>; timeoutMs?: number; onStdout?: (d: Buffer) => void } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = track(
      spawn(process.execPath, [CLI, ...(opts.server ? ['--server', opts.server] : []), ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: cliEnv(opts.server ?? opts.env?.CMDOP_SERVER, opts.env),
      }),
    );
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`cmdop ${args.join(' ')} timed out; stderr: ${err}`));
    }, opts.timeoutMs ?? 60_000);
    p.stdout.on('data', (d: Buffer) => {
      out.push(d);
      opts.onStdout?.(d);
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => {
      clearTimeout(timer);
      // 'exit' can precede the last 'data'; wait for the pipes to close.
      p.stdout.once('close', () => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      if (p.stdout.closed) resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (opts.input !== undefined) p.stdin.end(opts.input);
    else p.stdin.end();
  });
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}
