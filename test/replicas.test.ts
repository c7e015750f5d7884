// Two control plane replicas on one PostgreSQL store and one NATS bus, as
// processes: the replica holding a session dies (or is frozen) and its agent
// goes over to the other, which takes the session over; nothing is lost, and
// what runs there goes on. A session whose agent never comes back ends once.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import tls from 'node:tls';
import pg from 'pg';
import { SessionState } from '../protocol';
import { CmdopClient } from '../sdk';
import { CLI, cliEnv, eventually, freePort, runCli, tempDir, track, waitForLine } from './helpers/cluster';
import { startPostgres, type Postgres } from './helpers/postgres';
import { startNats, type NatsServer } from './helpers/nats';

const SECRET = crypto.randomBytes(24).toString('hex');
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const runShell = (cmd: string) =>
  new Promise<void>((resolve, reject) => spawn('sh', ['-c', cmd], { stdio: 'inherit' }).once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`${cmd}: exit ${c}`)))));
const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : void p.once('exit', () => r())));

/** A command whose output takes ~`seconds`, then exits 7; and what it prints. */
function slow(lines: number, seconds: number): { cmd: string; out: Buffer } {
  const batches = 40;
  const per = Math.ceil(lines / batches);
  let s = '';
  for (let i = 1; i <= per * batches; i++) s += `${i}\n`;
  return {
    cmd: `for b in $(seq 0 ${batches - 1}); do seq $((b*${per}+1)) $((b*${per}+${per})); sleep ${(seconds / batches).toFixed(3)}; done; exit 7`,
    out: Buffer.from(s),
  };
}

describe('replicas on one store and one bus', () => {
  let db: Postgres;
  let nats: NatsServer;
  let store: string;
  let dir: string;
  const ports: number[] = [];
  const replicas: ChildProcess[] = [];
  /** What each replica printed (the tail), for a failure's message. */
  const replicaLogs: string[] = [];
  let token = '';
  /** What each agent logged, for a failure's message. */
  const logs = new Map<ChildProcess, string>();
  const list = () => ports.map((p) => `127.0.0.1:${p}`).join(',');
  const addr = (i: number) => `127.0.0.1:${ports[i]}`;

  /** Replica i (0 to 2) on its port, with its own data dir (admin token, TLS), sharing store and bus. */
  async function startReplica(i: number): Promise<ChildProcess> {
    const p = track(
      spawn(
        process.execPath,
        [CLI, 'server', '--listen', `127.0.0.1:${ports[i]}`, '--web-listen', '127.0.0.1:0', '--data-dir', path.join(dir, `r${i}`),
          '--store', store, '--bus', nats.url, '--grace-period', '12', '--heartbeat-timeout', '60', '--peer-listen', '127.0.0.1:0'],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...cliEnv(), CMDOP_RELAUNCH: '0', CMDOP_CLUSTER_SECRET: SECRET } },
      ),
    );
    replicaLogs[i] = '';
    for (const out of [p.stdout!, p.stderr!]) out.on('data', (d: Buffer) => (replicaLogs[i] = (replicaLogs[i] + d.toString()).slice(-20_000)));
    p.once('exit', (code, signal) => (replicaLogs[i] += `\n[exited: ${code ?? signal}]`));
    await waitForLine(p, /listening on/, 30_000);
    replicas[i] = p;
    return p;
  }

  async function startAgent(name: string, servers: string): Promise<ChildProcess> {
    const admin = new CmdopClient({ server: list(), token });
    const enroll = await admin.auth.createEnrollment(name);
    admin.close();
    const a = track(
      spawn(process.execPath, [CLI, 'agent', '--server', servers, '--name', name, '--state-dir', path.join(dir, `agent-${name}`),
        '--enroll-token', enroll.token, '--keepalive', '1', '--heartbeat-interval', '1'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: cliEnv(),
      }),
    );
    await waitForLine(a, /connected/, 20_000);
    logs.set(a, '');
    for (const out of [a.stdout!, a.stderr!]) out.on('data', (d: Buffer) => logs.set(a, logs.get(a)! + d.toString()));
    return a;
  }

  /** The machine's newest session row (waited for: a session's writes reach the store just behind its events). */
  const sessionRow = (name: string) =>
    eventually(async () => {
      const c = new pg.Client({ connectionString: store });
      await c.connect();
      try {
        const r = await c.query('select session_id, state, owner, epoch from sessions where name = $1 order by created_ms desc limit 1', [name]);
        return r.rows[0] as { session_id: string; state: number; owner: string; epoch: number } | undefined;
      } finally {
        await c.end();
      }
    }, 10_000, `a session row for ${name}`);

  before(async () => {
    db = await startPostgres();
    store = await db.newDatabase('cmdop_replicas');
    nats = await startNats();
    dir = tempDir();
    ports.push(await freePort(), await freePort(), await freePort());
    await Promise.all([startReplica(0), startReplica(1), startReplica(2)]);
    token = fs.readFileSync(path.join(dir, 'r0', 'admin.token'), 'utf8').trim();
  });
  after(async () => {
    for (const r of replicas) r?.kill('SIGKILL');
    await nats?.stop();
    await db?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('three replicas: the owner is killed during a 200 MB exec whose operator is attached through another replica; the sha256 matches the source', async () => {
    const agent = await startAgent('box', list());
    const before = await sessionRow('box');
    assert.equal(before.epoch, 1);
    // The agent took the first of the list: replica 0 owns the session. The client knows only replica 1.
    const source = path.join(dir, 'random.bin');
    await runShell(`head -c 200M /dev/urandom > ${source}`);
    const want = sha(fs.readFileSync(source));
    const client = new CmdopClient({ server: addr(1), token, machine: 'box' });
    try {
      const h = crypto.createHash('sha256');
      let got = 0;
      const run = client.terminal.execute(['cat', source], {
        onOutput: (d) => {
          h.update(d);
          got += d.length;
        },
      });
      await eventually(() => got > 20 * 1024 * 1024, 60_000, 'output flowing through replica 1');
      replicas[0].kill('SIGKILL');
      await exited(replicas[0]);
      const r = await run;
      assert.equal(r.exitCode, 0);
      assert.deepEqual(r.gaps, []);
      assert.equal(got, 200 * 1024 * 1024);
      assert.equal(h.digest('hex'), want, 'byte for byte');
      const now = await sessionRow('box');
      assert.equal(now.session_id, before.session_id, 'the same session');
      assert.equal(now.state, SessionState.CONNECTED);
      assert.ok(now.epoch >= 2, `taken over (epoch ${now.epoch})`);
      assert.notEqual(now.owner, before.owner);
    } finally {
      client.close();
      fs.rmSync(source, { force: true });
      agent.kill('SIGTERM');
      await exited(agent);
      await startReplica(0);
    }
  });

  it('the replica a client is attached through is killed: the client re-attaches through another, byte-exact, exit code kept', async () => {
    const agent = await startAgent('through', list());
    // Owner: replica 0. The client goes through replica 1, then 2.
    const client = new CmdopClient({ server: `${addr(1)},${addr(2)}`, token, machine: 'through' });
    try {
      const { cmd, out } = slow(300_000, 4);
      const chunks: Buffer[] = [];
      const run = client.terminal.execute(cmd, { onOutput: (d) => chunks.push(Buffer.from(d)) });
      await eventually(() => chunks.reduce((n, b) => n + b.length, 0) > 100_000, 15_000, 'output flowing');
      replicas[1].kill('SIGKILL');
      await exited(replicas[1]);
      const r = await run;
      assert.equal(r.exitCode, 7);
      assert.equal(sha(Buffer.concat(chunks)), sha(out), 'byte for byte');
      assert.equal((await sessionRow('through')).epoch, 1, 'the owner kept the session: only the way to it changed');
    } finally {
      client.close();
      agent.kill('SIGTERM');
      await exited(agent);
      await startReplica(1);
    }
  });

  it('files and unary calls through a replica that does not hold the machine; a revocation made on another replica ends the stream at once', async () => {
    const agent = await startAgent('files', list());
    const viaTwo = { server: addr(2), env: { CMDOP_TOKEN: token } };
    try {
      const local = path.join(dir, 'up.bin');
      fs.writeFileSync(local, crypto.randomBytes(3 * 1024 * 1024 + 17));
      const remote = path.join(dir, 'remote-copy.bin');
      const up = await runCli(['cp', local, `files:${remote}`], viaTwo);
      assert.equal(up.code, 0, up.stderr.toString());
      assert.equal(sha(fs.readFileSync(remote)), sha(fs.readFileSync(local)));
      const back = path.join(dir, 'back.bin');
      const down = await runCli(['cp', `files:${remote}`, back], viaTwo);
      assert.equal(down.code, 0, down.stderr.toString());
      assert.equal(sha(fs.readFileSync(back)), sha(fs.readFileSync(local)));
      const ls = await runCli(['ls', `files:${dir}`], viaTwo);
      assert.equal(ls.code, 0, ls.stderr.toString());
      assert.match(ls.stdout.toString(), /remote-copy\.bin/);
      const missing = await runCli(['ls', `files:${dir}/nope`], viaTwo);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr.toString(), /nope/, 'the owner\'s error, passed on as it was');

      // A token of its own, attached through replica 2, revoked through replica 1.
      const admin = new CmdopClient({ server: addr(1), token });
      const issued = await admin.auth.createToken('revoked-soon');
      const user = new CmdopClient({ server: addr(2), token: issued.token, machine: 'files' });
      try {
        const shell = await user.terminal.open();
        // The machine list through a replica that does not hold it: live figures, from the holder.
        const seen = (await admin.machines.list()).find((m) => m.name === 'files');
        assert.ok(seen?.lastHeartbeat, `the agent's heartbeat figures: ${JSON.stringify(seen)}`);
        assert.deepEqual(seen.terminals.map((t) => t.terminalId), [shell.terminalId]);
        const ended = shell.done.then(() => new Error('ended without an error'), (e: Error) => e);
        const t0 = Date.now();
        await admin.auth.revokeToken(issued.info!.id);
        const e = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
        assert.ok(e, 'the stream through replica 2 ended within 5 s');
        assert.match(e.message, /revoked/);
        assert.ok(Date.now() - t0 < 5000);
      } finally {
        user.close();
        admin.close();
      }
    } finally {
      agent.kill('SIGTERM');
      await exited(agent);
    }
  });

  it('the owner is killed mid-upload through another replica: the transfer resumes and the MD5 matches', async () => {
    const agent = await startAgent('upl', list());
    const src = path.join(dir, 'upload-src.bin');
    await runShell(`head -c 300M /dev/urandom > ${src}`);
    const destDir = fs.mkdtempSync(path.join(dir, 'dest-'));
    const dest = path.join(destDir, 'copy.bin');
    try {
      // Owner: replica 0; the upload goes through replicas 1 and 2.
      const client = new CmdopClient({ server: `${addr(1)},${addr(2)}`, token, machine: 'upl' });
      try {
        const up = client.files.upload(src, dest);
        // The partial file (hidden, in the destination's directory) has grown: the owner is mid-upload.
        const written = () => fs.readdirSync(destDir).reduce((n, f) => n + fs.statSync(path.join(destDir, f)).size, 0);
        await eventually(() => written() > 30 * 1024 * 1024, 60_000, 'the upload under way');
        replicas[0].kill('SIGKILL');
        await exited(replicas[0]);
        const r = await up;
        assert.ok(r.resumes >= 1, `resumed (${r.resumes} times), not started again`);
        assert.equal(r.size, 300 * 1024 * 1024);
      } finally {
        client.close();
      }
      const md5 = (f: string) => crypto.createHash('md5').update(fs.readFileSync(f)).digest('hex');
      assert.equal(md5(dest), md5(src));
      assert.deepEqual(fs.readdirSync(destDir), ['copy.bin'], 'no partial file left behind');
    } finally {
      fs.rmSync(src, { force: true });
      fs.rmSync(destDir, { recursive: true, force: true });
      agent.kill('SIGTERM');
      await exited(agent);
      await startReplica(0);
    }
  });

  it('a rolling restart of every replica (SIGTERM, start again, next) under load loses no session and no byte', async () => {
    const names = ['roll-a', 'roll-b'];
    const agents = await Promise.all(names.map((n) => startAgent(n, list())));
    const before = await Promise.all(names.map((n) => sessionRow(n)));
    const clients = names.map((machine) => new CmdopClient({ server: list(), token, machine }));
    try {
      const { cmd, out } = slow(200_000, 14);
      const chunks = names.map(() => [] as Buffer[]);
      const runs = clients.map((c, i) => c.terminal.execute(cmd, { onOutput: (d) => chunks[i].push(Buffer.from(d)) }));
      await eventually(() => chunks.every((c) => c.length > 0), 15_000, 'output flowing');
      for (const i of [0, 1, 2]) {
        const r = replicas[i];
        r.kill('SIGTERM');
        await exited(r);
        await startReplica(i);
      }
      const results = await Promise.all(runs);
      for (const [i, r] of results.entries()) {
        assert.equal(r.exitCode, 7, names[i]);
        assert.equal(sha(Buffer.concat(chunks[i])), sha(out), `${names[i]}: byte for byte`);
      }
      for (const [i, n] of names.entries()) {
        const now = await sessionRow(n);
        assert.equal(now.session_id, before[i].session_id, `${n}: the same session`);
        assert.equal(now.state, SessionState.CONNECTED, n);
      }
    } finally {
      for (const c of clients) c.close();
      for (const a of agents) a.kill('SIGTERM');
      await Promise.all(agents.map(exited));
    }
  });

  it('PostgreSQL restarts, NATS dies and comes back: the replicas go on, and a revocation made while NATS was down applies within seconds', async () => {
    const agent = await startAgent('resync', list());
    const admin = new CmdopClient({ server: addr(1), token });
    try {
      await db.restart();
      // Every replica serves again (pooled connections to the old server are replaced as they fail).
      for (const i of [0, 1, 2]) {
        let last = '';
        const r = await eventually(async () => {
          const x = await runCli(['exec', 'resync', '--', 'echo', `after-pg-${i}`], { server: addr(i), env: { CMDOP_TOKEN: token } });
          last = x.stderr.toString();
          return x.code === 0 ? x : undefined;
        }, 30_000, `replica ${i} serving after the PostgreSQL restart`).catch(async (e: Error) => {
          const c = new pg.Client({ connectionString: store });
          await c.connect();
          const t = await c.query("select t.from_state, t.to_state, t.reason, t.at_ms from session_transitions t join sessions s using (session_id) where s.name = 'resync' order by t.id");
          await c.end();
          throw new Error(`${e.message}; it said: ${last}; transitions: ${JSON.stringify(t.rows)}; replicas printed: ${replicaLogs.map((l) => l.slice(-1500)).join('\n---\n')}`);
        });
        assert.equal(r.stdout.toString(), `after-pg-${i}\n`);
      }
      assert.equal((await sessionRow('resync')).epoch, 1, 'the session stayed where it was');

      await nats.kill();
      const issued = await admin.auth.createToken('revoked-without-bus');
      const user = new CmdopClient({ server: addr(2), token: issued.token, machine: 'resync' });
      try {
        const shell = await user.terminal.open();
        const ended = shell.done.then(() => new Error('ended without an error'), (e: Error) => e);
        await admin.auth.revokeToken(issued.info!.id);
        const e = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
        assert.ok(e, 'the stream on replica 2 ended within 5 s, the bus being down');
        assert.match(e.message, /revoked/);
      } finally {
        user.close();
      }
      await nats.start();
      const r = await runCli(['exec', 'resync', '--', 'echo', 'after-nats'], { server: addr(2), env: { CMDOP_TOKEN: token } });
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), 'after-nats\n');
    } finally {
      admin.close();
      agent.kill('SIGTERM');
      await exited(agent);
    }
  });

  it('a replica frozen past its liveness window and woken up never serves its session again', async (t) => {
    const agent = await startAgent('frozen', list());
    t.after(async () => {
      agent.kill('SIGTERM');
      await exited(agent);
    });
    const first = await sessionRow('frozen');
    const holder = replicas[0];
    let moved = first;
    holder.kill('SIGSTOP');
    try {
      // Its agent notices (keepalive 1 s) and goes to the other replica, which takes the session over.
      await eventually(async () => (await sessionRow('frozen')).epoch > first.epoch, 30_000, 'the session taken over').catch((e: Error) => {
        throw new Error(`${e.message}; the agent logged:\n${logs.get(agent)}`);
      });
      moved = await sessionRow('frozen');
      assert.equal(moved.state, SessionState.CONNECTED);
      assert.equal(moved.session_id, first.session_id);
    } finally {
      holder.kill('SIGCONT');
    }
    // Woken up, it learns it lost the session (the bus, or its next write
    // finds the epoch moved on): a client reaching it is forwarded to the
    // replica that holds the session now, never served from what it held.
    await new Promise((r) => setTimeout(r, 2000));
    const viaOld = await runCli(['exec', 'frozen', '--', 'echo', 'hi'], { server: `127.0.0.1:${ports[0]}`, env: { CMDOP_TOKEN: token } });
    assert.equal(viaOld.code, 0, viaOld.stderr);
    assert.equal(viaOld.stdout.toString(), 'hi\n');
    const admin = new CmdopClient({ server: list(), token });
    // The holder writes its audit rows in batches: they reach the shared store within a moment.
    const opened = await eventually(async () => {
      const o = (await admin.auth.audit({ machine: 'frozen' })).filter((e) => e.action === 'open');
      return o.length ? o : undefined;
    }, 10_000, 'the open audited');
    admin.close();
    assert.match(opened.at(-1)?.peer ?? '', / via replica /, `served by the holder, forwarded by the woken replica: ${JSON.stringify(opened.at(-1))}`);
    const last = await sessionRow('frozen');
    assert.deepEqual([last.owner, last.epoch], [moved.owner, moved.epoch], 'still held by the replica that took it over, the woken one took nothing back');
  });

  it('a replica frozen long enough to be taken for dead, whose agent stays: on waking it gives up what the store swept, and the agent takes it back', async () => {
    // Knows only replica 0, and its keepalive (25 s) outlasts the freeze: it does not move.
    const a = track(
      spawn(process.execPath, [CLI, 'agent', '--server', addr(0), '--name', 'stays', '--state-dir', path.join(dir, 'agent-stays'),
        '--enroll-token', (await (async () => {
          const admin = new CmdopClient({ server: list(), token });
          try {
            return (await admin.auth.createEnrollment('stays')).token;
          } finally {
            admin.close();
          }
        })())], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() }),
    );
    try {
      await waitForLine(a, /connected/, 20_000);
      const before = await sessionRow('stays');
      replicas[0].kill('SIGSTOP');
      // The others sweep its sessions (owner gone, GRACE_PERIOD) once its heartbeat is 5 s old.
      await eventually(async () => (await sessionRow('stays')).state === SessionState.GRACE_PERIOD, 20_000, 'swept to GRACE_PERIOD');
      replicas[0].kill('SIGCONT');
      // Its late heartbeat: it gives the session up, the agent resumes, and the session is held again (a new epoch).
      const back = await eventually(async () => {
        const r = await sessionRow('stays');
        return r.state === SessionState.CONNECTED && r.epoch > before.epoch ? r : undefined;
      }, 30_000, 'CONNECTED again under a new epoch');
      assert.equal(back.session_id, before.session_id);
      // And it stays so past the grace period it was swept into.
      await new Promise((r) => setTimeout(r, 13_000));
      assert.equal((await sessionRow('stays')).state, SessionState.CONNECTED);
      const r = await runCli(['exec', 'stays', '--', 'echo', 'still-here'], { server: addr(1), env: { CMDOP_TOKEN: token } });
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), 'still-here\n');
    } finally {
      replicas[0].kill('SIGCONT');
      a.kill('SIGTERM');
      await exited(a);
    }
  });

  it('a replica dies and its agent never comes back: the session ends once, after the grace period, through the other replica', async () => {
    // This agent knows only replica 0: it cannot go over.
    const agent = await startAgent('lonely', `127.0.0.1:${ports[0]}`);
    const row = await sessionRow('lonely');
    replicas[0].kill('SIGKILL');
    await exited(replicas[0]);
    agent.kill('SIGKILL');
    const ended = await eventually(async () => {
      const r = await sessionRow('lonely');
      return r.state === SessionState.DISCONNECTED ? r : undefined;
    }, 60_000, 'DISCONNECTED');
    assert.equal(ended.session_id, row.session_id);
    const c = new pg.Client({ connectionString: store });
    await c.connect();
    try {
      const t = await c.query('select from_state, to_state, reason from session_transitions where session_id = $1 order by id', [row.session_id]);
      const states = t.rows.map((x: { to_state: number }) => x.to_state);
      assert.equal(states.filter((s: number) => s === SessionState.DISCONNECTED).length, 1, `ended exactly once: ${JSON.stringify(t.rows)}`);
      assert.ok(states.includes(SessionState.GRACE_PERIOD), 'through its grace period');
    } finally {
      await c.end();
    }
    const m = (await runCli(['machines', '--json'], { server: `127.0.0.1:${ports[1]}`, env: { CMDOP_TOKEN: token } })).stdout.toString();
    assert.match(m, /lonely/);
    await startReplica(0);
  });
});

describe('replicas with TLS: the peer link is TLS too, pinned to the certificate each replica recorded in the store', () => {
  let db: Postgres;
  let nats: NatsServer;
  let store: string;
  let dir: string;
  const addrs: string[] = [];
  const procs: ChildProcess[] = [];
  before(async () => {
    db = await startPostgres();
    store = await db.newDatabase('cmdop_replicas_tls');
    nats = await startNats();
    dir = tempDir();
    for (const i of [0, 1]) {
      const port = await freePort();
      // Each its own data dir, so each its own self-signed certificate: the link must pin the right one.
      const p = track(
        spawn(process.execPath, [CLI, 'server', '--listen', `127.0.0.1:${port}`, '--web-listen', '127.0.0.1:0', '--data-dir', path.join(dir, `r${i}`),
          '--tls', '--store', store, '--bus', nats.url, '--peer-listen', '127.0.0.1:0'], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...cliEnv(), CMDOP_RELAUNCH: '0', CMDOP_CLUSTER_SECRET: SECRET },
        }),
      );
      await waitForLine(p, /listening on/, 30_000);
      procs.push(p);
      addrs.push(`grpcs://127.0.0.1:${port}`);
    }
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await nats?.stop();
    await db?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an exec through the replica that does not hold the machine; the peer port presents the certificate the store holds for it', async () => {
    const env = { CMDOP_TOKEN: fs.readFileSync(path.join(dir, 'r0', 'admin.token'), 'utf8').trim() };
    const enroll = await runCli(['agents', 'enroll', '--name', 'tlsbox'], { server: addrs[0], env });
    assert.equal(enroll.code, 0, enroll.stderr.toString());
    const agent = track(
      spawn(process.execPath, [CLI, 'agent', '--server', addrs[0], '--name', 'tlsbox', '--state-dir', path.join(dir, 'agent'), '--enroll-token', enroll.stdout.toString().trim()], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: cliEnv(undefined, { CMDOP_TOKEN: '' }),
      }),
    );
    try {
      await waitForLine(agent, /connected/, 20_000);
      const r = await runCli(['exec', 'tlsbox', '--', 'echo', 'over-tls'], { server: addrs[1], env });
      assert.equal(r.code, 0, r.stderr.toString());
      assert.equal(r.stdout.toString(), 'over-tls\n');
      const c = new pg.Client({ connectionString: store });
      await c.connect();
      const rows = (await c.query('select peer, peer_cert from replicas')).rows as { peer: string; peer_cert: string }[];
      await c.end();
      assert.equal(rows.length, 2);
      for (const row of rows) {
        assert.match(row.peer_cert, /BEGIN CERTIFICATE/);
        const [host, port] = [row.peer.slice(0, row.peer.lastIndexOf(':')), Number(row.peer.slice(row.peer.lastIndexOf(':') + 1))];
        const presented = await new Promise<string>((resolve, reject) => {
          const s = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
            resolve(s.getPeerX509Certificate()!.fingerprint256);
            s.destroy();
          });
          s.once('error', reject);
        });
        assert.equal(presented, new crypto.X509Certificate(row.peer_cert).fingerprint256);
      }
    } finally {
      agent.kill('SIGTERM');
      await exited(agent);
    }
  });
});
