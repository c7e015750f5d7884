// A throwaway NATS server (Debian's nats-server) on a free loopback port, for
// the cluster tests and `npm run cluster` (devcluster/main.ts). `.ci/run`
// installs it; without it the tests fail and say so (never skipped in
// silence).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

const BIN = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((p) => fs.existsSync(p));
const MISSING = "nats-server is not installed: install Debian's nats-server package (sudo apt-get install nats-server; .ci/run does)";

/** nats-server's path, or an Error saying how to install it. */
export function natsServerBin(): string {
  if (!BIN) throw new Error(MISSING);
  return BIN;
}

import { freePort } from './ports';
export { freePort };

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  /** Stops it (SIGKILL: a crash) and resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The server process's id while it runs. */
  readonly pid: number | undefined;
  /** `cb` runs if the server exits without kill() or stop() asking it to. */
  onExit(cb: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

export interface NatsOptions {
  /** In a process group of its own, so a Ctrl-C at the terminal reaches only the caller (see PostgresOptions.detached). */
  detached?: boolean;
}

async function listening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startNats(o: NatsOptions = {}): Promise<NatsServer> {
  const bin = natsServerBin();
  const port = await freePort();
  let proc: ChildProcess | undefined;
  /** Processes stopped on purpose: their exit is no news. */
  const intended = new WeakSet<ChildProcess>();
  const exitListeners: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];
  const start = async () => {
    const p = spawn(bin, ['-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore', detached: !!o.detached });
    proc = p;
    process.once('exit', () => p.kill('SIGKILL'));
    p.once('exit', (code, signal) => {
      if (!intended.has(p)) for (const cb of exitListeners) cb(code, signal);
    });
    // Gone before it listened (a port taken meanwhile, a bad binary): say so now, not after the timeout.
    const died = new Promise<never>((_, reject) => p.once('exit', (code, signal) => reject(new Error(`nats-server exited (${signal ?? code}) before listening on ${port}`))));
    died.catch(() => undefined);
    intended.add(p); // until it listens, an exit is start()'s error, not news
    await Promise.race([listening(port), died]).catch((e: Error) => {
      p.kill('SIGKILL');
      throw e;
    });
    intended.delete(p);
  };
  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    intended.add(p);
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    kill,
    start,
    stop: kill,
    get pid() {
      return proc?.pid;
    },
    onExit(cb) {
      exitListeners.push(cb);
    },
  };
}
