// Signing in as a person would: `cmdop login` prints a URL and a code, the
// test approves it through the real verification page over HTTP, and the
// CLI carries on. Then TLS: a self-signed certificate pinned on first use,
// and refused loudly once it changes. And the listen-address rule.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CmdopClient } from '../sdk';
import { CLI, Cluster, cliEnv, eventually, runCli, startCluster, tempDir, waitForLine } from './helpers/cluster';
import { approveDevice } from './helpers/browser';

const spawned = new Set<ChildProcess>();
after(() => {
  for (const p of spawned) p.kill('SIGKILL');
});

/** Starts a CLI command that signs in; resolves with the URL and code it printed. */
async function startDeviceLogin(args: string[], env: Record<string, string>) {
  const p = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.add(p);
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<number | null>((r) => p.on('exit', r));
  const m = await eventually(() => /open\n\s+(\S+)\nand enter the code\n\s+(\S+)/.exec(stderr), 15_000, `device code in: ${stderr}`);
  return { p, exit, url: m![1], code: m![2], out: () => stdout, err: () => stderr };
}

describe('cmdop login (device flow)', () => {
  let c: Cluster;
  let home: string;
  let env: Record<string, string>;
  before(async () => {
    c = await startCluster({ serverArgs: ['--oauth-poll-interval', '1', '--oauth-access-ttl', '30'] });
    await c.client.auth.addUser('alice', { password: 'alice-password-1' });
    home = tempDir('cmdop-alice-');
    // Alice's own config dir, and no admin token: only her sign-in counts.
    env = cliEnv(undefined, { CMDOP_SERVER: c.server, XDG_CONFIG_HOME: home, CMDOP_TOKEN: '' });
  });
  after(async () => {
    await c.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('signs in through the verification page, refreshes, and logs out', async () => {
    const login = await startDeviceLogin(['login', '--no-browser'], env);
    assert.match(login.url, /^http:\/\/127\.0\.0\.1:\d+\/device$/);
    const page = await approveDevice(login.url, login.code, 'alice', 'alice-password-1');
    assert.match(page, /Device approved/);
    assert.equal(await login.exit, 0, login.err());
    assert.match(login.out(), /Signed in to 127\.0\.0\.1:\d+ as alice\./);
    const file = path.join(home, 'cmdop', 'logins.json');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const stored = JSON.parse(fs.readFileSync(file, 'utf8'))[c.server];
    assert.equal(stored.user, 'alice');

    const who = await runCli(['whoami'], { env });
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout.toString(), /^alice on 127\.0\.0\.1:\d+\n  token: OAUTH oauth, expires .* from login/);
    // Alice owns nothing and was granted nothing.
    assert.match((await runCli(['machines'], { env })).stdout.toString(), /no machines yet/);
    await c.client.auth.grant('box', 'alice', 'observer');
    assert.match((await runCli(['machines'], { env })).stdout.toString(), /\nbox\s+CONNECTED/);
    const exec = await runCli(['exec', 'box', '--', 'true'], { env });
    assert.equal(exec.code, 255); // like ssh: 255 when cmdop itself fails
    assert.match(exec.stderr, /alice may only observe box/);

    // The access token lives 30 s and is refreshed when under 60 s are left:
    // every call now refreshes, and the refresh token rotates.
    const before = JSON.parse(fs.readFileSync(file, 'utf8'))[c.server];
    assert.equal((await runCli(['whoami'], { env })).code, 0);
    const after = JSON.parse(fs.readFileSync(file, 'utf8'))[c.server];
    assert.notEqual(after.refreshToken, before.refreshToken);
    assert.notEqual(after.accessToken, before.accessToken);

    const out = await runCli(['logout'], { env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout.toString(), /Signed out of/);
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8'))[c.server], undefined);
    // The revoked access token is refused by the server, not just forgotten here.
    const revoked = new CmdopClient({ server: c.server, token: after.accessToken });
    await assert.rejects(revoked.machines.list(), /access token is invalid, expired or revoked/);
    revoked.close();
    const none = await runCli(['whoami'], { env });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no token/);
    const audit = await c.client.auth.audit();
    assert.ok(audit.some((e) => e.action === 'login' && e.actor === 'alice' && e.ok));
  });

  it('a denied code ends `cmdop login` with a clear error and stores nothing', async () => {
    const login = await startDeviceLogin(['login', '--no-browser'], env);
    const page = await approveDevice(login.url, login.code, 'alice', '', { deny: true });
    assert.match(page, /Request denied/);
    assert.equal(await login.exit, 1);
    assert.match(login.err(), /the sign-in was denied on the verification page/);
    const file = path.join(home, 'cmdop', 'logins.json');
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8'))[c.server], undefined);
  });

  it('a wrong password changes nothing; the code still works with the right one', async () => {
    const login = await startDeviceLogin(['login', '--no-browser'], env);
    const pages: string[] = [];
    await approveDevice(login.url, login.code, 'alice', ['not-her-password', 'alice-password-1'], { pages });
    assert.match(pages[0], /Wrong user name or password/);
    assert.match(pages[1], /Device approved/);
    assert.equal(await login.exit, 0, login.err());
  });

  it('an agent enrolled by a person signing in belongs to that person', async () => {
    const stateDir = path.join(c.dir, 'alice-agent');
    const agent = await startDeviceLogin(['agent', '--login', '--name', 'alice-box', '--state-dir', stateDir], env);
    await approveDevice(agent.url, agent.code, 'alice', 'alice-password-1');
    await eventually(() => /cmdop agent alice-box connected/.test(agent.out()), 15_000, 'agent connected');
    const cred = JSON.parse(fs.readFileSync(path.join(stateDir, 'credentials.json'), 'utf8'));
    assert.equal(fs.statSync(path.join(stateDir, 'credentials.json')).mode & 0o777, 0o600);
    assert.equal(Object.values<{ machine: string }>(cred)[0].machine, 'alice-box');
    const users = await c.client.auth.listUsers();
    assert.deepEqual(users.find((u) => u.name === 'alice')!.machines, ['alice-box']);
    // bob cannot see it; the admin can.
    await c.client.auth.addUser('bob', { password: 'bob-password-1' });
    const bob = new CmdopClient({ server: c.server, token: (await c.client.auth.createToken('b', 0, 'bob')).token });
    assert.deepEqual(await bob.machines.list(), []);
    bob.close();
    assert.ok((await c.client.machines.list()).some((m) => m.name === 'alice-box'));
    agent.p.kill('SIGTERM');
    await agent.exit;
  });
});

describe('TLS', () => {
  const dir = tempDir('cmdop-tls-');
  const home = tempDir('cmdop-tls-home-');
  let server: ChildProcess | undefined;
  let agent: ChildProcess | undefined;
  after(() => {
    server?.kill('SIGKILL');
    agent?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
  });

  async function startServer(listen: string) {
    const p = spawn(process.execPath, [CLI, 'server', '--tls', '--listen', listen, '--web-listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'cp')], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = p;
    const [, address, fingerprint] = await waitForLine(p, /listening on (\S+)[\s\S]*TLS certificate SHA256 (\S+)/);
    return { p, address, fingerprint };
  }

  it('pins the self-signed certificate on first use and refuses it once it changes', async () => {
    const first = await startServer('127.0.0.1:0');
    server = first.p;
    assert.match(first.address, /^grpcs:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(fs.statSync(path.join(dir, 'cp', 'tls', 'key.pem')).mode & 0o777, 0o600);
    const admin = fs.readFileSync(path.join(dir, 'cp', 'admin.token'), 'utf8').trim();
    const env = cliEnv(undefined, { CMDOP_SERVER: first.address, CMDOP_TOKEN: admin, XDG_CONFIG_HOME: home });

    const w1 = await runCli(['whoami'], { env });
    assert.equal(w1.code, 0, w1.stderr);
    assert.match(w1.stderr, new RegExp(`pinned its certificate SHA256 ${first.fingerprint}`));
    const w2 = await runCli(['whoami'], { env });
    assert.equal(w2.code, 0);
    assert.equal(w2.stderr, '', 'a pinned server is not announced again');
    assert.match((await runCli(['trust'], { env })).stdout.toString(), new RegExp(first.fingerprint));

    // An agent over TLS, enrolled with a one-time token.
    const enroll = (await runCli(['agents', 'enroll', '--name', 'tls-box'], { env })).stdout.toString().trim();
    agent = spawn(process.execPath, [CLI, 'agent', '--enroll-token', enroll, '--state-dir', path.join(dir, 'agent')], { env: { ...env, CMDOP_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(agent, /cmdop agent tls-box connected to grpcs:\/\//);
    const exec = await runCli(['exec', 'tls-box', '--', 'echo', 'over-tls'], { env });
    assert.equal(exec.stdout.toString(), 'over-tls\n');

    // The server comes back on the same port with a new certificate.
    const port = first.address.split(':').pop()!;
    const agentExit = new Promise<number | null>((r) => agent!.on('exit', r));
    let agentErr = '';
    agent.stderr!.on('data', (d) => (agentErr += d));
    server.kill('SIGTERM');
    await new Promise((r) => server!.on('exit', r));
    fs.rmSync(path.join(dir, 'cp', 'tls'), { recursive: true });
    const second = await startServer(`127.0.0.1:${port}`);
    server = second.p;
    assert.notEqual(second.fingerprint, first.fingerprint);
    const refusedCli = await runCli(['machines'], { env });
    assert.equal(refusedCli.code, 1);
    assert.match(refusedCli.stderr, new RegExp(`${second.fingerprint}`));
    assert.match(refusedCli.stderr, new RegExp(`${first.fingerprint}`));
    assert.match(refusedCli.stderr, /cmdop trust --forget/);
    // The agent will not talk to it either: it stops, saying why.
    assert.equal(await agentExit, 1);
    assert.match(agentErr, /certificate/i);
    agent = undefined;

    // On purpose, the user forgets the old pin; the new one is pinned and works.
    const forget = await runCli(['trust', '--forget', `127.0.0.1:${port}`], { env });
    assert.equal(forget.code, 0, forget.stderr);
    const again = await runCli(['whoami'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`pinned its certificate SHA256 ${second.fingerprint}`));
    // An explicit fingerprint that does not match is refused.
    const wrongPin = await runCli(['whoami'], { env: { ...env, CMDOP_TLS_FINGERPRINT: first.fingerprint } });
    assert.equal(wrongPin.code, 1);
  });

  it('refuses a non-loopback listen address without TLS unless --insecure', async () => {
    const r = await runCli(['server', '--listen', '0.0.0.0:0', '--data-dir', path.join(dir, 'open')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0 without TLS/);
    assert.match(r.stderr, /--tls/);
    const p = spawn(process.execPath, [CLI, 'server', '--listen', '0.0.0.0:0', '--insecure', '--data-dir', path.join(dir, 'open')], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    await waitForLine(p, /listening on 0\.0\.0\.0:\d+/);
    p.kill('SIGTERM');
    await new Promise((res) => p.on('exit', res));
  });
});
