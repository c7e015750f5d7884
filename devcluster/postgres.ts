// A throwaway PostgreSQL server, for the tests and for `npm run cluster`
// (devcluster/main.ts): initdb into a temp directory, one postgres process
// on a free loopback port (trust auth: this server lives as long as its
// caller and listens on 127.0.0.1 only), a fresh database per caller.
// stop() ends it and removes the directory; a process that exits any other
// way kills it too.
//
// Debian's binaries (/usr/lib/postgresql/N/bin) are used, newest N. Missing
// binaries are an error saying how to install them: nothing is skipped.
// initdb and postgres refuse to run as root, so as root they run as the
// `postgres` user (the package creates it).
import { ChildProcess, execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports';

export interface Postgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  adminUrl: string;
  /** A new, empty database; returns its URL. */
  newDatabase(prefix?: string): Promise<string>;
  /** Stops the server and starts it again on the same port and data (a database restart, as an upgrade does). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** The server process's id (the postmaster; its workers are its children). */
  readonly pid: number | undefined;
  /** `cb` runs if the server exits without stop() or restart() asking it to (a crash, a kill from outside). */
  onExit(cb: (code: number | null, signal: NodeJS.Signals | null) => void): void;
}

export interface PostgresOptions {
  /**
   * Where its directory is made (default: the OS temp dir). As root the
   * server runs as `postgres`, which must be able to reach it: `parent`
   * gets search permission for others (o+x: enter, not list).
   */
  parent?: string;
  /** stop() leaves the directory (data and all) in place. */
  keep?: boolean;
  /**
   * In a process group of its own: a Ctrl-C at the terminal then reaches
   * only the caller, which stops the server in its own order (a supervisor
   * wants this; a test wants the default, so the runner's Ctrl-C ends it).
   */
  detached?: boolean;
}

const PG_ROOT = '/usr/lib/postgresql';

/** The newest installed server's bin directory, or an Error saying how to install one. */
export function postgresBin(): string {
  const versions = fs.existsSync(PG_ROOT)
    ? fs
        .readdirSync(PG_ROOT)
        .filter((v) => fs.existsSync(path.join(PG_ROOT, v, 'bin', 'initdb')) && fs.existsSync(path.join(PG_ROOT, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      `PostgreSQL is not installed (no ${PG_ROOT}/*/bin/initdb): install Debian's postgresql package ` +
        '(sudo apt-get install postgresql; .ci/run does)',
    );
  }
  return path.join(PG_ROOT, versions[0], 'bin');
}

/** As root: the `postgres` user's ids, to run the server as. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as (the postgresql package creates it)');
  }
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  // SIGQUIT: immediate shutdown, no waiting; the directory is left to the OS's temp cleaning.
  for (const p of running) p.kill('SIGQUIT');
});

export async function startPostgres(o: PostgresOptions = {}): Promise<Postgres> {
  const bin = postgresBin();
  const user = runAs();
  if (user && o.parent) fs.chmodSync(o.parent, fs.statSync(o.parent).mode | 0o001);
  const dir = fs.mkdtempSync(path.join(o.parent ?? os.tmpdir(), 'cmdop-pg-'));
  const data = path.join(dir, 'data');
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const opts: SpawnOptions = { cwd: dir, env: { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' }, detached: !!o.detached, ...user };
  const removeDir = () => {
    if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  /** Server processes stopped on purpose (stop, restart): their exit is no news. */
  const intended = new WeakSet<ChildProcess>();
  const exitListeners: Array<(code: number | null, signal: NodeJS.Signals | null) => void> = [];

  // Linguistic collation (ICU "en", from PostgreSQL 15), as a production
  // database in en_US usually has: queries must not depend on the byte order
  // SQLite sorts text in.
  const collation = Number(path.basename(path.dirname(bin))) >= 15 ? ['--locale-provider=icu', '--icu-locale=en', '--locale=C.UTF-8'] : [];
  const initdb = spawn(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync', '--no-instructions', ...collation], {
    ...opts,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let initOut = '';
  initdb.stdout!.on('data', (d: Buffer) => (initOut += d));
  initdb.stderr!.on('data', (d: Buffer) => (initOut += d));
  const code = await new Promise<number | null>((resolve) => initdb.once('exit', resolve));
  if (code !== 0) {
    removeDir();
    throw new Error(`initdb failed (${code}): ${initOut.slice(-2000)}`);
  }

  /** One postgres process on `port` over the data directory; undefined if it did not come up (the log says why). */
  const spawnServer = async (port: number): Promise<{ proc?: ChildProcess; log: string }> => {
    const p = spawn(
      path.join(bin, 'postgres'),
      [
        '-D', data,
        '-c', 'listen_addresses=127.0.0.1',
        '-c', `port=${port}`,
        '-c', `unix_socket_directories=${dir}`,
        // A test database: durability buys nothing here.
        '-c', 'fsync=off',
        '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off',
        '-c', 'max_connections=60',
      ],
      { ...opts, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(p);
    let log = '';
    p.stdout!.on('data', (d: Buffer) => (log += d));
    p.stderr!.on('data', (d: Buffer) => (log += d));
    const ready = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 30_000);
      const onData = () => {
        if (/ready to accept connections/.test(log)) {
          clearTimeout(t);
          resolve(true);
        }
      };
      p.stderr!.on('data', onData);
      p.once('exit', () => {
        clearTimeout(t);
        resolve(false);
      });
    });
    if (ready) {
      p.once('exit', (code, signal) => {
        if (!intended.has(p)) for (const cb of exitListeners) cb(code, signal);
      });
      return { proc: p, log };
    }
    p.kill('SIGQUIT');
    running.delete(p);
    return { log };
  };

  // A port picked free can be taken before postgres binds it: try a few.
  let server: ChildProcess | undefined;
  let port = 0;
  let log = '';
  for (let attempt = 0; attempt < 5 && !server; attempt++) {
    port = await freePort();
    ({ proc: server, log } = await spawnServer(port));
    if (!server && !/could not bind|Address already in use/.test(log)) break;
  }
  if (!server) {
    removeDir();
    throw new Error(`postgres did not start: ${log.slice(-2000)}`);
  }
  let srv = server;
  /** Ends the server process (SIGINT: a fast shutdown) and resolves once it is gone. */
  const halt = (p: ChildProcess) =>
    new Promise<void>((resolve) => {
      intended.add(p);
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGINT');
      setTimeout(() => p.kill('SIGQUIT'), 10_000).unref();
    });

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let n = 0;
  let stopped: Promise<void> | undefined;
  return {
    adminUrl,
    async newDatabase(prefix = 'cmdop_test') {
      const name = `${prefix}_${process.pid}_${++n}`;
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async restart() {
      await halt(srv);
      running.delete(srv);
      const { proc, log: out } = await spawnServer(port);
      if (!proc) throw new Error(`postgres did not start again on ${port}: ${out.slice(-2000)}`);
      srv = proc;
    },
    stop() {
      stopped ??= halt(srv).then(() => {
        running.delete(srv);
        removeDir();
      });
      return stopped;
    },
    get pid() {
      return srv.pid;
    },
    onExit(cb) {
      exitListeners.push(cb);
    },
  };
}
