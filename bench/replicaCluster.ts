// Control-plane replicas as a user runs them (issue 14): `cmdop server
// --store postgres://… --bus nats://… --peer-listen 127.0.0.1:0` processes
// sharing one PostgreSQL store and one NATS bus, each on a fixed loopback
// port (an agent's --server A,B,C list names them, and a replica restarted
// after a kill comes back where it was), each with its own data dir, no
// launcher in front (the signal the bench sends reaches the replica itself).
//
// PostgreSQL and NATS are the tests' throwaway servers (test/helpers/).
import crypto from 'node:crypto';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import pg from 'pg';
import { CmdopClient } from '../sdk';
import type { ClientOptions } from '../sdk';
import { freePort, startNats, type NatsServer } from '../test/helpers/nats';
import { startPostgres, type Postgres } from '../test/helpers/postgres';
import { CLI, CMDOP_ENV } from './cmdopCluster';
import { ProcessSet, Tail, stop, waitForLine } from './procs';

/** PostgreSQL and NATS, shared by every set of replicas the phase starts (each set on a database of its own). */
export interface Backing {
  db: Postgres;
  nats: NatsServer;
  stop(): Promise<void>;
}

export async function startBacking(): Promise<Backing> {
  const db = await startPostgres();
  let nats: NatsServer;
  try {
    nats = await startNats();
  } catch (e) {
    await db.stop();
    throw e;
  }
  return {
    db,
    nats,
    stop: async () => {
      await nats.stop();
      await db.stop();
    },
  };
}

export interface SessionRowInfo {
  sessionId: string;
  state: number;
  owner: string;
  epoch: number;
}

export interface ReplicaSet {
  /** HOST:PORT of replica i. */
  addr(i: number): string;
  /** Every replica's address, as an agent's or a client's --server list: A,B,C. */
  readonly list: string;
  readonly size: number;
  readonly store: string;
  /** The admin's token (replica 0's DATA_DIR/admin.token; tokens live in the shared store). */
  readonly token: string;
  /** The pid of replica i's current process. */
  pid(i: number): number;
  /** The replica id of replica i's current process (a restarted replica is a new one). */
  id(i: number): string;
  /** The index of the replica whose current process has this id, or -1 (a process gone). */
  indexOf(id: string): number;
  newClient(i: number | 'all', o?: ClientOptions): CmdopClient;
  /** Sends `signal` to replica i and resolves once it has exited. */
  kill(i: number, signal: NodeJS.Signals): Promise<void>;
  /** Starts replica i again (same port, same data dir: a supervisor's restart). */
  start(i: number): Promise<void>;
  /** The newest session of machine `name` as the store has it. */
  sessionRow(name: string): Promise<SessionRowInfo | undefined>;
  /** A query on the shared store (the bench's own connection). */
  query<T extends object>(sql: string, params?: unknown[]): Promise<T[]>;
  logs(): string;
  stop(): Promise<void>;
}

interface Running {
  proc: ChildProcess;
  id: string;
  log: Tail;
}

/** `count` replicas on a fresh database of `backing`'s PostgreSQL, their ports picked now. */
export async function startReplicas(opts: {
  backing: Backing;
  dir: string;
  procs: ProcessSet;
  count: number;
  /** Flags for every replica beyond the cluster's own (e.g. --heartbeat-interval). */
  serverArgs?: string[];
  dbPrefix?: string;
}): Promise<ReplicaSet> {
  const { backing, dir, procs, count } = opts;
  const secret = crypto.randomBytes(24).toString('hex'); // 48 characters
  const store = await backing.db.newDatabase(opts.dbPrefix ?? 'cmdop_bench');
  const ports: number[] = [];
  for (let i = 0; i < count; i++) ports.push(await freePortNotIn(ports));
  const running: (Running | undefined)[] = new Array(count).fill(undefined);
  const addr = (i: number) => `127.0.0.1:${ports[i]}`;
  const list = ports.map((_, i) => addr(i)).join(',');
  const pool = new pg.Pool({ connectionString: store, max: 2 });
  // An idle connection PostgreSQL ends (its shutdown at the end) is no failure of the bench's.
  pool.on('error', () => {});

  // BENCH_CP_NODE_ARGS, as for every control plane the bench starts (bench/cmdopCluster.ts): e.g. a CPU profile of each replica.
  const nodeArgs = (process.env.BENCH_CP_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const start = async (i: number) => {
    const log = new Tail();
    const proc = procs.spawn(
      process.execPath,
      [
        ...nodeArgs, CLI, 'server', '--listen', addr(i), '--web-listen', '127.0.0.1:0', '--data-dir', path.join(dir, `replica-${i}`),
        '--store', store, '--bus', backing.nats.url, '--peer-listen', '127.0.0.1:0', ...(opts.serverArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...CMDOP_ENV, CMDOP_RELAUNCH: '0', CMDOP_CLUSTER_SECRET: secret } },
    );
    proc.stderr!.on('data', (d: Buffer) => log.push(d));
    // Printed right after "listening on": this process's replica id.
    const [, id] = await waitForLine(proc, 'stdout', /replica (\S+): other replicas forward to/, 60_000).catch((e: Error) => {
      throw new Error(`replica ${i}: ${e.message}; stderr: ${log}`);
    });
    proc.stdout!.resume();
    running[i] = { proc, id, log };
  };
  const current = (i: number): Running => {
    const r = running[i];
    if (!r) throw new Error(`replica ${i} is not running`);
    return r;
  };

  try {
    // The first one alone: it runs the migrations the others would race for.
    await start(0);
    await Promise.all(Array.from({ length: count - 1 }, (_, k) => start(k + 1)));
  } catch (e) {
    await Promise.all(running.map((r) => (r ? stop(r.proc) : undefined)));
    await pool.end();
    throw e;
  }
  const token = fs.readFileSync(path.join(dir, 'replica-0', 'admin.token'), 'utf8').trim();

  const query = async <T extends object>(sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as T[];
  return {
    addr,
    list,
    size: count,
    store,
    token,
    pid: (i) => current(i).proc.pid!,
    id: (i) => current(i).id,
    indexOf: (id) => running.findIndex((r) => r?.id === id && r.proc.exitCode === null && r.proc.signalCode === null),
    newClient: (i, o = {}) => new CmdopClient({ server: i === 'all' ? list : addr(i), token, ...o }),
    kill: (i, signal) =>
      new Promise<void>((resolve) => {
        const p = current(i).proc;
        if (p.exitCode !== null || p.signalCode !== null) return resolve();
        p.once('exit', () => resolve());
        p.kill(signal);
      }),
    start,
    async sessionRow(name) {
      const rows = await query<{ session_id: string; state: number; owner: string; epoch: number }>(
        'select session_id, state, owner, epoch from sessions where name = $1 order by created_ms desc limit 1',
        [name],
      );
      const r = rows[0];
      return r && { sessionId: r.session_id, state: Number(r.state), owner: r.owner, epoch: Number(r.epoch) };
    },
    query,
    logs: () => running.map((r, i) => `replica ${i} stderr: ${r?.log ?? '(not running)'}`).join('\n'),
    async stop() {
      await Promise.all(running.map((r) => (r ? stop(r.proc) : undefined)));
      await pool.end().catch(() => {});
    },
  };
}

/** A loopback port nothing listens on now, and not one of `taken` (bound, then released). */
async function freePortNotIn(taken: number[]): Promise<number> {
  for (;;) {
    const p = await freePort();
    if (!taken.includes(p)) return p;
  }
}
