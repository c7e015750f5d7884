// The cmdop command line as a person uses it: help, machines, and connect
// and watch driven through a real PTY.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as pty from 'node-pty';
import { CLI, Cluster, cliEnv, eventually, runCli, startCluster } from './helpers/cluster';

/** The CLI in a PTY of its own, as in a terminal window. */
function inPty(args: string[]) {
  const p = pty.spawn(process.execPath, [CLI, ...args], {
    cols: 100,
    rows: 30,
    env: cliEnv(args[args.indexOf('--server') + 1]),
  });
  let out = '';
  p.onData((d) => (out += d));
  const exit = new Promise<number>((r) => p.onExit((e) => r(e.exitCode)));
  return {
    p,
    exit,
    get out() {
      return out;
    },
    waitFor: (s: string, ms = 10_000) => eventually(() => out.includes(s), ms, `${JSON.stringify(s)} in ${JSON.stringify(out.slice(-400))}`),
  };
}

describe('cmdop CLI', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster();
  });
  after(() => c.stop());

  it('--help lists every command, and every command has its own --help', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    const commands = ['up', 'server', 'agent', 'machines', 'connect', 'watch', 'exec', 'login', 'logout', 'whoami', 'tokens', 'agents', 'grant', 'revoke', 'grants', 'share', 'users', 'audit', 'trust', 'cp', 'ls', 'rm', 'mkdir', 'mv'];
    for (const cmd of commands) assert.match(r.stdout.toString(), new RegExp(`\\n  ${cmd}\\b`));
    for (const cmd of commands) {
      const h = await runCli([cmd, '--help']);
      assert.equal(h.code, 0, cmd);
      assert.match(h.stdout.toString(), new RegExp(`Usage: cmdop ${cmd}`));
    }
    for (const sub of [['tokens', 'create'], ['tokens', 'list'], ['tokens', 'revoke'], ['agents', 'enroll'], ['users', 'add'], ['users', 'passwd']]) {
      const h = await runCli([...sub, '--help']);
      assert.equal(h.code, 0, sub.join(' '));
      assert.match(h.stdout.toString(), new RegExp(`Usage: cmdop ${sub.join(' ')}`));
    }
  });

  it('an unknown command or option is a clear error', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
    const s = await runCli(['server', '--grace-period', 'soon']);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /expected a positive number of seconds/);
  });

  it('machines shows state and capabilities, as a table and as JSON', async () => {
    const table = await runCli(['machines'], { server: c.server });
    assert.equal(table.code, 0);
    assert.match(table.stdout.toString(), /^NAME\s+STATE\s+OS\/ARCH/);
    assert.match(table.stdout.toString(), /\nbox\s+CONNECTED\s+linux\//);
    const json = JSON.parse((await runCli(['machines', '--json'], { server: c.server })).stdout.toString());
    const box = json.find((m: { name: string }) => m.name === 'box');
    assert.equal(box.state, 'CONNECTED');
    assert.equal(box.capabilities.pty, true);
    assert.ok(box.capabilities.shells.length > 0);
  });

  it('the server address comes from CMDOP_SERVER when --server is absent', async () => {
    const r = await runCli(['machines', '--json'], { env: { CMDOP_SERVER: c.server } });
    assert.equal(r.code, 0);
    const bad = await runCli(['machines'], { env: { CMDOP_SERVER: '127.0.0.1:1' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cannot reach the control plane at 127\.0\.0\.1:1/);
  });

  it('connect is an interactive shell: output, resize, exit status; watch follows read-only', async () => {
    const t = inPty(['--server', c.server, 'connect', 'box']);
    t.p.write('echo hello-$((20+22)); tput cols\r');
    await t.waitFor('hello-42');
    await t.waitFor('100');
    const terminals = await c.client.terminal.list('box');
    const id = terminals.find((x) => !x.exited && x.operators === 1)!.terminalId;

    const w = inPty(['--server', c.server, 'watch', 'box', id]);
    await w.waitFor('read-only');
    await w.waitFor('hello-42'); // the current screen first
    w.p.write('echo typed-by-watcher\r'); // never sent
    t.p.resize(120, 40);
    // The resize (SIGWINCH) and the next keystrokes race inside the CLI; type once the terminal has the new size.
    await eventually(async () => (await c.client.terminal.list('box')).find((x) => x.terminalId === id)?.cols === 120, 10_000, 'the PTY at 120 columns');
    t.p.write('tput cols; echo after-$((1+2))\r');
    await t.waitFor('after-3');
    await t.waitFor('120');
    await w.waitFor('after-3');
    assert.ok(!t.out.includes('typed-by-watcher'));

    t.p.write('exit 3\r');
    assert.equal(await t.exit, 3);
    await w.waitFor('exited with 3');
    assert.equal(await w.exit, 0);
  });

  it('Enter ~ . detaches from connect and the terminal keeps running', async () => {
    const t = inPty(['--server', c.server, 'connect', 'box']);
    t.p.write('echo one-$((2*3))\r');
    await t.waitFor('one-6');
    t.p.write('\r~.');
    assert.equal(await t.exit, 0);
    assert.match(t.out, /detached; terminal (\w+) keeps running/);
    const id = /terminal (\w+) keeps running/.exec(t.out)![1];
    const info = (await c.client.terminal.list('box')).find((x) => x.terminalId === id)!;
    assert.equal(info.exited, false);
    const again = inPty(['--server', c.server, 'connect', 'box', '--terminal', id]);
    again.p.write('echo back-$((4*4))\r');
    await again.waitFor('back-16');
    again.p.write('exit\r');
    assert.equal(await again.exit, 0);
  });
});
