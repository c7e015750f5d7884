// `npm run cluster` (devcluster/main.ts), run for real: it comes up, a
// command runs on its agent through the HAProxy address (and through the
// replica list), and SIGINT stops it with exit 0, leaving no process of its
// and no directory behind. A replica killed from outside stops it all, with
// exit 1 and a message naming the replica.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { defaultMachineName } from '../lib/paths';
import { ROOT, cliEnv, eventually, runCli, track } from './helpers/cluster';

const MAIN = path.join(ROOT, 'dist', 'devcluster', 'main.js');
/** Generous: three replicas, PostgreSQL and an agent starting on a busy 2-core machine. */
const UP_MS = 240_000;

interface Proc {
  pid: number;
  /** Field 22 of /proc/PID/stat: with the pid, names one process even if the pid is reused. */
  start: string;
  cmd: string;
}

function stat(pid: number): { ppid: number; start: string } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (2nd field) may hold spaces and parentheses: count from its end.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), start: f[19] };
  } catch {
    return undefined;
  }
}

/** Every process under `root` (children, theirs, ...). */
function descendants(root: number): Proc[] {
  const all = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .flatMap((pid) => {
      const s = stat(pid);
      if (!s) return [];
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      } catch {
        return [];
      }
      return [{ pid, ppid: s.ppid, start: s.start, cmd }];
    });
  const out: Proc[] = [];
  const walk = (parent: number) => {
    for (const p of all.filter((x) => x.ppid === parent)) {
      out.push({ pid: p.pid, start: p.start, cmd: p.cmd });
      walk(p.pid);
    }
  };
  walk(root);
  return out;
}

const alive = (p: Proc) => stat(p.pid)?.start === p.start;

interface Launched {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(args: string[]): Launched {
  const proc = track(spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() }));
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  // 'close': exited, and its output read to the end.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  return { proc, out: () => out, err: () => err, exited };
}

/** Waits for the "is up" block and reads what it says. */
async function ready(l: Launched): Promise<{ front: string; list: string; token: string; dir: string; procs: Proc[] }> {
  const up = /CMDOP cluster is up[^]*?address\s+(\S+)[^]*?or the list\s+(\S+)[^]*?admin token\s+(\S+)[^]*?directory\s+(\S+)[^]*?Ctrl-C stops everything/;
  const m = await Promise.race([
    eventually(() => l.out().match(up), UP_MS, 'the cluster to be up'),
    l.exited.then(({ code, signal }) => {
      throw new Error(`exited (${signal ?? code}) before it was up:\n${l.out()}\n${l.err()}`);
    }),
  ]);
  return { front: m[1], list: m[2], token: fs.readFileSync(m[3], 'utf8').trim(), dir: m[4], procs: descendants(l.proc.pid!) };
}

describe('npm run cluster', () => {
  const launched: Launched[] = [];
  after(async () => {
    // A failed test must not leave a cluster running: stop what is still up.
    for (const l of launched) {
      if (l.proc.exitCode === null && l.proc.signalCode === null) {
        l.proc.kill('SIGINT');
        await Promise.race([l.exited, new Promise((r) => setTimeout(r, 30_000))]);
      }
    }
  });

  it('comes up, runs a command on its agent through HAProxy and through the list; SIGINT stops everything (exit 0, no process, no directory left)', async (t) => {
    const l = launch(['--port', '0']);
    launched.push(l);
    const t0 = performance.now();
    const c = await ready(l);
    t.diagnostic(`up after ${((performance.now() - t0) / 1000).toFixed(1)} s:\n${l.out()}`);

    // What it says it started is what runs under it.
    const kinds = {
      postgres: c.procs.filter((p) => /\/postgres -D /.test(p.cmd)).length,
      nats: c.procs.filter((p) => /nats-server/.test(p.cmd)).length,
      haproxy: c.procs.filter((p) => /haproxy -db/.test(p.cmd)).length,
      replicas: c.procs.filter((p) => /cmdop\.js server /.test(p.cmd)).length,
      agent: c.procs.filter((p) => /cmdop\.js agent /.test(p.cmd)).length,
    };
    assert.deepEqual(kinds, { postgres: 1, nats: 1, haproxy: 1, replicas: 3, agent: 1 }, c.procs.map((p) => p.cmd).join('\n'));
    assert.ok(fs.existsSync(c.dir));

    const name = defaultMachineName();
    const viaFront = await runCli(['exec', name, '--', 'echo', 'hi'], { server: c.front, env: { CMDOP_TOKEN: c.token }, timeoutMs: 120_000 });
    assert.equal(viaFront.code, 0, viaFront.stderr);
    assert.equal(viaFront.stdout.toString(), 'hi\n');
    const viaList = await runCli(['exec', name, '--', 'echo via-$((6*7))'], { server: c.list, env: { CMDOP_TOKEN: c.token }, timeoutMs: 120_000 });
    assert.equal(viaList.code, 0, viaList.stderr);
    assert.equal(viaList.stdout.toString(), 'via-42\n');

    l.proc.kill('SIGINT');
    const { code, signal } = await l.exited;
    assert.equal(signal, null, l.err());
    assert.equal(code, 0, l.err());
    assert.match(l.out(), /stopping everything… done/);
    await eventually(() => c.procs.every((p) => !alive(p)), 30_000, 'every process it started to be gone');
    assert.ok(!fs.existsSync(c.dir), `${c.dir} is removed`);
  });

  it('a replica killed from outside is reported and stops everything, exit 1', async () => {
    const l = launch(['--port', '0', '--replicas', '2']);
    launched.push(l);
    const c = await ready(l);
    const victim = c.procs.find((p) => /cmdop\.js server .*replica-2 /.test(p.cmd));
    assert.ok(victim, c.procs.map((p) => p.cmd).join('\n'));
    process.kill(victim.pid, 'SIGKILL');
    const { code } = await l.exited;
    assert.equal(code, 1);
    assert.match(l.err(), new RegExp(`replica 2 \\(pid ${victim.pid}\\) exited unexpectedly \\(signal SIGKILL\\)`));
    await eventually(() => c.procs.every((p) => !alive(p)), 30_000, 'every process it started to be gone');
    assert.ok(!fs.existsSync(c.dir), `${c.dir} is removed`);
  });
});
