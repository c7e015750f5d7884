// Sessions that survive: cuts, frozen agents, sleep and wake, heartbeats,
// and the grace period's byte-exact resume.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { SessionState } from '../protocol';
import { Agent } from '../app/agent';
import { createLogger } from '../lib/logger';
import { CmdopClient, NotDeliveredError, SessionDisconnectedError, TimeoutError } from '../sdk';
import { Cluster, eventually, runCli, startCluster, tempDir } from './helpers/cluster';
import { CutProxy } from './helpers/proxy';

/** A script whose output is known in advance: `lines` numbered lines, a pause every `every`. */
function steadyScript(lines: number, every: number, pauseS: number, exitCode = 0): { cmd: string; expected: string } {
  const cmd = `awk 'BEGIN{for(i=1;i<=${lines};i++){printf "line %d of a steady stream %06d\\n", i, i; if(i%${every}==0){fflush(); system("sleep ${pauseS}")}} exit ${exitCode}}'`;
  const expected = execFileSync('awk', [`BEGIN{for(i=1;i<=${lines};i++){printf "line %d of a steady stream %06d\\n", i, i}}`], {
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
  return { cmd, expected };
}

async function stateOf(client: CmdopClient, name: string) {
  return (await client.machines.list()).find((m) => m.name === name);
}

const quiet = createLogger('agent', 'silent');

describe('grace period through a cutting proxy', () => {
  let c: Cluster;
  let proxy: CutProxy;
  before(async () => {
    c = await startCluster({ agent: false, serverArgs: ['--grace-period', '15', '--heartbeat-timeout', '5'] });
    proxy = await CutProxy.start(c.server);
    await c.startAgent('box', ['--server', proxy.address, '--reconnect-min', '10', '--reconnect-max', '100', '--heartbeat-interval', '1']);
    c.client.setMachine('box');
  });
  after(async () => {
    await proxy.close();
    await c.stop();
  });

  it('at least 200 cuts at random moments during a steady stream lose and repeat nothing', async () => {
    const session = (await stateOf(c.client, 'box'))!.sessionId;
    const { cmd, expected } = steadyScript(60_000, 100, 0.02);
    const run = c.client.terminal.execute(cmd);
    let running = true;
    run.finally(() => (running = false)).catch(() => {});
    while (running && proxy.cuts < 200) {
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40));
      proxy.cut();
    }
    const r = await run;
    assert.ok(proxy.cuts >= 200, `only ${proxy.cuts} cuts happened before the script ended`);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.gaps, []);
    assert.equal(r.stdout.length, expected.length);
    assert.ok(r.stdout === expected, 'output differs from the source');
    const m = (await stateOf(c.client, 'box'))!;
    assert.equal(m.sessionId, session, 'the agent must resume the same session, not register anew');
  });

  it('execute() survives the agent being cut off for 10 s: all output and the exit code', async () => {
    await eventually(async () => (await stateOf(c.client, 'box'))?.state === SessionState.CONNECTED, 10_000, 'CONNECTED');
    const { cmd, expected } = steadyScript(300, 10, 0.1, 3);
    const run = c.client.terminal.execute(cmd);
    await new Promise((r) => setTimeout(r, 500));
    proxy.block();
    await eventually(async () => (await stateOf(c.client, 'box'))?.state === SessionState.GRACE_PERIOD, 10_000, 'GRACE_PERIOD');
    await new Promise((r) => setTimeout(r, 10_000));
    proxy.unblock();
    const r = await run;
    assert.equal(r.exitCode, 3);
    assert.equal(r.stdout, expected);
    assert.equal((await stateOf(c.client, 'box'))!.state, SessionState.CONNECTED);
  });

  it('a connection that silently stops forwarding is noticed by keepalive, and the agent resumes', async () => {
    const frozenProxy = await CutProxy.start(c.server);
    try {
      await c.startAgent('nat', ['--server', frozenProxy.address, '--keepalive', '1', '--reconnect-min', '10', '--heartbeat-interval', '1']);
      const session = (await stateOf(c.client, 'nat'))!.sessionId;
      const { cmd, expected } = steadyScript(300, 30, 0.2);
      const run = c.client.terminal.execute(cmd, { machine: 'nat' });
      // Two connections: the agent's stream and its file stream (AgentService.Bulk).
      await eventually(() => frozenProxy.open === 2, 5000, 'both agent connections');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(frozenProxy.freeze(), 2);
      // The agent's ping gets no answer within 1 s: it drops the connection and reconnects.
      await eventually(() => frozenProxy.open >= 1, 8000, 'a new connection through the proxy');
      const r = await run;
      assert.equal(r.stdout, expected);
      assert.equal((await stateOf(c.client, 'nat'))!.sessionId, session);
    } finally {
      await frozenProxy.close();
    }
  });

  it('clients ride out their own connection loss, re-attaching from the last byte seen', async () => {
    await eventually(async () => (await stateOf(c.client, 'box'))?.state === SessionState.CONNECTED, 10_000, 'CONNECTED');
    const clientProxy = await CutProxy.start(c.server);
    const client = new CmdopClient({ server: clientProxy.address, machine: 'box', token: c.token });
    try {
      const { cmd, expected } = steadyScript(20_000, 200, 0.05);
      const reconnects: string[] = [];
      const run = client.terminal.execute(cmd);
      let done = false;
      run.finally(() => (done = true)).catch(() => {});
      while (!done && clientProxy.cuts < 20) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 100));
        clientProxy.cut();
      }
      const r = await run;
      assert.ok(clientProxy.cuts >= 5, `only ${clientProxy.cuts} client cuts`);
      assert.equal(r.stdout, expected);
      assert.deepEqual(r.gaps, []);
      void reconnects;
      // The CLI says so on stderr.
      const cli = runCli(['exec', 'box', '--', steadyScript(2000, 100, 0.1).cmd], { server: clientProxy.address, env: { CMDOP_TOKEN: c.token } });
      // Cut once its command runs (the CLI takes a moment to start).
      await eventually(async () => (await c.client.terminal.list()).some((t) => !t.exited), 10_000, 'the CLI command running');
      await new Promise((res) => setTimeout(res, 200));
      clientProxy.cut();
      const out = await cli;
      assert.equal(out.code, 0);
      assert.equal(out.stdout.toString(), steadyScript(2000, 100, 0.1).expected);
      assert.match(out.stderr, /connection lost .*re-attaching from byte \d+/);
      assert.match(out.stderr, /re-attached at byte \d+/);
    } finally {
      client.close();
      await clientProxy.close();
    }
  });
});

describe('a frozen agent (SIGSTOP)', () => {
  it('shorter than the grace period: GRACE_PERIOD, then CONNECTED, output byte-exact', async () => {
    const c = await startCluster({ serverArgs: ['--grace-period', '8', '--heartbeat-timeout', '1'], agentArgs: ['--heartbeat-interval', '0.25', '--reconnect-min', '10'] });
    try {
      c.client.setMachine('box');
      const { cmd, expected } = steadyScript(400, 20, 0.1, 0);
      const run = c.client.terminal.execute(cmd);
      await new Promise((r) => setTimeout(r, 400));
      const agent = c.agents.get('box')!;
      agent.kill('SIGSTOP');
      await eventually(async () => (await stateOf(c.client, 'box'))?.state === SessionState.GRACE_PERIOD, 5000, 'GRACE_PERIOD');
      const m = (await stateOf(c.client, 'box'))!;
      assert.match(m.stateReason, /no heartbeat for 1 s/);
      assert.ok(m.graceDeadlineMs > Date.now(), 'a deadline in the future');
      const during = await runCli(['machines'], { server: c.server });
      assert.match(during.stdout.toString(), /box\s+GRACE_PERIOD \(\d+ s left\)/);
      assert.match(during.stdout.toString(), /box: the agent stopped answering: no heartbeat for 1 s/);
      await new Promise((r) => setTimeout(r, 1500));
      agent.kill('SIGCONT');
      await eventually(async () => (await stateOf(c.client, 'box'))?.state === SessionState.CONNECTED, 8000, 'CONNECTED again');
      const r = await run;
      assert.equal(r.stdout, expected);
      assert.equal(r.exitCode, 0);
      const table = await runCli(['machines'], { server: c.server });
      assert.match(table.stdout.toString(), /box\s+CONNECTED/);
    } finally {
      await c.stop();
    }
  });

  it('longer than the grace period: DISCONNECTED, clients told why; the agent returns with a new session', async () => {
    const c = await startCluster({ serverArgs: ['--grace-period', '2', '--heartbeat-timeout', '1'], agentArgs: ['--heartbeat-interval', '0.25', '--reconnect-min', '10'] });
    try {
      c.client.setMachine('box');
      const before = (await stateOf(c.client, 'box'))!.sessionId;
      const run = c.client.terminal.execute('while true; do echo tick; sleep 0.2; done');
      const cli = runCli(['exec', 'box', '--', 'sleep 600'], { server: c.server });
      // Both running (the CLI takes a moment to start) before the agent freezes.
      await eventually(async () => (await c.client.terminal.list()).filter((t) => !t.exited).length >= 2, 10_000, 'both commands running');
      const agent = c.agents.get('box')!;
      let agentErr = '';
      agent.stderr!.on('data', (d) => (agentErr += d));
      agent.kill('SIGSTOP');
      await assert.rejects(run, (e: Error) => e instanceof SessionDisconnectedError && /grace period of 2 s ran out/.test(e.message));
      const out = await cli;
      assert.equal(out.code, 255);
      assert.match(out.stderr, /disconnected: grace period of 2 s ran out/);
      const m = (await stateOf(c.client, 'box'))!;
      assert.equal(m.state, SessionState.DISCONNECTED);
      agent.kill('SIGCONT');
      await eventually(async () => (await stateOf(c.client, 'box'))?.state === SessionState.CONNECTED, 8000, 'a new session');
      assert.notEqual((await stateOf(c.client, 'box'))!.sessionId, before);
      await eventually(() => /previous session ended .*its terminals \w+, \w+ were closed/.test(agentErr), 5000, 'the agent saying what became of its terminals');
    } finally {
      await c.stop();
    }
  });
});

describe('liveness and sleep', () => {
  let c: Cluster;
  let dir: string;
  before(async () => {
    c = await startCluster({ agent: false, serverArgs: ['--grace-period', '5', '--heartbeat-timeout', '1', '--background-timeout', '1', '--client-timeout', '1'] });
    dir = tempDir();
  });
  after(() => c.stop());

  async function agent(name: string, extra: Partial<ConstructorParameters<typeof Agent>[0]> = {}): Promise<Agent> {
    const token = await c.agentToken(name);
    return new Agent({ server: c.server, token, name, stateDir: path.join(dir, name), heartbeatIntervalS: 0.25, backoffInitialMs: 10, logger: quiet, ...extra });
  }

  it('no heartbeat for the heartbeat timeout moves the session to GRACE_PERIOD', async () => {
    const a = await agent('silent', { heartbeatIntervalS: 3600 });
    await a.start();
    try {
      const client = c.newClient({ machine: 'silent', heartbeatIntervalMs: 200 });
      const t = await client.terminal.open();
      const states: string[] = [];
      t.on('state', (s) => states.push(`${SessionState[s.state]}: ${s.reason}`));
      await eventually(() => states.some((s) => /^GRACE_PERIOD: the agent stopped answering: no heartbeat for 1 s/.test(s)), 5000, 'GRACE_PERIOD from heartbeat loss');
      t.close();
      client.close();
    } finally {
      await a.stop();
    }
  });

  it('a client that stops sending heartbeats is closed; the session is untouched', async () => {
    const a = await agent('hb');
    await a.start();
    try {
      const lazy = c.newClient({ machine: 'hb', heartbeatIntervalMs: 3_600_000 });
      const good = c.newClient({ machine: 'hb', heartbeatIntervalMs: 200 });
      const t = await good.terminal.open();
      const lazyAttach = await lazy.terminal.attach(t.terminalId, { mode: 'observer' });
      await assert.rejects(lazyAttach.done, (e: Error) => e instanceof TimeoutError && /no client heartbeat for 1 s/.test(e.message));
      await new Promise((r) => setTimeout(r, 1500));
      await t.sendInput('echo alive-$((9*9))\r');
      await new Promise<void>((resolve) => t.on('output', (d) => Buffer.from(d).toString().includes('alive-81') && resolve()));
      assert.equal((await stateOf(good, 'hb'))!.state, SessionState.CONNECTED);
      t.close();
      lazy.close();
      good.close();
    } finally {
      await a.stop();
    }
  });

  it('BACKGROUND ends after the background timeout, and attached clients are told', async () => {
    const a = await agent('phone');
    await a.start();
    try {
      const client = c.newClient({ machine: 'phone', heartbeatIntervalMs: 200 });
      const t = await client.terminal.open();
      const states: string[] = [];
      t.on('state', (s) => states.push(`${SessionState[s.state]}: ${s.reason}`));
      a.setBackground(true);
      await assert.rejects(t.done, (e: Error) => e instanceof SessionDisconnectedError && /background for longer than 1 s/.test(e.message));
      assert.deepEqual(states, ['BACKGROUND: agent went to the background', 'DISCONNECTED: background for longer than 1 s']);
      client.close();
    } finally {
      await a.stop();
    }
  });

  it('suspend() moves the session to GRACE_PERIOD at once; resume() brings it back byte-exact', async () => {
    const a = await agent('laptop');
    await a.start();
    try {
      const session = a.sessionId;
      const client = c.newClient({ machine: 'laptop', heartbeatIntervalMs: 200 });
      const { cmd, expected } = steadyScript(200, 20, 0.1);
      const run = client.terminal.execute(cmd);
      await new Promise((r) => setTimeout(r, 300));
      a.suspend('lid closed');
      const m = await eventually(async () => {
        const s = await stateOf(client, 'laptop');
        return s?.state === SessionState.GRACE_PERIOD ? s : undefined;
      }, 1000, 'GRACE_PERIOD right after suspend()');
      assert.match(m!.stateReason, /agent suspended \(lid closed\)/);
      await new Promise((r) => setTimeout(r, 1500));
      a.resume();
      const r = await run;
      assert.equal(r.stdout, expected);
      assert.equal(a.sessionId, session);
      client.close();
    } finally {
      await a.stop();
    }
  });

  it('input refused while the machine is away says it was not delivered, and can be sent again', async () => {
    const a = await agent('away');
    await a.start();
    try {
      const client = c.newClient({ machine: 'away', heartbeatIntervalMs: 200 });
      const t = await client.terminal.open();
      a.suspend('lid closed');
      await eventually(async () => (await stateOf(client, 'away'))?.state === SessionState.GRACE_PERIOD, 3000, 'GRACE_PERIOD');
      await assert.rejects(t.sendInput('echo x\r'), NotDeliveredError);
      a.resume();
      await eventually(async () => (await stateOf(client, 'away'))?.state === SessionState.CONNECTED, 3000, 'CONNECTED');
      let out = '';
      t.on('output', (d) => (out += Buffer.from(d).toString()));
      await t.sendInput('echo again-$((5+6))\r');
      await eventually(() => out.includes('again-11'), 5000, 'the input sent again');
      t.close();
      client.close();
    } finally {
      await a.stop();
    }
  });

  it('an exec whose "opened" answer is lost in a cut still completes, with all its output', async () => {
    const proxy = await CutProxy.start(c.server);
    const a = await agent('cutopen', { server: proxy.address });
    await a.start();
    try {
      // Cut the agent off the moment it starts the command, before its answer leaves.
      const set = a.terminals.set.bind(a.terminals);
      a.terminals.set = (k, v) => {
        proxy.block();
        setTimeout(() => {
          proxy.unblock();
          a.resume();
        }, 300);
        return set(k, v);
      };
      const client = c.newClient({ machine: 'cutopen', heartbeatIntervalMs: 200 });
      const r = await client.terminal.execute('echo hello; sleep 0.5; echo world');
      assert.equal(r.stdout, 'hello\nworld\n');
      assert.equal(r.exitCode, 0);
      client.close();
    } finally {
      await a.stop();
      await proxy.close();
    }
  });

  it('a timer firing far too late is taken as a wake-up: the agent reconnects at once', async () => {
    const a = await agent('sleepy', { sleepDetectMs: 500 });
    await a.start();
    try {
      const session = a.sessionId;
      const woke = new Promise<number>((r) => a.once('wake', r));
      const reconnected = new Promise<void>((r) => a.once('connected', () => r()));
      const until = Date.now() + 1600;
      while (Date.now() < until); // the process is frozen, as in a sleep the OS did not announce
      assert.ok((await woke) > 500);
      await reconnected;
      assert.equal(a.sessionId, session, 'the same session, resumed');
    } finally {
      await a.stop();
    }
  });
});
