// `cmdop doctor` against real control planes (issue 18): all well; a wrong
// address; a changed certificate (refused, with `cmdop trust` as advice); a
// bad token; no agent service, which is reported and is not a failure; and
// an installed one that failed, runs with its agent away, or runs well.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { type Cluster, freePort, runCli, startCluster, tempDir } from './helpers/cluster';
import { context, fakeRunner } from './helpers/serviceContext';
import { install, plan } from '../cli/service/manage';
import { runChecks } from '../cli/run/doctor';

interface Check {
  check: string;
  level: string;
  detail: string;
  advice?: string;
}

async function doctor(server: string, env: Record<string, string> = {}): Promise<{ code: number | null; checks: Record<string, Check>; text: string }> {
  const r = await runCli(['doctor', '--json'], { server, env });
  const out = JSON.parse(r.stdout.toString());
  return { code: r.code, checks: Object.fromEntries(out.checks.map((c: Check) => [c.check, c])), text: r.stderr };
}

describe('cmdop doctor', () => {
  let c: Cluster;
  before(async () => (c = await startCluster()));
  after(() => c.stop());

  it('all well: server, plaintext on loopback, clock, token OK; no agent service is reported, not a failure', async () => {
    const d = await doctor(c.server);
    assert.equal(d.code, 0, JSON.stringify(d.checks, null, 2));
    assert.equal(d.checks.server.level, 'OK');
    assert.match(d.checks.server.detail, /answers \(cmdop /);
    assert.equal(d.checks.tls.level, 'OK');
    assert.equal(d.checks.clock.level, 'OK');
    assert.match(d.checks.clock.detail, /within 5 s of the control plane/);
    assert.equal(d.checks.token.level, 'OK');
    assert.equal(d.checks['agent service'].level, 'SKIP');
    assert.match(d.checks['agent service'].detail, /no agent service installed \(fine on a laptop\)/);
    // The agent's own credential, from its state dir.
    const r0 = await runCli(['doctor', '--json', '--state-dir', path.join(c.dir, 'agent-box')], { server: c.server });
    const cred = JSON.parse(r0.stdout.toString()).checks.find((x: Check) => x.check === 'agent credential');
    assert.deepEqual([cred.level, cred.detail], ['OK', 'box: accepted']);
    // The text form: one line per check, advice under it.
    const r = await runCli(['doctor'], { server: c.server });
    assert.match(r.stdout.toString(), /^OK +server +\S+ answers/m);
    assert.match(r.stdout.toString(), /^SKIP {2}agent service .*\n +→ on a server, to start the agent at boot: sudo cmdop agent install-service/m);
  });

  it('an installed service: failed is a FAIL with how to see why; running with its agent away a WARN; running and connected OK', async () => {
    const dir = tempDir('cmdop-doctor-svc-');
    const stateDir = path.join(dir, 'state');
    const show = (active: string) => ({ 'systemctl show': { stdout: `ActiveState=${active}\nSubState=${active === 'failed' ? 'failed' : 'running'}\nMainPID=0\nNRestarts=5\nResult=exit-code\nUnitFileState=enabled\n` } });
    const ctx = (active: string) => context(dir, { uid: 0, env: { SUDO_USER: 'alice' }, systemStateDir: stateDir, runner: fakeRunner(show(active)) });
    await install(ctx('active'), plan(ctx('active'), { server: c.server }));
    const status = (state: string, lastError?: string) =>
      fs.writeFileSync(path.join(stateDir, 'status.json'), JSON.stringify({ machine: 'web-1', server: c.server, state, sessionId: '', pid: process.pid, startedAtMs: 1, updatedAtMs: Date.now(), ...(lastError ? { lastError: { message: lastError, atMs: Date.now() } } : {}) }));
    const service = async (active: string) => (await runChecks({ server: c.server, stateDir }, ctx(active))).find((x) => x.check === 'agent service')!;

    status('connecting', 'connect ECONNREFUSED 10.0.0.1:7420');
    const failed = await service('failed');
    assert.equal(failed.level, 'FAIL');
    assert.match(failed.detail, /system service failed .*ECONNREFUSED/);
    assert.match(failed.advice ?? '', /cmdop agent logs; after fixing it: sudo systemctl reset-failed cmdop-agent && sudo systemctl restart cmdop-agent/);
    const away = await service('active');
    assert.equal(away.level, 'WARN');
    assert.match(away.detail, /running, but the agent is connecting; the agent's last error: connect ECONNREFUSED/);
    assert.equal(away.advice, 'cmdop agent logs -f');
    status('connected');
    const ok = await service('active');
    assert.equal(ok.level, 'OK');
    assert.match(ok.detail, /system service active, agent web-1 connected/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a wrong address: FAIL with advice, the rest skipped, exit 1', async () => {
    const d = await doctor(`127.0.0.1:${await freePort()}`);
    assert.equal(d.code, 1);
    assert.equal(d.checks.server.level, 'FAIL');
    assert.match(d.checks.server.advice!, /check the address and port/);
    assert.equal(d.checks.clock.level, 'SKIP');
    assert.equal(d.checks.token.level, 'SKIP');
  });

  it('a bad token: FAIL, with what to do', async () => {
    const d = await doctor(c.server, { CMDOP_TOKEN: 'not-a-token' });
    assert.equal(d.code, 1);
    assert.equal(d.checks.server.level, 'OK');
    assert.equal(d.checks.token.level, 'FAIL');
    assert.match(d.checks.token.detail, /refused \(from CMDOP_TOKEN\)/);
    assert.match(d.checks.token.advice!, /cmdop tokens create|cmdop login/);
  });
});

describe('cmdop doctor over TLS', () => {
  let c: Cluster;
  let home: string;
  before(async () => {
    c = await startCluster({ agent: false, serverArgs: ['--tls'] });
    home = tempDir('cmdop-doctor-home-');
  });
  after(async () => {
    await c.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('pins on first use (WARN: compare the fingerprint), then OK; a changed certificate is refused with `cmdop trust` advice', async () => {
    const env = { XDG_CONFIG_HOME: home };
    const first = await doctor(c.server, env);
    assert.equal(first.code, 0, JSON.stringify(first.checks, null, 2));
    assert.equal(first.checks.tls.level, 'WARN');
    assert.match(first.checks.tls.detail, /first use: pinned SHA256/);
    const again = await doctor(c.server, env);
    assert.equal(again.checks.tls.level, 'OK');
    assert.match(again.checks.tls.detail, /matches its pin/);
    // The pin no longer matches what the server presents (as after a new certificate).
    const file = path.join(home, 'cmdop', 'known_servers.json');
    const text = fs.readFileSync(file, 'utf8');
    const fp = /([0-9A-F]{2}(?::[0-9A-F]{2}){31})/.exec(text)![1];
    fs.writeFileSync(file, text.replaceAll(fp, (fp.startsWith('00') ? '11' : '00') + fp.slice(2)));
    const changed = await doctor(c.server, env);
    assert.equal(changed.code, 1);
    assert.equal(changed.checks.tls.level, 'FAIL');
    assert.match(changed.checks.tls.detail, /the certificate changed/);
    assert.match(changed.checks.tls.advice!, /cmdop trust --forget/);
  });
});
