// `npm run cluster`: a CMDOP cluster on this one machine, to try replicas
// out (or show them) without a fleet: a throwaway PostgreSQL (the store)
// and nats-server (the bus), N control-plane replicas sharing them, HAProxy
// in TCP mode in front of their gRPC ports, and an agent for this machine
// enrolled through HAProxy. It prints where to point the CLI and a console
// link, and stays in the foreground: Ctrl-C (or SIGTERM, SIGHUP) stops
// everything in order and removes what it made.
//
// Why a supervisor of processes, not one process: a replica must be free
// to die alone (that is what replicas are for), and each runs exactly as
// `cmdop server` runs in production. Why it stops everything when one of
// them dies anyway: nobody restarts it here, and a cluster quietly missing
// a replica (or its store) would show behaviour nobody asked to see.
import { Command, InvalidArgumentError } from 'commander';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CmdopClient } from '../sdk';
import { SERVER_NODE_FLAGS } from '../cli/relaunch';
import { defaultMachineName } from '../lib/paths';
import { nameError } from '../protocol/limits';
import { postgresBin, startPostgres, type Postgres } from './postgres';
import { freePort, natsServerBin, startNats, type NatsServer } from './nats';
import { haproxyBin, startHaproxy } from './haproxy';
import { how, supervise, type Supervised } from './proc';

const CLI = path.join(__dirname, '..', '..', 'bin', 'cmdop.js');
const DEFAULT_PORT = 7430;
/** How long a replica or the agent may take to be ready: three Node processes starting at once on a busy 2-core machine take seconds, not minutes. */
const READY_MS = 90_000;

export interface ClusterOptions {
  replicas: number;
  port: number;
  name: string;
  keep: boolean;
}

interface Replica {
  n: number;
  proc: Supervised;
  address: string;
  webUrl: string;
  adminTokenFile: string;
}

/** The ports of a base: HAProxy first, then each replica's gRPC, web (console) and peer ports, in three runs. */
function layout(base: number, n: number): { front: number; grpc: number[]; web: number[]; peer: number[] } {
  const run = (from: number) => Array.from({ length: n }, (_, i) => (base === 0 ? 0 : from + i));
  return { front: base, grpc: run(base + 1), web: run(base + 1 + n), peer: run(base + 1 + 2 * n) };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

class Launcher {
  private pg?: Postgres;
  private nats?: NatsServer;
  private readonly replicas: Replica[] = [];
  private readonly procs: Supervised[] = [];
  private haproxy?: Supervised;
  private agent?: Supervised;
  /** Starts whose processes are not ours to see until they resolve (PostgreSQL, NATS, HAProxy): shutdown waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private stopping?: Promise<never>;
  /** A progress line is open ("starting X… " without its "ok"). */
  private midLine = false;
  /** The console's token, revoked on stop when the store outlives this run (--keep). */
  private consoleTokenId = '';

  constructor(
    private readonly o: ClusterOptions,
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  private out(s: string): void {
    process.stdout.write(s);
    this.midLine = !s.endsWith('\n');
  }

  /** One start-up step, with its progress line; a failure stops everything. */
  private async step<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.stopping) return this.stopping;
    const t = performance.now();
    this.out(`${what}… `);
    try {
      const v = await fn();
      if (this.stopping) return this.stopping;
      this.out(`ok (${secs(performance.now() - t)})\n`);
      return v;
    } catch (e) {
      // Interrupted (Ctrl-C stopped what this step waited on): not a failure.
      if (this.stopping) return this.stopping;
      this.out('failed\n');
      return this.shutdown(1, (e as Error).message);
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const done = () => this.inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /** The end of a child's log, and where the whole is if it outlives this run. */
  private logTail(p: Supervised): string {
    return (this.o.keep ? `(all of it: ${p.logFile})\n` : '') + p.tail();
  }

  /** Reports a child's unexpected exit and stops the rest. */
  private watch(name: string, proc: { pid: number | undefined; onExit: Supervised['onExit'] }, log?: () => string): void {
    const pid = proc.pid;
    proc.onExit((code, signal) => {
      const tail = log ? `; the end of its log:\n${log()}` : '';
      void this.shutdown(1, `${name} (pid ${pid}) exited unexpectedly (${how(code, signal)}); stopping everything${tail}`);
    });
  }

  private supervise(name: string, file: string, args: string[], env: NodeJS.ProcessEnv): Supervised {
    const p = supervise(name, process.execPath, args, { env, logFile: path.join(this.dir, file) });
    this.procs.push(p);
    this.watch(name, p, () => this.logTail(p));
    return p;
  }

  async start(): Promise<void> {
    const { o, dir } = this;
    const ports = layout(o.port, o.replicas);
    const t0 = performance.now();

    const pg = await this.step('starting PostgreSQL', () =>
      // Its directory inside ours: one place to remove (or keep), logs and all.
      this.track(startPostgres({ parent: dir, keep: o.keep, detached: true }).then((pg) => (this.pg = pg))),
    );
    this.watch('PostgreSQL', pg);
    const store = await this.step('creating the store database', () => pg.newDatabase('cmdop'));

    const nats = await this.step('starting NATS', () => this.track(startNats({ detached: true }).then((n) => (this.nats = n))));
    this.watch('nats-server', nats);

    // A secret of this run: the replicas admit one another's peer calls with it.
    const secret = crypto.randomBytes(32).toString('hex');
    const replicas = await this.step(`starting ${o.replicas} control-plane replica${o.replicas > 1 ? 's' : ''}`, () =>
      Promise.all(
        Array.from({ length: o.replicas }, async (_, i): Promise<Replica> => {
          const n = i + 1;
          const dataDir = path.join(dir, `replica-${n}`);
          // Node with the heap flags `cmdop server` would relaunch itself
          // with (cli/relaunch.ts), so it runs as one process: our signals
          // reach the control plane itself.
          const proc = this.supervise(`replica ${n}`, `replica-${n}.log`, [
            ...SERVER_NODE_FLAGS, CLI, 'server',
            '--listen', `127.0.0.1:${ports.grpc[i]}`,
            '--web-listen', `127.0.0.1:${ports.web[i]}`,
            '--peer-listen', `127.0.0.1:${ports.peer[i]}`,
            '--data-dir', dataDir,
            '--store', store,
            '--bus', nats.url,
          ], { ...this.env, CMDOP_CLUSTER_SECRET: secret });
          const m = await proc.waitFor(/listening on (\S+)[^]*?console and sign-in: (\S+?)\/?\s+admin token: (\S+)/, READY_MS);
          const r: Replica = { n, proc, address: m[1], webUrl: m[2], adminTokenFile: m[3] };
          this.replicas[i] = r;
          return r;
        }),
      ),
    );

    const frontPort = o.port === 0 ? await freePort() : ports.front;
    const front = `127.0.0.1:${frontPort}`;
    const haproxy = await this.step('starting HAProxy', () =>
      this.track(
        startHaproxy({
          bind: front,
          backends: replicas.map((r) => ({ name: `replica-${r.n}`, address: r.address, webPort: Number(new URL(r.webUrl).port) })),
          dir,
          env: this.env,
        }).then((h) => (this.haproxy = h)),
      ),
    );
    this.procs.push(haproxy);
    this.watch('HAProxy', haproxy, () => this.logTail(haproxy));

    // The documented way: an admin's token, an enrollment for the machine,
    // and `cmdop agent --enroll-token` (given in the environment here, so
    // that it is not in `ps` for the minutes it stays valid).
    const tokenFile = replicas[0].adminTokenFile;
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    const consoleToken = await this.step(`starting the agent for ${o.name}`, async () => {
      const client = new CmdopClient({ server: front, token });
      try {
        const enroll = await client.auth.createEnrollment(o.name, 600);
        const agent = this.supervise('the agent', 'agent.log', [
          CLI, 'agent', '--server', front, '--name', o.name, '--state-dir', path.join(dir, 'agent'),
        ], { ...this.env, CMDOP_ENROLL_TOKEN: enroll.token });
        this.agent = agent;
        await agent.waitFor(/connected to/, READY_MS);
        // The console signed in as the admin, as `cmdop up` does: an API
        // token in the link's fragment (browsers never send it to a
        // server), for 12 h.
        const issued = await client.auth.createToken('console (npm run cluster)', 12 * 3600);
        this.consoleTokenId = issued.info?.id ?? '';
        return issued.token;
      } finally {
        client.close();
      }
    });

    const list = replicas.map((r) => r.address).join(',');
    const env = `CMDOP_SERVER=${front} CMDOP_TOKEN=$(cat ${tokenFile})`;
    this.out(
      [
        ``,
        `CMDOP cluster is up (${secs(performance.now() - t0)}).`,
        `  address      ${front}   (HAProxy, TCP mode, before the ${o.replicas} replica${o.replicas > 1 ? 's' : ''})`,
        `  or the list  ${list}`,
        `  replicas     ${replicas.map((r) => `${r.n}: ${r.address} (console ${r.webUrl})`).join('\n               ')}`,
        `  store        ${store}`,
        `  bus          ${nats.url}`,
        `  agent        ${o.name}`,
        `  admin token  ${tokenFile}`,
        `  directory    ${dir}   (logs: *.log; ${o.keep ? 'kept' : 'removed'} when it stops)`,
        ``,
        `Console: ${replicas[0].webUrl}/#token=${consoleToken}`,
        `  (replica 1's web port; signs you in as admin for 12 h${o.keep ? ', until Ctrl-C' : ''}; do not share this link)`,
        ``,
        `Next, in another terminal:`,
        `  export ${env}`,
        `  npx cmdop machines`,
        `  npx cmdop exec ${o.name} -- uname -a`,
        `  npx cmdop --server ${list} connect ${o.name}`,
        ``,
        `Ctrl-C stops everything.`,
        ``,
      ].join('\n'),
    );
  }

  /** Stops everything (once; later calls get the same promise) and exits with `code`. */
  shutdown(code: number, error?: string): Promise<never> {
    this.stopping ??= (async () => {
      if (this.midLine) this.out('\n');
      if (error) process.stderr.write(`cmdop cluster: ${error}\n`);
      const t = performance.now();
      this.out('stopping everything… ');
      await Promise.allSettled([...this.inFlight]);
      const problems: string[] = [];
      const quietly = async (what: string, p: Promise<unknown> | undefined) => {
        try {
          await p;
        } catch (e) {
          problems.push(`${what}: ${(e as Error).message}`);
        }
      };
      if (this.o.keep && this.consoleTokenId) await quietly('revoking the console token', this.revokeConsoleToken());
      // The agent first (it would only reconnect), then the way in, the
      // replicas (they drain), and last what they stand on.
      await quietly('the agent', this.agent?.stop());
      await quietly('HAProxy', this.haproxy?.stop());
      await Promise.all(this.procs.filter((p) => p !== this.agent && p !== this.haproxy).map((p) => quietly(p.name, p.stop())));
      await quietly('nats-server', this.nats?.stop());
      await quietly('PostgreSQL', this.pg?.stop());
      if (!this.o.keep) await quietly(`removing ${this.dir}`, fs.promises.rm(this.dir, { recursive: true, force: true }));
      this.out(`done (${secs(performance.now() - t)})\n`);
      if (this.o.keep) this.out(`kept ${this.dir}\n`);
      for (const p of problems) process.stderr.write(`cmdop cluster: stopping ${p}\n`);
      process.exit(problems.length > 0 && code === 0 ? 1 : code);
    })();
    return this.stopping;
  }

  private async revokeConsoleToken(): Promise<void> {
    const r = this.replicas.find((x) => x?.proc.proc.exitCode === null);
    if (!r) return;
    const client = new CmdopClient({ server: r.address, token: fs.readFileSync(r.adminTokenFile, 'utf8').trim() });
    try {
      await Promise.race([
        client.auth.revokeToken(this.consoleTokenId),
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000).unref()),
      ]);
    } finally {
      client.close();
    }
  }

  /** Last resort (an exception of ours): no child outlives this process. */
  killAll(): void {
    for (const p of this.procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  }
}

function intIn(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new InvalidArgumentError(`Give a whole number from ${min} to ${max}.`);
    return n;
  };
}

function machineName(v: string): string {
  const bad = nameError('machine name', v);
  if (bad) throw new InvalidArgumentError(bad);
  return v;
}

export function program(): Command {
  return new Command()
    .name('npm run cluster --')
    .description(
      'A CMDOP cluster on this machine: a throwaway PostgreSQL (the store) and nats-server (the bus), ' +
        'control-plane replicas sharing them, HAProxy in TCP mode before their gRPC ports (one address), ' +
        'and an agent for this machine enrolled through it. Prints the address, the admin token file and a console link; ' +
        'Ctrl-C stops everything and removes its directory.',
    )
    .option('--replicas <n>', 'control-plane replicas', intIn(1, 9), 3)
    .option(
      '--port <port>',
      "HAProxy's port; the replicas take the ports after it: gRPC PORT+1..PORT+N, web (console) PORT+N+1..PORT+2N, peer PORT+2N+1..PORT+3N (0: free ports anywhere)",
      intIn(0, 65535),
      DEFAULT_PORT,
    )
    .option('--name <name>', "the agent's machine name", machineName, defaultMachineName())
    .option('--keep', 'keep the directory (logs, data dirs, PostgreSQL\'s data) after stopping, and say where')
    .addHelpText(
      'after',
      '\nNeeds Debian\'s postgresql, nats-server and haproxy packages\n' +
        '(sudo apt-get install postgresql nats-server haproxy). As root, PostgreSQL runs\n' +
        'as the `postgres` user. Everything listens on 127.0.0.1 only.\n' +
        '\nExamples:\n' +
        '  npm run cluster\n' +
        '  npm run cluster -- --replicas 2 --port 7530\n' +
        '  node dist/devcluster/main.js --port 0 --keep     (built already; any free ports; keep the logs)\n',
    )
    .showHelpAfterError('(--help lists the options)');
}

export async function main(argv: string[] = process.argv): Promise<void> {
  const cmd = program().parse(argv);
  const given = cmd.opts<Omit<ClusterOptions, 'keep'> & { keep?: boolean }>();
  const o: ClusterOptions = { ...given, keep: !!given.keep };
  const fail = (msg: string): never => {
    process.stderr.write(`cmdop cluster: ${msg}\n`);
    process.exit(1);
  };
  if (o.port !== 0 && o.port + 3 * o.replicas > 65535) fail(`--port ${o.port} leaves no room for ${3 * o.replicas} ports after it`);
  // Everything missing, said at once, before anything starts.
  const missing = [postgresBin, natsServerBin, haproxyBin].flatMap((find) => {
    try {
      find();
      return [];
    } catch (e) {
      return [(e as Error).message];
    }
  });
  if (missing.length > 0) fail(missing.join('\n'));
  if (o.port !== 0) {
    const { front, grpc, web, peer } = layout(o.port, o.replicas);
    for (const p of [front, ...grpc, ...web, ...peer]) {
      if (!(await bindable(p))) fail(`127.0.0.1:${p} is in use (another \`npm run cluster\`? \`cmdop up\`?): choose other ports with --port BASE, or --port 0`);
    }
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-cluster-'));
  // The children must not act on this shell's sign-in: each is given what it needs.
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['CMDOP_SERVER', 'CMDOP_TOKEN', 'CMDOP_ENROLL_TOKEN', 'CMDOP_CLUSTER_SECRET']) delete env[k];
  const launcher = new Launcher(o, dir, env);
  // on, not once: under npm a Ctrl-C reaches this process twice (the
  // terminal's, and the one npm passes on); shutdown() runs once.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void launcher.shutdown(0));
  process.once('exit', () => launcher.killAll());
  await launcher.start();
}

if (require.main === module) {
  main().catch((e: Error) => {
    process.stderr.write(`cmdop cluster: ${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
