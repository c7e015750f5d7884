// Access control end to end: a real control plane, real agents, real
// shells. Every refusal is checked for its error and for changing nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CmdopClient, PermissionDeniedError, UnauthenticatedError } from '../sdk';
import { ClientServiceDefinition, SessionState, TokenKind, toGrpcService } from '../protocol';
import { CLI, Cluster, cliEnv, eventually, runCli, startCluster, waitForLine } from './helpers/cluster';

/** Asserts `p` rejects with `type` and a message matching `re`. */
async function refused(p: Promise<unknown>, type: new (...a: any[]) => Error, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

describe('tokens on every call', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
  });
  after(() => c.stop());

  const as = (token: string | undefined, machine = 'box') => new CmdopClient({ server: c.server, token, machine });

  it('no token, a malformed header, an unknown or forged token are UNAUTHENTICATED', async () => {
    const anon = as(undefined);
    await refused(anon.machines.list(), UnauthenticatedError, /no token: sign in with `cmdop login`/);
    await refused(anon.terminal.execute('true'), UnauthenticatedError, /no token/);
    anon.close();
    // Not "Bearer X".
    const raw = new (grpc.makeGenericClientConstructor(toGrpcService(ClientServiceDefinition), 'C'))(c.server, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('authorization', `Basic ${Buffer.from('admin:admin').toString('base64')}`);
    const err = await new Promise<grpc.ServiceError>((r) => (raw as any).listMachines({}, md, (e: grpc.ServiceError) => r(e)));
    assert.equal(err.code, grpc.status.UNAUTHENTICATED);
    assert.match(err.details, /malformed authorization header/);
    raw.close();
    // A well-formed secret this server never issued, and a JWT signed by someone else.
    const forged = as(`cmdop_pat_${'A'.repeat(43)}`);
    await refused(forged.machines.list(), UnauthenticatedError, /unknown token/);
    forged.close();
    const jwt = ['{"alg":"HS256"}', '{"sub":"admin","exp":9999999999}'].map((s) => Buffer.from(s).toString('base64url')).join('.') + '.c2ln';
    const fake = as(jwt);
    await refused(fake.machines.list(), UnauthenticatedError, /access token is invalid, expired or revoked/);
    fake.close();
    // The server keeps serving the signed-in.
    assert.equal((await c.client.machines.list())[0].name, 'box');
  });

  it('an expired and a revoked API token are refused, with which and when', async () => {
    const short = await c.client.auth.createToken('short', 1);
    const kept = await c.client.auth.createToken('kept');
    const s = as(short.token);
    const k = as(kept.token);
    assert.equal((await s.machines.list()).length, 1);
    await new Promise((r) => setTimeout(r, 1100));
    await refused(s.machines.list(), UnauthenticatedError, new RegExp(`token ${short.info!.id} expired at`));
    assert.equal((await k.terminal.execute('echo ok')).stdout, 'ok\n');
    const r = await c.client.auth.revokeToken(kept.info!.id);
    assert.equal(r.streamsClosed, 0);
    await refused(k.machines.list(), UnauthenticatedError, new RegExp(`token ${kept.info!.id} was revoked`));
    const listed = await c.client.auth.listTokens({ kind: TokenKind.API });
    assert.ok(listed.find((t) => t.id === kept.info!.id)!.revokedMs > 0);
    s.close();
    k.close();
  });

  it("another user's token reaches only what was granted; revoking the grant ends its streams", async () => {
    await c.client.auth.addUser('bob', { password: 'bob-password-1' });
    const bob = as((await c.client.auth.createToken('bob-ci', 0, 'bob')).token);
    assert.deepEqual(await bob.machines.list(), []);
    await refused(bob.terminal.execute('id'), PermissionDeniedError, /bob has no access to machine box/);
    await refused(bob.auth.grant('box', 'bob', 'operator'), PermissionDeniedError, /only the owner of box/);
    await refused(bob.auth.createToken('x', 0, 'admin'), PermissionDeniedError, /only an admin/);

    await c.client.auth.grant('box', 'bob', 'observer');
    assert.deepEqual((await bob.machines.list()).map((m) => m.name), ['box']);
    await refused(bob.terminal.execute('id'), PermissionDeniedError, /bob may only observe box/);
    const shell = await c.client.terminal.open();
    const watch = await bob.terminal.attach(shell.terminalId, { mode: 'observer' });
    await refused(bob.terminal.attach(shell.terminalId, { mode: 'operator' }), PermissionDeniedError, /may only observe/);

    await c.client.auth.grant('box', 'bob', 'operator');
    const r = await bob.terminal.execute('echo from-bob');
    assert.equal(r.stdout, 'from-bob\n');

    const revoked = await c.client.auth.revoke('box', 'bob');
    // The observer's stream, and the exec's if it is still closing (execute() resolves on the exit, not on the stream's end).
    assert.ok(revoked.streamsClosed === 1 || revoked.streamsClosed === 2, `${revoked.streamsClosed} streams closed`);
    await refused(watch.done, PermissionDeniedError, /bob's access to box was revoked/);
    assert.deepEqual(await bob.machines.list(), []);
    await refused(c.client.auth.revoke('box', 'bob'), Error, /bob has no grant on box/);
    shell.close();
    bob.close();
  });

  it('an enrollment token works once; a second use is refused and changes nothing', async () => {
    const e = await c.client.auth.createEnrollment('once');
    const first = as(e.token);
    const cred = await first.auth.enrollAgent();
    assert.equal(cred.info!.machine, 'once');
    assert.equal(cred.info!.kind, TokenKind.AGENT);
    await refused(first.auth.enrollAgent(), UnauthenticatedError, /already used/);
    // The credential from the first use still works, and only as an agent.
    const agentAsClient = as(cred.token);
    await refused(agentAsClient.machines.list(), PermissionDeniedError, /an agent credential/);
    const me = await agentAsClient.auth.whoami();
    assert.equal(me.machine, 'once');
    first.close();
    agentAsClient.close();
    // An enrollment token is not a login either.
    const e2 = await c.client.auth.createEnrollment('twice');
    const enr = as(e2.token);
    await refused(enr.machines.list(), PermissionDeniedError, /an enrollment token/);
    enr.close();
  });

  it('an agent without a credential, or with one for another machine, is refused', async () => {
    const r = await runCli(['agent', '--name', 'stray', '--state-dir', path.join(c.dir, 'stray')], { server: c.server });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /this agent is not enrolled with/);
    assert.match(r.stderr, /cmdop agents enroll --name stray/);
    // A raw stream that registers as box with the credential of "once".
    const e = await c.client.auth.createEnrollment('other');
    const cred = await as(e.token).auth.enrollAgent();
    const env = cliEnv(undefined, { CMDOP_ENROLL_TOKEN: '' });
    const p = spawn(process.execPath, [CLI, 'agent', '--server', c.server, '--name', 'box', '--state-dir', path.join(c.dir, 'impostor')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    assert.equal(await new Promise((res) => p.on('exit', res)), 1);
    assert.match(err, /not enrolled/);
    void cred;
    const box = (await c.client.machines.list()).find((m) => m.name === 'box')!;
    assert.equal(box.state, SessionState.CONNECTED);
  });

  it('a share token watches its one terminal and nothing more; revoking it ends the stream', async () => {
    const one = await c.client.terminal.open();
    const two = await c.client.terminal.open();
    await refused(c.client.auth.share('box'), Error, /has \d+ terminals .*name one/);
    const share = await c.client.auth.share('box', one.terminalId, 600);
    assert.match(share.url, /\/share#cmdop_shr_/);
    const viewer = as(share.token);
    await refused(viewer.machines.list(), PermissionDeniedError, /share token/);
    await refused(viewer.terminal.list(), PermissionDeniedError, new RegExp(`this share link is for terminal ${one.terminalId} on box only`));
    await refused(viewer.terminal.create(), PermissionDeniedError, /watch-only/);
    await refused(viewer.terminal.attach(one.terminalId, { mode: 'operator' }), PermissionDeniedError, /watch-only/);
    await refused(viewer.terminal.attach(two.terminalId, { mode: 'observer' }), PermissionDeniedError, new RegExp(`for terminal ${one.terminalId} on box only`));
    await refused(viewer.terminal.resize(one.terminalId, 80, 24), PermissionDeniedError, /watch-only/);
    await refused(viewer.terminal.sendInput(one.terminalId, 'rm -rf /\r'), PermissionDeniedError, /watch-only/);
    await refused(viewer.auth.createToken('escalate'), PermissionDeniedError, /share token/);

    const watch = await viewer.terminal.attach(one.terminalId, { mode: 'observer' });
    let seen = '';
    watch.on('output', (d) => (seen += Buffer.from(d).toString()));
    await refused(watch.sendInput('echo nope\r'), PermissionDeniedError, /OBSERVER: input is refused/);
    await one.sendInput('echo shared-$((6*7))\r');
    await eventually(() => seen.includes('shared-42'), 10_000, 'shared output');
    assert.ok(!seen.includes('nope'));

    const r = await c.client.auth.revokeToken(share.info!.id);
    assert.equal(r.streamsClosed, 1);
    await refused(watch.done, PermissionDeniedError, new RegExp(`token ${share.info!.id} was revoked`));
    await refused(viewer.terminal.attach(one.terminalId, { mode: 'observer' }), UnauthenticatedError, /was revoked/);
    one.close();
    two.close();
    viewer.close();
  });

  it('a share that expires ends its stream when it does', async () => {
    const t = await c.client.terminal.open();
    const share = await c.client.auth.share('box', t.terminalId, 2);
    const viewer = as(share.token);
    const watch = await viewer.terminal.attach(t.terminalId, { mode: 'observer' });
    await refused(watch.done, PermissionDeniedError, /expired/);
    t.close();
    viewer.close();
  });

  it('the audit log names who attached in which mode and which command_id each operator sent', async () => {
    await c.client.auth.grant('box', 'bob', 'operator');
    const bob = as((await c.client.auth.createToken('bob-2', 0, 'bob')).token);
    const since = Date.now();
    const adminTab = await c.client.terminal.open();
    const bobTab = await bob.terminal.attach(adminTab.terminalId, { mode: 'operator' });
    const adminCmd = await adminTab.sendInput('echo from-admin\r');
    const bobCmd = await bobTab.sendInput('echo from-bob\r');
    bobTab.close();
    adminTab.close();
    const entries = (await eventually(async () => {
      const e = await c.client.auth.audit({ machine: 'box', sinceMs: since });
      return e.filter((x) => x.action === 'detach').length >= 2 ? e : undefined;
    }, 5000, 'detach entries'))!;
    const attach = entries.filter((e) => e.action === 'attach' && e.terminalId === adminTab.terminalId);
    assert.deepEqual(attach.map((e) => [e.actor, e.mode]).sort(), [['admin', 1], ['bob', 1]]);
    const inputs = entries.filter((e) => e.action === 'input');
    assert.deepEqual(inputs.map((e) => [e.actor, e.commandId]).sort(), [['admin', adminCmd], ['bob', bobCmd]].sort());
    assert.ok(entries.some((e) => e.action === 'open' && e.actor === 'admin'));
    // Refusals are there too, and bob cannot read the log of a machine he does not own.
    const all = await c.client.auth.audit();
    assert.ok(all.some((e) => e.action === 'revoke' && /bob/.test(e.detail)));
    assert.ok(all.some((e) => !e.ok && e.actor === 'anonymous' && /no token/.test(e.detail)));
    await refused(bob.auth.audit({ machine: 'box' }), PermissionDeniedError, /only the owner of box/);
    // The CLI shows the same.
    const cli = await runCli(['audit', '--machine', 'box', '--since', '10m'], { server: c.server });
    assert.equal(cli.code, 0);
    assert.match(cli.stdout.toString(), /bob\s+input\s+box/);
    bob.close();
  });

  it('the CLI: whoami, tokens, agents enroll, users, bad durations', async () => {
    const who = await runCli(['whoami'], { server: c.server });
    assert.equal(who.code, 0);
    assert.match(who.stdout.toString(), /^admin \(admin\) on 127\.0\.0\.1:\d+\n  token: ADMIN tok_/);
    const created = await runCli(['tokens', 'create', '--name', 'ci', '--expires', '1h'], { server: c.server });
    assert.equal(created.code, 0);
    const token = created.stdout.toString().trim();
    assert.match(token, /^cmdop_pat_/);
    const asCi = await runCli(['whoami', '--json'], { server: c.server, env: { CMDOP_TOKEN: token } });
    assert.equal(JSON.parse(asCi.stdout.toString()).kind, 'API');
    const list = await runCli(['tokens', 'list'], { server: c.server });
    assert.match(list.stdout.toString(), /tok_\w+\s+api\s+ci\s+admin/);
    const bad = await runCli(['tokens', 'create', '--name', 'x', '--expires', 'soon'], { server: c.server });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /expected a duration such as 30m/);
    const enroll = await runCli(['agents', 'enroll', '--name', 'new-box'], { server: c.server });
    assert.match(enroll.stdout.toString(), /^cmdop_enr_/);
    const dup = await runCli(['users', 'add', 'bob'], { server: c.server });
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /user bob already exists/);
    const none = await runCli(['machines'], { server: c.server, env: { CMDOP_TOKEN: '' } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no token: sign in with `cmdop login`/);

    const t = await c.client.terminal.open();
    const share = await runCli(['share', 'box', t.terminalId, '--expires', '10m'], { server: c.server });
    assert.equal(share.code, 0, share.stderr);
    const link = share.stdout.toString().trim();
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/share#cmdop_shr_/);
    assert.match(share.stderr, /Revoke: +cmdop tokens revoke tok_\w+/);
    // The link opens the console (its observer view); the token stays in the fragment.
    const landing = await fetch(link.split('#')[0]);
    assert.equal(landing.status, 200);
    assert.match(landing.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.match(landing.headers.get('content-type') ?? '', /text\/html/);
    t.close();

    const neither = await runCli(['grant', 'box', 'bob'], { server: c.server });
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /say --observer or --operator/);
    assert.match((await runCli(['grant', 'box', 'bob', '--operator'], { server: c.server })).stdout.toString(), /bob is now operator on box/);
    assert.match((await runCli(['grants'], { server: c.server })).stdout.toString(), /box\s+bob\s+operator\s+admin/);
    assert.match((await runCli(['revoke', 'box', 'bob'], { server: c.server })).stdout.toString(), /bob no longer has access to box/);
    const ghost = await runCli(['grant', 'box', 'nobody', '--observer'], { server: c.server });
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /no user named "nobody"/);
  });

  it('an agent enrolled with a one-time token keeps its credential across restarts', async () => {
    const e = await c.client.auth.createEnrollment('kept-box');
    const stateDir = path.join(c.dir, 'kept');
    const start = (extra: string[]) => {
      const p = spawn(process.execPath, [CLI, 'agent', '--server', c.server, '--state-dir', stateDir, ...extra], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      return p;
    };
    const a1 = start(['--enroll-token', e.token]);
    await waitForLine(a1, /cmdop agent kept-box connected/);
    a1.kill('SIGTERM');
    await new Promise((r) => a1.on('exit', r));
    const a2 = start([]); // no token, no name: the stored credential names the machine
    await waitForLine(a2, /cmdop agent kept-box connected/);
    const r = await c.client.terminal.execute('echo kept', { machine: 'kept-box' });
    assert.equal(r.stdout, 'kept\n');
    a2.kill('SIGTERM');
    await new Promise((r2) => a2.on('exit', r2));
  });

  it('a flood of refused calls is counted, not logged row by row', async () => {
    const before = (await c.client.auth.audit({ limit: 100_000 })).filter((e) => !e.ok).length;
    const anon = as(undefined);
    for (let i = 0; i < 150; i++) await anon.machines.list().catch(() => {});
    anon.close();
    const after = (await c.client.auth.audit({ limit: 100_000 })).filter((e) => !e.ok).length;
    assert.ok(after - before <= 60, `${after - before} refusal rows for 150 refused calls`);
    assert.ok(after - before > 0, 'refusals are still logged');
  });
});
