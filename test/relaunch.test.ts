// `cmdop server` runs its control plane in a node started with the heap flag
// it needs (cli/relaunch.ts): the flag is there, signals reach it, and a
// launcher killed outright leaves no control plane behind holding the port.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, eventually, tempDir } from './helpers/cluster';
import { SERVER_NODE_FLAGS } from '../cli/relaunch';

const linux = process.platform === 'linux' ? false : 'reads /proc';

function startServer(env: NodeJS.ProcessEnv = {}) {
  const dir = tempDir('cmdop-relaunch-');
  const p = spawn(process.execPath, [CLI, 'server', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'cp')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CMDOP_LOG_LEVEL: 'warn', ...env },
  });
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d));
  const listening = eventually(() => /listening on (\S+)/.exec(out)?.[1], 20_000, 'listening');
  return { p, dir, listening };
}

const childrenOf = (pid: number) =>
  fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '');
const exited = (p: ChildProcess) => (p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : once(p, 'exit').then(() => {}));

describe('cmdop server in a node with its heap flags', { skip: linux }, () => {
  it('runs the control plane with --initial-old-space-size; SIGTERM stops both with exit 0', async () => {
    const s = startServer();
    await s.listening;
    const [child] = childrenOf(s.p.pid!);
    assert.ok(child, 'a child process runs the control plane');
    for (const f of SERVER_NODE_FLAGS) assert.ok(cmdline(child).includes(f), `${f} in ${cmdline(child).join(' ')}`);
    s.p.kill('SIGTERM');
    await exited(s.p);
    assert.equal(s.p.exitCode, 0);
    await eventually(() => !alive(child), 10_000, 'the control plane stopped');
    fs.rmSync(s.dir, { recursive: true, force: true });
  });

  it('a launcher killed with SIGKILL takes its control plane with it', async () => {
    const s = startServer();
    await s.listening;
    const [child] = childrenOf(s.p.pid!);
    assert.ok(child && alive(child));
    s.p.kill('SIGKILL');
    await exited(s.p);
    await eventually(() => !alive(child), 10_000, 'the orphaned control plane exited');
    fs.rmSync(s.dir, { recursive: true, force: true });
  });

  it('CMDOP_RELAUNCH=0 runs it in this process, as before', async () => {
    const s = startServer({ CMDOP_RELAUNCH: '0' });
    await s.listening;
    assert.deepEqual(childrenOf(s.p.pid!), []);
    s.p.kill('SIGTERM');
    await exited(s.p);
    assert.equal(s.p.exitCode, 0);
    fs.rmSync(s.dir, { recursive: true, force: true });
  });
});
