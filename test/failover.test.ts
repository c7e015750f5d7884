// Several control plane addresses: `--server A,B,C`, CMDOP_SERVER=A,B,C and
// the SDK's `server: [...]` go to the first that answers and over to the
// next when it fails (lib/listResolver.ts); one load balancer's address
// works too. The control plane that takes over here is a second process on
// another port and the same data directory, a stand-in for a replica (the
// real replicas share a store later): it restores the sessions in their
// grace period and the agent resumes them, as after a restart
// (test/restart.test.ts).
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseServerAddress, parseServerList } from '../lib/serverAddress';
import { SessionState } from '../protocol';
import { CmdopClient } from '../sdk';
import { CLI, Cluster, cliEnv, eventually, freePort, runCli, startCluster, tempDir, track, waitForLine } from './helpers/cluster';

/** A command whose output takes ~`seconds` to come out, then exits 7: what it prints is `expected(lines)`. */
function slowCommand(lines: number, seconds: number): string {
  const per = Math.ceil(lines / 40);
  return `for b in $(seq 0 39); do seq $((b*${per}+1)) $((b*${per}+${per})); sleep ${(seconds / 40).toFixed(3)}; done; exit 7`;
}
function expected(lines: number): Buffer {
  const per = Math.ceil(lines / 40);
  let s = '';
  for (let i = 1; i <= per * 40; i++) s += `${i}\n`;
  return Buffer.from(s);
}
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${Math.round(x)} ms`;

describe('parsing a server list', () => {
  it('one address is exactly what it was', () => {
    for (const one of ['127.0.0.1:7420', ' grpcs://cp.example.com:7420 ', '[::1]:9', 'https://cp.example.com', 'grpc://h:1/']) {
      const a = parseServerAddress(one);
      assert.deepEqual(parseServerList(one), { entries: [a], tls: a.tls, target: a.target, display: a.display });
      assert.deepEqual(parseServerList([one]), parseServerList(one));
    }
  });

  it('several: each entry parsed as one, in order; a gRPC target of its own; the display joined by commas', () => {
    const l = parseServerList('a.example:1, 10.0.0.2:2 ,[::1]:3');
    assert.deepEqual(l.entries.map((e) => e.display), ['a.example:1', '10.0.0.2:2', '[::1]:3']);
    assert.equal(l.tls, false);
    assert.equal(l.target, 'cmdop-list:///a.example:1,10.0.0.2:2,[::1]:3');
    assert.equal(l.display, 'a.example:1,10.0.0.2:2,[::1]:3');
    assert.deepEqual(parseServerList(['a.example:1', '10.0.0.2:2,[::1]:3']), l);
    const t = parseServerList('grpcs://a.example:1,https://b.example');
    assert.equal(t.tls, true);
    assert.equal(t.display, 'grpcs://a.example:1,grpcs://b.example:7420');
    assert.equal(t.target, 'cmdop-list:///a.example:1,b.example:7420');
    // The display parses back to the same list (it is the key of stored logins).
    assert.deepEqual(parseServerList(t.display), t);
  });

  it('TLS and plaintext mixed are refused, saying which is which', () => {
    assert.throws(() => parseServerList('grpcs://a:1,b:2'), /mixes TLS and plaintext: grpcs:\/\/a:1 uses TLS, b:2 does not/);
    assert.throws(() => parseServerList('a:1,grpc://b:2,https://c:3'), /mixes TLS and plaintext/);
  });

  it('an address twice is refused, however it is written', () => {
    assert.throws(() => parseServerList('a:1,b:2,A:1'), /names a:1 twice \(as "A:1" too\)/);
    assert.throws(() => parseServerList('a:1,grpc://a:1'), /names a:1 twice/);
    assert.throws(() => parseServerList('grpcs://h:7420,https://h'), /names grpcs:\/\/h:7420 twice/);
  });

  it('empty and malformed entries are refused', () => {
    assert.throws(() => parseServerList('a:1,,b:2'), /empty entry/);
    assert.throws(() => parseServerList('a:1,'), /empty entry/);
    assert.throws(() => parseServerList('a:1,b'), /"b" must be HOST:PORT/);
    assert.throws(() => parseServerList('a:1,ftp://b:2'), /scheme must be/);
  });
});

describe('a list whose first address is dead', () => {
  let c: Cluster;
  let list: string;
  let client: CmdopClient;
  before(async () => {
    c = await startCluster({ agent: false });
    list = `127.0.0.1:${await freePort()},${c.server}`;
    await c.startAgent('box', ['--server', list]);
    client = new CmdopClient({ server: list.split(','), token: c.token, machine: 'box' });
  });
  after(async () => {
    client.close();
    await c.stop();
  });

  it('the agent, an SDK client and the CLI reach the live one', async () => {
    const box = (await client.machines.list()).find((m) => m.name === 'box');
    assert.equal(box?.state, SessionState.CONNECTED);
    const r = await client.terminal.execute('echo over-$((40+2)); exit 3');
    assert.equal(r.stdout, 'over-42\n');
    assert.equal(r.exitCode, 3);

    const cli = await runCli(['exec', 'box', '--', 'echo cli-$((6*7))'], { server: list, env: { CMDOP_TOKEN: c.token } });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout.toString(), 'cli-42\n');
    const env = await runCli(['machines', '--json'], { env: { CMDOP_SERVER: list, CMDOP_TOKEN: c.token } });
    assert.equal(env.code, 0, env.stderr);
    assert.equal(JSON.parse(env.stdout.toString()).find((m: { name: string }) => m.name === 'box').state, 'CONNECTED');
  });

  it('a list where nothing answers says so, naming it', async () => {
    const dead = `127.0.0.1:${await freePort()},127.0.0.1:${await freePort()}`;
    const r = await runCli(['machines'], { server: dead, env: { CMDOP_TOKEN: c.token } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot reach the control plane at ${dead.replace(/\./g, '\\.')}`));
  });
});

interface Round {
  /** SIGKILL → the next control plane listening (its start-up: not ours to speed up). */
  listening: number;
  /** SIGKILL → the agent's "session … connected via" line for the next one. */
  agent: number;
  /** SIGKILL → the first byte of the exec's output from the next one. */
  output: number;
}

/**
 * One failover while an SDK exec streams: kill the current control plane,
 * start the next on `next` (same data dir), and check the exec's bytes, its
 * exit code, and that the agent resumed the same session there.
 */
async function failoverRound(c: Cluster, agent: ChildProcess, client: CmdopClient, next: string, session: string, via?: string): Promise<Round> {
  const LINES = 300_000; // ~2 MB over ~5 s
  const chunks: Array<{ t: number; b: Buffer }> = [];
  const run = client.terminal.execute(slowCommand(LINES, 5), { onOutput: (d) => chunks.push({ t: performance.now(), b: Buffer.from(d) }) });
  await eventually(() => chunks.reduce((n, x) => n + x.b.length, 0) > 50_000, 15_000, 'exec output flowing');
  let agentAt = 0;
  const resumed = waitForLine(agent, /session (\S+) connected( via (\S+))?\n/, 60_000).then((m) => {
    agentAt = performance.now();
    return m;
  });
  const t0 = performance.now();
  await c.restartServer('SIGKILL', 0, next);
  const listening = performance.now();
  const m = await resumed;
  assert.equal(m[1], session, 'the agent resumed the same session');
  if (via) assert.equal(m[3], via, 'on the next control plane');
  const r = await run;
  assert.equal(r.exitCode, 7);
  assert.deepEqual(r.gaps, []);
  const got = Buffer.concat(chunks.map((x) => x.b));
  const want = expected(LINES);
  assert.equal(got.length, want.length, 'exec output length');
  assert.equal(sha(got), sha(want), 'exec output byte for byte');
  const again = chunks.find((x) => x.t > listening);
  assert.ok(again, 'output after the failover');
  return { listening: listening - t0, agent: agentAt - t0, output: again.t - t0 };
}

function report(t: TestContext, what: string, rounds: Round[]): void {
  const line = (k: keyof Round) => `${ms(median(rounds.map((r) => r[k])))} (${rounds.map((r) => ms(r[k])).join(', ')})`;
  t.diagnostic(`${what}, median of ${rounds.length}: next control plane listening ${line('listening')}; agent CONNECTED there ${line('agent')}; exec output again ${line('output')}`);
}

describe('failover: the control plane is killed, another takes over on the next address of the list', () => {
  let c: Cluster;
  let addrs: string[];
  let agent: ChildProcess;
  let client: CmdopClient;
  let current = 0;
  let session = '';
  before(async () => {
    c = await startCluster({ agent: false, serverArgs: ['--grace-period', '30'] });
    addrs = [c.server, `127.0.0.1:${await freePort()}`];
    agent = await c.startAgent('box', ['--server', addrs.join(',')]);
    client = new CmdopClient({ server: addrs.join(','), token: c.token, machine: 'box' });
    session = (await client.machines.list()).find((m) => m.name === 'box')!.sessionId;
  });
  after(async () => {
    client.close();
    await c.stop();
  });

  it('the agent and an SDK exec go over, resume the same session, byte-exact with the exit code (3 rounds, timed)', async (t) => {
    const rounds: Round[] = [];
    for (let i = 0; i < 3; i++) {
      const next = addrs[1 - current];
      rounds.push(await failoverRound(c, agent, client, next, session, next));
      current = 1 - current;
    }
    report(t, 'list failover (SIGKILL, next started at once)', rounds);
    const box = (await client.machines.list()).find((m) => m.name === 'box')!;
    assert.equal(box.state, SessionState.CONNECTED);
    assert.equal(box.sessionId, session);
  });

  it('`cmdop --server A,B exec` across it: its output and exit code', async () => {
    const LINES = 200_000;
    const p = runCli(['exec', 'box', '--', slowCommand(LINES, 4)], { server: addrs.join(','), env: { CMDOP_TOKEN: c.token } });
    await new Promise((r) => setTimeout(r, 1500));
    await c.restartServer('SIGKILL', 0, addrs[1 - current]);
    current = 1 - current;
    const res = await p;
    assert.equal(res.code, 7, res.stderr);
    assert.equal(sha(res.stdout), sha(expected(LINES)));
  });
});

describe('TLS: the replica taking over is pinned when first reached, under its own address', () => {
  let c: Cluster;
  let list: string;
  let next: string;
  let agent: ChildProcess;
  const env = () => ({ CMDOP_TOKEN: c.token });
  before(async () => {
    c = await startCluster({ agent: false, serverArgs: ['--tls', '--grace-period', '30'] });
    next = `127.0.0.1:${await freePort()}`;
    list = `${c.server},grpcs://${next}`;
    const enroll = await runCli(['agents', 'enroll', '--name', 'tbox'], { server: list, env: env() });
    assert.equal(enroll.code, 0, enroll.stderr);
    agent = track(
      spawn(process.execPath, [CLI, 'agent', '--server', list, '--name', 'tbox', '--state-dir', path.join(c.dir, 'agent-tbox'), '--enroll-token', enroll.stdout.toString().trim()], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: cliEnv(undefined, { CMDOP_TOKEN: '' }),
      }),
    );
    await waitForLine(agent, new RegExp(`connected to ${list.replace(/[.:/]/g, '\\$&')} via ${c.server.replace('grpcs://', '')}`));
  });
  after(async () => {
    agent?.kill('SIGTERM');
    await c.stop();
  });

  it('`cmdop --server grpcs://A,grpcs://B exec` and the agent go over to B, which presents the same certificate: pinned for B too', async () => {
    const LINES = 100_000;
    const resumed = waitForLine(agent, new RegExp(`session \\S+ connected via ${next.replace(/\./g, '\\.')}`), 60_000);
    const p = runCli(['exec', 'tbox', '--', slowCommand(LINES, 3)], { server: list, env: env() });
    await new Promise((r) => setTimeout(r, 1500));
    await c.restartServer('SIGKILL', 0, next);
    const res = await p;
    assert.equal(res.code, 7, res.stderr);
    assert.equal(sha(res.stdout), sha(expected(LINES)));
    await resumed;
    const pins = (await runCli(['trust'], { env: env() })).stdout.toString();
    const fp = (addr: string) => new RegExp(`^${addr.replace(/\./g, '\\.')}\\s+(\\S+)`, 'm').exec(pins)?.[1];
    const first = c.server.replace('grpcs://', '');
    assert.ok(fp(first), pins);
    assert.equal(fp(next), fp(first), 'the same certificate, pinned under each entry');
  });
});

const HAPROXY = '/usr/sbin/haproxy';

/** Resolves once something accepts connections on 127.0.0.1:port. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('one load balancer address: HAProxy in TCP mode before two ports', { skip: !fs.existsSync(HAPROXY) && `${HAPROXY} is not installed (apt-get install haproxy)` }, () => {
  let c: Cluster;
  let ports: string[];
  let front: string;
  let haproxy: ChildProcess;
  let agent: ChildProcess;
  let client: CmdopClient;
  let current = 0;
  let session = '';
  before(async () => {
    c = await startCluster({ agent: false, serverArgs: ['--grace-period', '30'] });
    ports = [c.server, `127.0.0.1:${await freePort()}`];
    const frontPort = await freePort();
    front = `127.0.0.1:${frontPort}`;
    const cfg = path.join(tempDir('cmdop-haproxy-'), 'haproxy.cfg');
    // `balance first`: every connection to the first server that is up.
    // Checks every 200 ms mark a dead one down; until then a refused
    // connection is retried on the other (redispatch).
    fs.writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 1000',
        'defaults',
        '  mode tcp',
        '  timeout connect 2s',
        '  timeout client 1h',
        '  timeout server 1h',
        '  retries 3',
        '  option redispatch 1',
        'listen cmdop',
        `  bind ${front}`,
        '  balance first',
        `  server a ${ports[0]} check inter 200ms fall 1 rise 1`,
        `  server b ${ports[1]} check inter 200ms fall 1 rise 1`,
        '',
      ].join('\n'),
    );
    haproxy = track(spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let log = '';
    haproxy.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await eventually(async () => haproxy.exitCode === null && (await accepting(frontPort)), 10_000, `haproxy listening (${log})`);
    agent = await c.startAgent('box', ['--server', front]);
    client = new CmdopClient({ server: front, token: c.token, machine: 'box' });
    session = (await client.machines.list()).find((m) => m.name === 'box')!.sessionId;
  });
  after(async () => {
    client?.close();
    haproxy?.kill('SIGTERM');
    await c.stop();
  });

  it('an agent and an SDK exec through it survive the kill-and-start on the other port (3 rounds, timed)', async (t) => {
    const rounds: Round[] = [];
    for (let i = 0; i < 3; i++) {
      rounds.push(await failoverRound(c, agent, client, ports[1 - current], session));
      current = 1 - current;
    }
    report(t, 'through HAProxy (SIGKILL, next started at once)', rounds);
  });

  it('`cmdop exec` through it, across it', async () => {
    const LINES = 200_000;
    const p = runCli(['exec', 'box', '--', slowCommand(LINES, 4)], { server: front, env: { CMDOP_TOKEN: c.token } });
    await new Promise((r) => setTimeout(r, 1500));
    await c.restartServer('SIGKILL', 0, ports[1 - current]);
    current = 1 - current;
    const res = await p;
    assert.equal(res.code, 7, res.stderr);
    assert.equal(sha(res.stdout), sha(expected(LINES)));
  });
});
