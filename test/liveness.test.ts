// What the control plane says about an agent's liveness (issue 16): each
// terminal's foreground process as the agent reports it, the heartbeat's
// age and interval, and why a lost stream was lost: "the agent stopped
// answering" when its heartbeats were late before the stream went (a frozen
// agent whose connection is then cut, as keepalive or a NAT would), "the
// agent closed its stream" / "connection was lost" when they were not.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionState } from '../protocol';
import { Cluster, eventually, startCluster } from './helpers/cluster';
import { CutProxy } from './helpers/proxy';

describe('liveness as the control plane reports it', () => {
  let c: Cluster;
  let proxy: CutProxy;
  const box = async () => (await c.client.machines.list()).find((m) => m.name === 'box')!;
  before(async () => {
    // A heartbeat timeout far longer than the test: the grace period below can only come from the cut stream.
    c = await startCluster({ agent: false, serverArgs: ['--grace-period', '30', '--heartbeat-timeout', '60'] });
    proxy = await CutProxy.start(c.server);
    await c.startAgent('box', ['--server', proxy.address, '--heartbeat-interval', '0.5', '--reconnect-min', '10', '--reconnect-max', '200']);
    c.client.setMachine('box');
  });
  after(async () => {
    await proxy?.close();
    await c?.stop();
  });

  it("reports a terminal's foreground process while something other than its shell runs, and '' when the shell waits", async () => {
    const t = await c.client.terminal.open();
    try {
      const fg = async () => (await box()).terminals.find((x) => x.terminalId === t.terminalId)?.foreground;
      await eventually(async () => (await fg()) === '', 5000, 'an idle shell reported as nothing running');
      t.write('sleep 30\n');
      await eventually(async () => (await fg()) === 'sleep', 5000, 'sleep in the foreground');
      t.write('\x03');
      await eventually(async () => (await fg()) === '', 5000, 'nothing running after Ctrl-C');
    } finally {
      t.close();
    }
  });

  it('measures the heartbeat interval the agent really uses and reports the age on its own clock', async () => {
    await eventually(async () => Math.abs((await box()).heartbeatIntervalMs - 500) < 200, 5000, 'an interval of about 500 ms');
    const m = await box();
    assert.ok(m.heartbeatAgeMs > 0 && m.heartbeatAgeMs < 1500, `heartbeat ${m.heartbeatAgeMs} ms old`);
  });

  it('a cut with heartbeats on time is a lost connection, not an agent that stopped answering', async () => {
    const t = await c.client.terminal.open();
    const states: string[] = [];
    t.on('state', (x) => states.push(`${SessionState[x.state]}: ${x.reason}`));
    try {
      proxy.cut();
      await eventually(() => states.some((s) => s.startsWith('CONNECTED')), 10_000, `GRACE_PERIOD then CONNECTED (saw ${states})`);
      const grace = states.find((s) => s.startsWith('GRACE_PERIOD')) ?? '';
      assert.match(grace, /^GRACE_PERIOD: \S/, `the states seen: ${states.join(' | ')}`);
      assert.doesNotMatch(grace, /stopped answering/);
    } finally {
      t.close();
    }
  });

  it('a frozen agent whose stream is then lost "stopped answering" (not "closed its stream")', async () => {
    const agent = c.agents.get('box')!;
    agent.kill('SIGSTOP');
    try {
      // Late: the interval (0.5 s) plus the slack (2 s).
      await eventually(async () => (await box()).heartbeatAgeMs > 3000, 6000, 'a late heartbeat');
      assert.equal((await box()).state, SessionState.CONNECTED, 'still CONNECTED: the heartbeat timeout is 60 s');
      proxy.cut();
      await eventually(async () => (await box()).state === SessionState.GRACE_PERIOD, 5000, 'GRACE_PERIOD');
      assert.match((await box()).stateReason, /^the agent stopped answering: no heartbeat for [3-6] s$/);
    } finally {
      agent.kill('SIGCONT');
    }
    await eventually(async () => (await box()).state === SessionState.CONNECTED, 10_000, 'CONNECTED again');
  });
});

