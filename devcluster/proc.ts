// One child process of `npm run cluster` (a replica, HAProxy, the agent),
// supervised: its output goes to a log file in the cluster's directory (and
// the last lines are kept, to show when it dies), a line on its stdout can
// be waited for, and an exit nobody asked for is reported to whoever
// listens, so the cluster can stop as a whole instead of limping on.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

export type ExitListener = (code: number | null, signal: NodeJS.Signals | null) => void;

export interface Supervised {
  /** For people: "replica 2", "HAProxy", "the agent". */
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number | undefined;
  /** Where its stdout and stderr go. */
  readonly logFile: string;
  /** Its last lines of output (stdout and stderr interleaved as they came). */
  tail(lines?: number): string;
  /** Resolves with the first match of `re` on its stdout; rejects if it exits first or `timeoutMs` passes. */
  waitFor(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** Asks it to stop (`signal`), SIGKILL after `graceMs`; resolves once it is gone. Its exit is then no news. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** `cb` runs if it exits without stop() asking it to. */
  onExit(cb: ExitListener): void;
}

/** How much output is kept in memory per child: enough for waitFor's lines and a useful tail. */
const KEEP_CHARS = 64 * 1024;

export function supervise(name: string, command: string, args: string[], o: { env: NodeJS.ProcessEnv; logFile: string }): Supervised {
  const log = fs.createWriteStream(o.logFile, { flags: 'a' });
  // A log that cannot be written (disk full, directory gone) must not take the cluster down: the tail stays in memory.
  log.on('error', () => undefined);
  // detached: a process group of its own, so a Ctrl-C at the terminal
  // reaches only the cluster's launcher, which stops its children in order
  // (the agent before the replicas, the replicas before their store).
  const proc = spawn(command, args, { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let both = '';
  const keep = (s: string, d: string) => (s + d).slice(-KEEP_CHARS);
  proc.stdout!.on('data', (d: Buffer) => {
    log.write(d);
    out = keep(out, d.toString());
    both = keep(both, d.toString());
  });
  proc.stderr!.on('data', (d: Buffer) => {
    log.write(d);
    both = keep(both, d.toString());
  });
  // A spawn that fails (ENOENT, EACCES) emits 'error' and then 'exit'; the
  // error is logged so that the exit's report says why.
  proc.on('error', (e) => {
    both = keep(both, `${command}: ${e.message}\n`);
  });
  let asked = false;
  const listeners: ExitListener[] = [];
  // 'close', not 'exit': output can still arrive after 'exit', and a write after end() is an error.
  proc.once('close', () => log.end());
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', (code, signal) => {
      if (!asked) for (const cb of listeners) cb(code, signal);
      resolve();
    }),
  );
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  const tail = (lines = 20) => both.trimEnd().split('\n').slice(-lines).join('\n');

  return {
    name,
    proc,
    get pid() {
      return proc.pid;
    },
    logFile: o.logFile,
    tail,
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) finish(() => resolve(m));
        };
        const onExit = () => finish(() => reject(new Error(`${name} exited (${proc.signalCode ?? proc.exitCode}) before it was ready:\n${tail()}`)));
        const timer = setTimeout(() => finish(() => reject(new Error(`${name} was not ready within ${timeoutMs / 1000} s:\n${tail()}`))), timeoutMs);
        function finish(then: () => void) {
          clearTimeout(timer);
          proc.stdout!.off('data', check);
          proc.off('exit', onExit);
          then();
        }
        proc.stdout!.on('data', check);
        proc.once('exit', onExit);
        check();
        if (gone()) onExit();
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      asked = true;
      if (!gone()) {
        proc.kill(signal);
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
      await exited;
    },
    onExit(cb) {
      listeners.push(cb);
    },
  };
}

/** "code 1" or "signal SIGKILL", for messages. */
export function how(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `signal ${signal}` : `code ${code}`;
}
