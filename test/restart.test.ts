// A control plane that dies (SIGKILL) or is stopped (SIGTERM) and comes back
// on the same data directory within the grace period loses no session and
// no byte: the agent holds what was not acknowledged, the session resumes
// under the same id, and every client re-attaches from its last byte.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { SessionState } from '../protocol';
import { Cluster, eventually, runCli, startCluster } from './helpers/cluster';
import { startPostgres, type Postgres } from './helpers/postgres';

/** A command whose output takes ~`seconds` to come out, then exits 7: what it prints is `expected(lines)`. */
function slowCommand(lines: number, seconds: number): string {
  const batches = 40;
  const per = Math.ceil(lines / batches);
  return `for b in $(seq 0 ${batches - 1}); do seq $((b*${per}+1)) $((b*${per}+${per})); sleep ${(seconds / batches).toFixed(3)}; done; exit 7`;
}
function expected(lines: number): Buffer {
  const per = Math.ceil(lines / 40);
  let s = '';
  for (let i = 1; i <= per * 40; i++) s += `${i}\n`;
  return Buffer.from(s);
}
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const cases = [
  { signal: 'SIGKILL', store: 'sqlite' },
  { signal: 'SIGTERM', store: 'sqlite' },
  // The same with the state in PostgreSQL (one control plane; replicas share it the same way).
  { signal: 'SIGKILL', store: 'postgres' },
] as const;

for (const { signal, store } of cases) {
  describe(`the control plane (${store}) is stopped by ${signal} and started again`, () => {
    let c: Cluster;
    let pg: Postgres | undefined;
    before(async () => {
      const storeArgs: string[] = [];
      if (store === 'postgres') {
        pg = await startPostgres();
        storeArgs.push('--store', await pg.newDatabase('cmdop_restart'));
      }
      c = await startCluster({ serverArgs: ['--grace-period', '30', ...storeArgs] });
      c.client.setMachine('box');
    });
    after(async () => {
      await c?.stop();
      await pg?.stop();
    });

    const box = async () => (await c.client.machines.list()).find((m) => m.name === 'box')!;

    it('an exec and an interactive terminal running across it: byte-exact, exit code kept, same session', async () => {
      const before = await box();
      assert.equal(before.state, SessionState.CONNECTED);
      const LINES = 400_000; // ~2.7 MB over ~4 s
      const chunks: Buffer[] = [];
      const run = c.client.terminal.execute(slowCommand(LINES, 4), { onOutput: (d) => chunks.push(Buffer.from(d)) });

      const shell = await c.client.terminal.open();
      let screen = '';
      const reconnects: string[] = [];
      shell.on('output', (d) => (screen += Buffer.from(d).toString()));
      shell.on('reconnecting', (r) => reconnects.push(r));
      await shell.sendInput('for i in $(seq 1 150); do echo tick-$i; sleep 0.02; done\r');
      await eventually(() => /tick-20\r?\n/.test(screen), 10_000, 'the shell running');
      await eventually(() => chunks.reduce((n, b) => n + b.length, 0) > 100_000, 10_000, 'exec output flowing');

      // Down for a moment, as a crash and a supervisor's restart would be.
      await c.restartServer(signal, 500);

      const r = await run;
      assert.equal(r.exitCode, 7);
      const got = Buffer.concat(chunks);
      const want = expected(LINES);
      assert.equal(got.length, want.length, 'exec output length');
      assert.equal(sha(got), sha(want), 'exec output byte for byte');
      assert.equal(r.stdout, want.toString());

      await eventually(() => /tick-150\r?\n/.test(screen), 20_000, 'the shell finishing');
      for (let i = 1; i <= 150; i++) {
        assert.equal(screen.split(`tick-${i}\r\n`).length - 1, 1, `tick-${i} exactly once`);
      }
      assert.ok(reconnects.length >= 1, 'the terminal re-attached');
      await shell.sendInput('echo after-$((40+2))\r');
      await eventually(() => screen.includes('after-42'), 10_000, 'input after the restart');

      const now = await eventually(async () => {
        const m = await box();
        return m.state === SessionState.CONNECTED ? m : undefined;
      }, 15_000, 'box CONNECTED again');
      assert.equal(now!.sessionId, before.sessionId, 'the same session');
      shell.close();
    });

    it('`cmdop exec` across it: its output and exit code, as if nothing happened', async () => {
      const LINES = 200_000;
      // Restarted once its output flows, so the restart lands mid-exec: a fixed
      // delay let a CLI slowed by a busy machine meet the restart before it had
      // ever connected (ECONNREFUSED on its first call, which is right to fail).
      let flowing!: () => void;
      const streaming = new Promise<void>((r) => (flowing = r));
      const p = runCli(['exec', 'box', '--', slowCommand(LINES, 3)], { server: c.server, onStdout: () => flowing() });
      await streaming;
      await c.restartServer(signal, 300);
      const res = await p;
      assert.equal(res.code, 7, res.stderr);
      assert.equal(sha(res.stdout), sha(expected(LINES)));
    });
  });
}

describe('a machine away after a restart says why', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({ serverArgs: ['--grace-period', '3'] });
  });
  after(() => c.stop());

  it('while its agent is reconnecting, and after its grace period ran out', async () => {
    const agent = c.agents.get('box')!;
    agent.kill('SIGSTOP'); // the agent cannot come back for now
    try {
      await c.restartServer('SIGKILL');
      const r = await runCli(['exec', 'box', '--', 'true'], { server: c.server });
      assert.equal(r.code, 255);
      assert.match(r.stderr, /machine box is reconnecting \(the control plane restarted\); its session is kept for \d+ s more/);
      await eventually(async () => (await c.client.machines.list()).find((m) => m.name === 'box')!.state === SessionState.DISCONNECTED, 10_000, 'DISCONNECTED');
      const r2 = await runCli(['exec', 'box', '--', 'true'], { server: c.server });
      assert.match(r2.stderr, /machine box is DISCONNECTED \(grace period of 3 s ran out, \d+ s ago\)/);
    } finally {
      agent.kill('SIGCONT');
    }
  });
});
