// The agent's release and uptime in `cmdop machines` (table and --json), and
// a control plane meeting an agent older than its protocol saying so: in
// its log, and in the machines list (MachineInfo.agent_notice).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Capabilities, PROTOCOL_VERSION, protocolOf } from '../protocol';
import { Agent } from '../app/agent';
import { olderAgentNotice } from '../control-plane/core/versions';
import { Cluster, eventually, runCli, startCluster } from './helpers/cluster';
import { startOlderAgent } from './helpers/olderAgent';

const VERSION: string = require('../../package.json').version;

describe('protocol versions', () => {
  const caps = (version: string, protocolVersion: number) => Capabilities.fromPartial({ version, protocolVersion });

  it('an agent that sends no number speaks protocol 1 (release 0.1.0)', () => {
    assert.equal(protocolOf(0), 1);
    assert.equal(protocolOf(undefined), 1);
    assert.equal(protocolOf(3), 3);
    assert.ok(PROTOCOL_VERSION >= 2, 'this build speaks a protocol newer than 0.1.0');
  });

  it('only an agent older than our protocol gets a notice', () => {
    assert.equal(olderAgentNotice(caps('0.1.0', 0), 2), "agent 0.1.0 speaks protocol 1, older than this control plane's protocol 2: upgrade it");
    assert.equal(olderAgentNotice(caps('0.2.0', 1), 3), "agent 0.2.0 speaks protocol 1, older than this control plane's protocol 3: upgrade it");
    assert.equal(olderAgentNotice(caps('0.2.0', 2), 2), '');
    assert.equal(olderAgentNotice(caps('0.3.0', 3), 2), '', 'a newer agent is not flagged');
    assert.equal(olderAgentNotice(caps('', 0), 2), '', 'nothing known of it: nothing said');
    assert.equal(olderAgentNotice(undefined, 2), '');
  });
});

describe('versions and uptime in the machines list', () => {
  let c: Cluster;
  let old: Agent;
  let cpLog = '';
  before(async () => {
    c = await startCluster();
    c.cp.stderr!.on('data', (d) => (cpLog += d));
    old = await startOlderAgent(c);
  });
  after(async () => {
    await old?.stop();
    await c?.stop();
  });

  it('lists each agent\'s version, protocol and uptime; an older one with its notice', async () => {
    const list = await c.client.machines.list();
    const box = list.find((m) => m.name === 'box')!;
    const oldbox = list.find((m) => m.name === 'oldbox')!;
    assert.equal(box.capabilities?.version, VERSION);
    assert.equal(box.capabilities?.protocolVersion, PROTOCOL_VERSION);
    assert.ok(box.agentUptimeMs > 0 && box.agentUptimeMs < 120_000, `box has run ${box.agentUptimeMs} ms`);
    assert.equal(box.agentNotice, '');
    assert.equal(
      oldbox.agentNotice,
      `agent ${VERSION} speaks protocol 1, older than this control plane's protocol ${PROTOCOL_VERSION}: upgrade it`,
    );
    // Uptime grows with the agent's, on the control plane's clock.
    await new Promise((r) => setTimeout(r, 1100));
    const later = (await c.client.machines.list()).find((m) => m.name === 'box')!;
    assert.ok(later.agentUptimeMs >= box.agentUptimeMs + 1000, `${later.agentUptimeMs} after ${box.agentUptimeMs}`);
  });

  it('cmdop machines shows VERSION and UPTIME, and the notice under the table', async () => {
    const r = await runCli(['machines'], { server: c.server });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.toString();
    assert.match(out, /NAME\s+STATE\s+OS\/ARCH\s+VERSION\s+UPTIME/);
    assert.match(out, new RegExp(`box\\s+CONNECTED\\s+\\S+\\s+${VERSION.replace(/\./g, '\\.')}\\s+\\d+[smhd]`));
    assert.match(out, new RegExp(`oldbox\\s+CONNECTED\\s+\\S+\\s+${VERSION.replace(/\./g, '\\.')} \\(old\\)`));
    assert.match(out, /oldbox: agent \S+ speaks protocol 1, older than this control plane's protocol \d+: upgrade it/);
    assert.doesNotMatch(out, /\bbox: agent/);
  });

  it('cmdop machines --json carries them too', async () => {
    const r = await runCli(['machines', '--json'], { server: c.server });
    const list = JSON.parse(r.stdout.toString()) as Record<string, unknown>[];
    const box = list.find((m) => m.name === 'box')!;
    const oldbox = list.find((m) => m.name === 'oldbox')!;
    assert.equal(box.agentVersion, VERSION);
    assert.equal(box.agentProtocol, PROTOCOL_VERSION);
    assert.equal(typeof box.agentUptimeS, 'number');
    assert.equal(box.agentNotice, undefined);
    assert.equal(oldbox.agentProtocol, 1);
    assert.match(String(oldbox.agentNotice), /older than this control plane's protocol/);
  });

  it('the control plane logs a warning for the older agent only', async () => {
    await eventually(() => /speaks protocol 1, older than this control plane's protocol/.test(cpLog), 5000, 'the warning');
    assert.match(cpLog, /"machine":"oldbox"/);
    assert.doesNotMatch(cpLog, /"machine":"box".*older than this control plane/);
  });

  // The console's view of the same: e2e/console/versions.spec.ts.

  it('the server tells clients its protocol', async () => {
    assert.equal((await c.client.auth.serverInfo()).protocolVersion, PROTOCOL_VERSION);
  });
});
