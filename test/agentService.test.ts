// The agent as a service (issue 18): the units as golden files and, where
// systemd-analyze exists, verified by systemd; install, uninstall and status
// against a temp dir with a runner that records the systemctl/launchctl
// calls (they cannot run here); the status file of a real agent; and the
// generated unit's own command line run for real, reusing the stored
// credential as a reboot would.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, type Cluster, eventually, runCli, startCluster, tempDir, track, waitForLine } from './helpers/cluster';
import { systemdUnit } from '../cli/service/systemd';
import { launchdPlist } from '../cli/service/launchd';
import type { UnitSpec } from '../cli/service/unit';
import { install, logs, plan, report, serverOf, stateDirOf, uninstall } from '../cli/service/manage';
import { context, fakeRunner } from './helpers/serviceContext';

const GOLDEN = path.join(__dirname, '..', '..', 'test', 'fixtures', 'service');

const base: UnitSpec = {
  scope: 'system',
  node: '/usr/bin/node',
  agentBin: '/usr/lib/node_modules/cmdop/bin/cmdop-agent.js',
  server: 'grpcs://cp.example.com:7420',
  stateDir: '/var/lib/cmdop-agent',
  runAs: { user: 'deploy', group: 'deploy' },
  version: 'VERSION',
};
const user: UnitSpec = { ...base, scope: 'user', runAs: undefined, stateDir: '/home/deploy/.config/cmdop/agent', name: 'build box' };

const units: Record<string, string> = {
  'systemd-system.service': systemdUnit(base),
  'systemd-user.service': systemdUnit(user),
  'launchd-system.plist': launchdPlist({ ...base, stateDir: '/Library/Application Support/cmdop-agent', logFile: '/var/log/cmdop-agent.log' }),
  'launchd-user.plist': launchdPlist({ ...user, stateDir: '/Users/deploy/.config/cmdop/agent', logFile: '/Users/deploy/Library/Logs/cmdop-agent.log' }),
};


describe('service units', () => {
  it('match the golden files (CMDOP_UPDATE_GOLDEN=1 rewrites them)', () => {
    for (const [name, text] of Object.entries(units)) {
      const file = path.join(GOLDEN, name);
      if (process.env.CMDOP_UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
      assert.equal(text, fs.readFileSync(file, 'utf8'), `${name} differs from test/fixtures/service/${name}`);
      // XML forbids "--" inside a comment (plutil would refuse the plist).
      for (const m of text.matchAll(/<!--([\s\S]*?)-->/g)) assert.ok(!m[1].includes('--'), `${name}: "--" in an XML comment`);
    }
  });

  it('quote what systemd would split or expand', () => {
    const u = systemdUnit({ ...user, stateDir: '/srv/a b/%h$x', server: 'host:1' });
    assert.match(u, /--state-dir "\/srv\/a b\/%%h\$\$x"/);
    const w = tempDir('cmdop-service-q-');
    try {
      fs.mkdirSync(path.join(w, 'etc'));
      fs.writeFileSync(path.join(w, 'etc', 'cmdop-agent.service'), u);
      const ctx = context(w);
      assert.equal(stateDirOf(ctx, 'system'), '/srv/a b/%h$x');
      assert.equal(serverOf(ctx, 'system'), 'host:1');
    } finally {
      fs.rmSync(w, { recursive: true, force: true });
    }
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  it('pass systemd-analyze verify', { skip: !analyze && 'systemd-analyze is not installed (apt package systemd)' }, () => {
    const dir = tempDir('cmdop-service-verify-');
    try {
      // The paths verify checks must exist: this node and this build's bin.
      const ours = { node: process.execPath, agentBin: path.join(__dirname, '..', '..', 'bin', 'cmdop-agent.js') };
      const owner = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
      const group = execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
      for (const [scope, spec] of [['system', { ...base, ...ours, runAs: { user: owner, group } }], ['user', { ...user, ...ours }]] as const) {
        const file = path.join(dir, scope, 'cmdop-agent.service');
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, systemdUnit(spec));
        const runtime = path.join(dir, 'run');
        fs.mkdirSync(runtime, { recursive: true, mode: 0o700 });
        const r = spawnSync('systemd-analyze', [...(scope === 'user' ? ['--user'] : []), 'verify', file], {
          encoding: 'utf8',
          env: { ...process.env, XDG_RUNTIME_DIR: runtime },
        });
        // verify exits 0 on unknown keys and bad values too: any line about the file is a failure.
        const about = r.stderr.split('\n').filter((l) => l.includes(file) && !/Special user .* configured/.test(l));
        assert.deepEqual(about, [], `systemd-analyze verify (${scope}):\n${r.stderr}`);
        assert.equal(r.status, 0, r.stderr);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('install-service, uninstall-service, status (recording runner)', () => {
  let dir: string;
  before(() => (dir = tempDir('cmdop-service-')));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a system unit runs as the sudo user, never root unless asked', async () => {
    assert.throws(() => plan(context(dir), { server: 's:1' }), /refusing to run the agent as root/);
    assert.throws(() => plan(context(dir, { env: { SUDO_USER: 'root' } }), { server: 's:1' }), /refusing to run the agent as root/);
    assert.match(plan(context(dir), { server: 's:1', runAs: 'root' }).text, /^User=root$/m);
    const p = plan(context(dir, { env: { SUDO_USER: 'alice' } }), { server: 'grpcs://cp:7420' });
    assert.match(p.text, /^User=alice$/m);
    assert.match(p.text, /^Group=alice-group$/m);
    assert.match(p.text, /^Environment=CMDOP_SERVER=grpcs:\/\/cp:7420$/m);
    assert.match(p.text, /^ExecStart=\/usr\/bin\/node \/opt\/cmdop\/bin\/cmdop-agent\.js --state-dir \S+ --wait-for-server$/m);
    assert.match(p.text, /^Restart=always$/m);
    assert.match(p.text, /^RestartSec=5$/m);
    assert.match(p.text, /^StartLimitBurst=5$/m);
  });

  it('installs: writes the unit, reloads, enables and restarts; status asks systemctl; uninstall removes it', async () => {
    const ctx = context(dir, { env: { SUDO_USER: 'alice' } });
    const runner = ctx.runner as ReturnType<typeof fakeRunner>;
    await assert.rejects(install({ ...ctx, uid: 1000 }, plan(ctx, { server: 'h:1' })), /a system service needs root/);
    assert.equal(runner.calls.length, 0);
    const told = await install(ctx, plan(ctx, { server: 'h:1' }));
    assert.ok(fs.existsSync(path.join(dir, 'etc', 'cmdop-agent.service')));
    assert.equal(fs.statSync(ctx.systemStateDir).mode & 0o777, 0o700);
    assert.deepEqual(runner.calls, ['systemctl daemon-reload', 'systemctl enable cmdop-agent', 'systemctl restart cmdop-agent']);
    assert.match(told.join('\n'), /enabled and started cmdop-agent/);

    fs.writeFileSync(
      path.join(ctx.systemStateDir, 'status.json'),
      JSON.stringify({ machine: 'web-1', server: 'h:1', state: 'connected', sessionId: 's-1', pid: process.pid, startedAtMs: 1, updatedAtMs: Date.now() }),
    );
    const show = 'ActiveState=active\nSubState=running\nMainPID=4242\nNRestarts=2\nResult=success\nUnitFileState=enabled\n';
    const r = await report({ ...ctx, runner: fakeRunner({ 'systemctl show': { stdout: show } }) }, { stateDir: '/nowhere' });
    assert.deepEqual(
      { active: r.service.active, pid: r.service.mainPid, restarts: r.service.restarts, scope: r.service.scope },
      { active: 'active', pid: 4242, restarts: 2, scope: 'system' },
    );
    assert.equal(r.stateDir, ctx.systemStateDir, 'status reads the state dir the unit uses');
    assert.equal(r.agent?.machine, 'web-1');
    assert.equal(r.agent?.running, true);

    runner.calls.length = 0;
    await uninstall(ctx, {});
    assert.deepEqual(runner.calls, ['systemctl disable --now cmdop-agent', 'systemctl daemon-reload']);
    assert.ok(!fs.existsSync(path.join(dir, 'etc', 'cmdop-agent.service')));
    assert.ok(fs.existsSync(path.join(ctx.systemStateDir, 'status.json')), 'the state dir (credential) is kept');
    await assert.rejects(uninstall(ctx, {}), /no cmdop-agent service is installed/);
  });

  it('a --user unit goes through systemctl --user and says how to start it without a login', async () => {
    const ctx = context(dir, { uid: 1000, runner: fakeRunner({ 'loginctl show-user': { stdout: 'no\n' } }) });
    const runner = ctx.runner as ReturnType<typeof fakeRunner>;
    const told = await install(ctx, plan(ctx, { server: 'h:1', user: true, stateDir: path.join(dir, 'ustate') }));
    assert.deepEqual(runner.calls.slice(0, 3), ['systemctl --user daemon-reload', 'systemctl --user enable cmdop-agent', 'systemctl --user restart cmdop-agent']);
    assert.match(told.join('\n'), /loginctl enable-linger/);
    assert.throws(() => plan(ctx, { server: 'h:1', user: true, runAs: 'bob' }), /--run-as is for system units/);
    runner.calls.length = 0;
    await uninstall(ctx, { user: true });
    assert.deepEqual(runner.calls, ['systemctl --user disable --now cmdop-agent', 'systemctl --user daemon-reload']);
  });

  it('logs: the journal of the unit installed (system or --user), -n and -f passed on; the plist\'s log file on macOS', async () => {
    const ctx = context(dir, { uid: 1000, runner: fakeRunner() });
    const runner = ctx.runner as ReturnType<typeof fakeRunner>;
    await install(ctx, plan(ctx, { server: 'h:1', user: true, stateDir: path.join(dir, 'lstate') }));
    runner.calls.length = 0;
    assert.equal(await logs(ctx, { lines: 50 }), 0);
    assert.equal(await logs(ctx, { lines: 5, follow: true }), 0);
    assert.deepEqual(runner.calls, [
      'journalctl --user -u cmdop-agent -n 50 --no-pager',
      'journalctl --user -u cmdop-agent -n 5 --no-pager -f',
    ]);
    await uninstall(ctx, { user: true });
    // journalctl's own failure (no such unit, no journal access) is the command's exit code.
    const failing = context(dir, { runner: fakeRunner({ journalctl: { code: 1 } }) });
    assert.equal(await logs(failing, { lines: 10 }), 1);
    const mac = context(dir, { platform: 'darwin', runner: fakeRunner() });
    await logs(mac, { lines: 20, follow: true });
    assert.deepEqual((mac.runner as ReturnType<typeof fakeRunner>).calls, ['tail -n 20 -F /var/log/cmdop-agent.log']);
  });

  it('macOS: a LaunchDaemon through launchctl bootstrap; status from launchctl print', async () => {
    const ctx = context(dir, { platform: 'darwin', env: { SUDO_USER: 'alice' }, systemUnitDir: path.join(dir, 'LaunchDaemons') });
    const runner = ctx.runner as ReturnType<typeof fakeRunner>;
    const p = plan(ctx, { server: 'h:1' });
    assert.match(p.text, /<key>UserName<\/key><string>alice<\/string>/);
    await install(ctx, p);
    assert.deepEqual(runner.calls, [
      'launchctl bootout system/com.cmdop.agent',
      'launchctl enable system/com.cmdop.agent',
      `launchctl bootstrap system ${path.join(dir, 'LaunchDaemons', 'com.cmdop.agent.plist')}`,
    ]);
    const r = await report({ ...ctx, runner: fakeRunner({ 'launchctl print': { stdout: '\tstate = running\n\tpid = 77\n' } }) }, { stateDir: '/nowhere' });
    assert.deepEqual({ active: r.service.active, pid: r.service.mainPid }, { active: 'running', pid: 77 });
    assert.equal(serverOf(ctx, 'system'), 'h:1');
    await uninstall(ctx, {});
    assert.ok(!fs.existsSync(p.file));
  });

  it('--print prints the unit for this install and changes nothing', async () => {
    const r = await runCli(['agent', 'install-service', '--print', '--user', '--server', 'grpcs://cp.example.com:7420', '--state-dir', path.join(dir, 'p')]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    assert.ok(text.includes(`ExecStart=${process.execPath} ${path.join(__dirname, '..', '..', 'bin', 'cmdop-agent.js')} --state-dir ${path.join(dir, 'p')} --wait-for-server`), text);
    assert.ok(!fs.existsSync(path.join(dir, 'p')));
  });
});

describe('the agent\'s status, and the unit\'s command line run for real', () => {
  let c: Cluster;
  let dir: string;
  before(async () => {
    c = await startCluster();
    dir = tempDir('cmdop-service-real-');
  });
  after(async () => {
    await c.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('status shows the enrolled name, server, session state; then the last error', async () => {
    const stateDir = path.join(c.dir, 'agent-box');
    const status = async () => JSON.parse((await runCli(['agent', 'status', '--json', '--state-dir', stateDir])).stdout.toString());
    const s = await status();
    assert.equal(s.service.installed, false);
    assert.equal(s.agent.machine, 'box');
    assert.equal(s.agent.server, c.server);
    assert.equal(s.agent.state, 'connected');
    assert.equal(s.agent.running, true);
    assert.equal(s.agent.pid, c.agents.get('box')!.pid);
    const text = (await runCli(['agent', 'status', '--state-dir', stateDir])).stdout.toString();
    assert.match(text, /name: +box/);
    assert.match(text, /session: +connected \(session /);
    // The control plane goes away: the agent is offline and says why.
    c.cp.kill('SIGKILL');
    const down = await eventually(async () => {
      const x = await status();
      return x.agent.state === 'offline' && x.agent.lastError ? x : undefined;
    });
    assert.match(down.agent.lastError.message, /UNAVAILABLE|closed|connect/i);
    await c.restartServer('SIGKILL');
  });

  it('the ExecStart and Environment of a generated unit start an agent that reuses its stored credential (a reboot)', async () => {
    const stateDir = path.join(dir, 'state');
    // Enrolled once, the way install-service --enroll-token does it.
    const token = (await c.client.auth.createEnrollment('svc')).token;
    const first = track(spawn(process.execPath, [CLI, 'agent', '--server', c.server, '--state-dir', stateDir, '--enroll-token', token], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CMDOP_LOG_LEVEL: 'warn' } }));
    await waitForLine(first, /connected/);
    first.kill('SIGTERM');
    await new Promise((r) => first.once('exit', r));
    const r = await runCli(['agent', 'install-service', '--print', '--user', '--server', c.server, '--state-dir', stateDir]);
    const unit = r.stdout.toString();
    const exec = /^ExecStart=(.*)$/m.exec(unit)![1].split(' ');
    const server = /^Environment=CMDOP_SERVER=(.*)$/m.exec(unit)![1];
    // What systemd would run: the unit's command, its environment, no token anywhere.
    assert.ok(!unit.includes(token));
    const a = track(spawn(exec[0], exec.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH!, HOME: process.env.HOME!, CMDOP_SERVER: server, CMDOP_LOG_LEVEL: 'warn' } }));
    try {
      await waitForLine(a, /cmdop agent svc connected/);
      await eventually(async () => (await c.client.machines.list()).find((m) => m.name === 'svc'));
    } finally {
      a.kill('SIGTERM');
      await new Promise((res) => a.once('exit', res));
    }
    const s = JSON.parse(fs.readFileSync(path.join(stateDir, 'status.json'), 'utf8'));
    assert.equal(s.state, 'stopped', 'a stopped agent says so');
  });
});
