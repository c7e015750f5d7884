// The one launcher of the desktop app's server processes (app/host/): the
// embedded control plane and the agent each run in a process of their own,
// started with the server heap flag (lib/serverFlags.ts, the flag
// `cmdop server` relaunches itself with), spoken to over the typed channel
// (app/host/channel.ts), restarted with the shared backoff
// (protocol/backoff.ts) when they exit unasked, and stopped with a quit
// message, then killed if they do not go within a timeout.
//
// How a process is made is passed in: main.ts hands over Electron's
// utilityProcess.fork (only main.ts may import electron); tests and plain
// Node use nodeFork (child_process.fork with the same execArgv).
import { fork } from 'node:child_process';
import path from 'node:path';
import { SERVER_NODE_FLAGS } from '../../lib/serverFlags';
import { Backoff, type BackoffOptions } from '../../protocol/backoff';
import type { FromHost, Methods, ToHost } from '../host/channel';

/** A started host process, whichever way it was made. */
export interface HostChild {
  /** Undefined until spawned and after it exited. */
  readonly pid: number | undefined;
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** Once, when the process has ended (code null when killed by a signal). */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  /** SIGTERM: ask the OS to end it; SIGKILL: end it now. */
  kill(signal: 'SIGTERM' | 'SIGKILL'): void;
}

export interface HostForkOptions {
  execArgv: string[];
  /** The name Electron shows for the process (app.getAppMetrics, child-process-gone). */
  serviceName: string;
}

/** Makes a host process from a compiled module (dist/app/host/*.js). */
export type ForkHost = (modulePath: string, o: HostForkOptions) => HostChild;

/** child_process.fork: under plain Node (tests, and the fallback). Structured clone, as Electron's port uses. */
export const nodeFork: ForkHost = (modulePath, o) => {
  const c = fork(modulePath, [], { execArgv: o.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  return {
    get pid() {
      return c.exitCode === null && c.signalCode === null ? c.pid : undefined;
    },
    postMessage: (m) => {
      if (c.connected) c.send(m as Parameters<typeof c.send>[0]);
    },
    onMessage: (fn) => void c.on('message', fn),
    onExit: (fn) => void c.once('exit', fn),
    kill: (signal) => {
      if (c.exitCode === null && c.signalCode === null) c.kill(signal);
    },
  };
};

/** The compiled host entry points, next to this file's folder. */
export const HOST_MODULES = {
  controlPlane: path.join(__dirname, '..', 'host', 'controlPlaneHost.js'),
  agent: path.join(__dirname, '..', 'host', 'agentHost.js'),
} as const;

/** The execArgv every host gets. */
export const HOST_EXEC_ARGV: readonly string[] = SERVER_NODE_FLAGS;

/** Restart delays: 0.5-1 s first, doubling to at most 30 s; back to the first once a process has stayed up a minute. */
export const RESTART_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000 };
const STABLE_MS = 60_000;
/** After the quit message, how long a host may take to stop before it is killed. */
export const QUIT_TIMEOUT_MS = 10_000;

export interface HostProcessOptions<E> {
  /** For people: "control plane", "agent". */
  name: string;
  module: string;
  fork: ForkHost;
  serviceName: string;
  /** What the host reports unasked. */
  onEvent?: (body: E) => void;
  /** It exited unasked; a new one starts in `delayMs`. */
  onDown?: (why: string, delayMs: number) => void;
  /** A restarted process has started again. */
  onUp?: () => void;
  backoff?: BackoffOptions;
  quitTimeoutMs?: number;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** One supervised host: calls, events, restarts, quit. */
export class HostProcess<C extends Methods<C>, E> {
  private child: HostChild | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private startup: (() => Promise<void>) | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Why the last restart's start call failed, for the next exit's report. */
  private startError: string | undefined;
  private stopping = false;
  private upSinceMs = 0;
  private readonly backoff: Backoff;
  /** How many times it was restarted. */
  restarts = 0;

  constructor(private readonly o: HostProcessOptions<E>) {
    this.backoff = new Backoff(o.backoff ?? RESTART_BACKOFF);
  }

  /** The running process's id (undefined while it is down). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts the process and runs `startup` (its start call) on it; the same
   * `startup` runs again on every restart. A failed first start kills the
   * process and rejects: nothing is restarted that never worked.
   */
  async run(startup: () => Promise<void>): Promise<void> {
    this.spawn();
    try {
      await startup();
    } catch (e) {
      await this.kill();
      throw e;
    }
    this.startup = startup;
    this.upSinceMs = Date.now();
  }

  /** A call on the channel; rejects when the host answers with an error or exits first. */
  call<M extends keyof C & string>(method: M, params: C[M]['params']): Promise<C[M]['result']> {
    const child = this.child;
    if (!child || this.stopping) return Promise.reject(new Error(`the ${this.o.name} process is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.postMessage({ type: 'request', id, method, params } as ToHost<C>);
    });
  }

  /** Quit message, then SIGKILL after the timeout; resolves once the process is gone. Never restarted after. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    child.postMessage({ type: 'quit' } as ToHost<C>);
    const timer = setTimeout(() => child.kill('SIGKILL'), this.o.quitTimeoutMs ?? QUIT_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private async kill(): Promise<void> {
    this.stopping = true;
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  private spawn(): void {
    const child = this.o.fork(this.o.module, { execArgv: [...HOST_EXEC_ARGV], serviceName: this.o.serviceName });
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.onExit((code, signal) => {
        resolve();
        this.onExit(child, code, signal);
      }),
    );
    child.onMessage((raw) => {
      if (child !== this.child) return;
      const m = raw as FromHost<E>;
      if (m.type === 'event') return this.o.onEvent?.(m.body);
      if (m.type !== 'reply') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(Object.assign(new Error(m.error.message), { name: m.error.name }));
    });
  }

  private onExit(child: HostChild, code: number | null, signal: string | null): void {
    if (child !== this.child) return;
    this.child = undefined;
    // A restart whose start call failed was killed here: say why it failed, not that it was killed.
    const why = this.startError ? `its start failed: ${this.startError}` : signal ? `killed by ${signal}` : `exit code ${code}`;
    this.startError = undefined;
    for (const p of this.pending.values()) p.reject(new Error(`the ${this.o.name} process ended (${why})`));
    this.pending.clear();
    const stable = this.upSinceMs > 0 && Date.now() - this.upSinceMs > STABLE_MS;
    this.upSinceMs = 0;
    if (this.stopping || !this.startup) return;
    if (stable) this.backoff.reset();
    const delayMs = this.backoff.next();
    this.o.onDown?.(why, delayMs);
    this.restartTimer = setTimeout(() => void this.restart(), delayMs);
  }

  private async restart(): Promise<void> {
    if (this.stopping || !this.startup) return;
    this.restarts++;
    this.spawn();
    const child = this.child;
    try {
      await this.startup();
      this.upSinceMs = Date.now();
      this.o.onUp?.();
    } catch (e) {
      // Counts as another crash: the exit handler schedules the next try, a longer delay later.
      if (child === this.child) {
        this.startError = e instanceof Error ? e.message : String(e);
        child?.kill('SIGKILL');
      }
    }
  }
}
