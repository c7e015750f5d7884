// The metrics port (`cmdop server --metrics-listen`): real /metrics scraped
// over HTTP from a real control plane and agent, its values following what
// happens (terminals opened and closed, clients attached, an agent frozen
// into its grace period, a refused token); off without the flag, and never
// on the public ports.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { startControlPlane } from '../control-plane/server';
import { createLogger } from '../lib/logger';
import { CmdopClient, type TerminalAttachment } from '../sdk';
import { CLI, Cluster, cliEnv, eventually, freePort, startCluster, tempDir, track, waitForLine } from './helpers/cluster';

/** Prometheus text as `name{labels}` → value (comments dropped). */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The value of one series (missing: undefined). */
const v = (m: Map<string, number>, series: string) => m.get(series);

describe('metrics', () => {
  let c: Cluster;
  let url: string;
  let webUrl: string;

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}/metrics`;
    c = await startCluster({
      serverArgs: ['--metrics-listen', `127.0.0.1:${port}`, '--grace-period', '30', '--heartbeat-timeout', '2'],
      agentArgs: ['--heartbeat-interval', '0.25', '--reconnect-min', '10'],
    });
    c.client.setMachine('box');
    webUrl = (await c.client.auth.serverInfo()).webUrl;
  });
  after(async () => {
    await c?.stop();
  });

  it('says where it listens, and serves the process defaults with event-loop lag', async () => {
    const m = await scrape(url);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(m.has(name), `${name} is served`);
    }
    assert.equal(v(m, 'cmdop_sessions{state="CONNECTED"}'), 1);
    assert.equal(v(m, 'cmdop_agents_connected'), 1);
    assert.ok([...m.keys()].some((k) => k.startsWith('cmdop_build_info{version="0.1.0"')));
  });

  it('follows terminals opened, attached to and closed, and the bytes through the relay', async () => {
    const before = await scrape(url);
    assert.equal(v(before, 'cmdop_attachments{mode="OPERATOR"}'), 0);
    const opened: TerminalAttachment[] = [];
    for (let i = 0; i < 2; i++) {
      const a = await c.client.terminal.open();
      let seen = '';
      a.on('output', (d: Uint8Array) => (seen += Buffer.from(d).toString()));
      await a.write(`echo metrics-${i}-$((40+2))\n`);
      await eventually(() => seen.includes(`metrics-${i}-42`), 10_000, `terminal ${i} output`);
      opened.push(a);
    }
    const observer = await c.client.terminal.attach(opened[0].terminalId, { mode: 'observer' });
    const two = await scrape(url);
    assert.equal(v(two, 'cmdop_attachments{mode="OPERATOR"}'), 2);
    assert.equal(v(two, 'cmdop_attachments{mode="OBSERVER"}'), 1);
    assert.equal(v(two, 'cmdop_terminals{state="running"}'), 2);
    const fromAgent = v(two, 'cmdop_relay_bytes_total{direction="from_agent"}')!;
    const toClients = v(two, 'cmdop_relay_bytes_total{direction="to_clients"}')!;
    const toAgent = v(two, 'cmdop_relay_bytes_total{direction="to_agent"}')!;
    assert.ok(fromAgent > v(before, 'cmdop_relay_bytes_total{direction="from_agent"}')!, 'output from the agent counted');
    assert.ok(toClients >= fromAgent - 1, `output to clients counted (${toClients} of ${fromAgent} from the agent)`);
    assert.equal(toAgent - v(before, 'cmdop_relay_bytes_total{direction="to_agent"}')!, 2 * 'echo metrics-0-$((40+2))\n'.length, 'input to the agent, byte for byte');

    // Output the observer also gets counts once per attachment.
    let seen = '';
    opened[0].on('output', (d: Uint8Array) => (seen += Buffer.from(d).toString()));
    const payload = 'x'.repeat(100_000);
    await opened[0].write(`printf '%s\\n' ${payload} | wc -c\n`);
    await eventually(() => seen.includes('100001'), 10_000, 'the big echo');
    await eventually(async () => {
      const m = await scrape(url);
      return v(m, 'cmdop_relay_bytes_total{direction="to_clients"}')! - toClients >= 2 * 100_000 ? m : undefined;
    }, 5000, 'the output counted for both attachments');

    // Close one terminal (and its client): one operator, one running terminal left.
    const closing = opened.pop()!;
    await c.client.terminal.close(closing.terminalId);
    closing.close();
    observer.close();
    await eventually(async () => {
      const m = await scrape(url);
      return v(m, 'cmdop_attachments{mode="OPERATOR"}') === 1 && v(m, 'cmdop_attachments{mode="OBSERVER"}') === 0 && v(m, 'cmdop_terminals{state="running"}') === 1;
    }, 5000, 'one terminal and one operator left');
    opened[0].close();
    await eventually(async () => v(await scrape(url), 'cmdop_attachments{mode="OPERATOR"}') === 0, 5000, 'no client left');
  });

  it('counts file bytes both ways', async () => {
    const dir = tempDir('cmdop-metrics-files-');
    const before = await scrape(url);
    const data = Buffer.alloc(300_000, 7);
    await c.client.files.write(path.join(dir, 'f.bin'), data);
    assert.equal((await c.client.files.read(path.join(dir, 'f.bin'))).length, data.length);
    const m = await scrape(url);
    assert.equal(v(m, 'cmdop_file_bytes_total{direction="upload"}')! - v(before, 'cmdop_file_bytes_total{direction="upload"}')!, data.length);
    assert.equal(v(m, 'cmdop_file_bytes_total{direction="download"}')! - v(before, 'cmdop_file_bytes_total{direction="download"}')!, data.length);
  });

  it('times unary gRPC calls by method and code', async () => {
    await c.client.machines.list();
    await assert.rejects(c.client.terminal.close('no-such-terminal'));
    const m = await scrape(url);
    assert.ok(v(m, 'cmdop_grpc_call_duration_seconds_count{method="ClientService/ListMachines",code="OK"}')! >= 1);
    assert.ok(v(m, 'cmdop_grpc_call_duration_seconds_count{method="ClientService/CloseTerminal",code="NOT_FOUND"}')! >= 1);
    assert.ok(m.has('cmdop_grpc_call_duration_seconds_bucket{le="0.005",method="ClientService/ListMachines",code="OK"}'));
  });

  it('counts refused tokens by reason', async () => {
    const before = await scrape(url);
    const reason = (r: string, m: Map<string, number>) => v(m, `cmdop_auth_refusals_total{reason="${r}"}`) ?? 0;
    const issued = await c.client.auth.createToken('to revoke');
    await c.client.auth.revokeToken(issued.info!.id);
    for (const token of [issued.token, 'not-a-token-anyone-issued']) {
      const other = new CmdopClient({ server: c.server, token });
      await assert.rejects(other.machines.list(), /revoked|invalid/);
      other.close();
    }
    const m = await scrape(url);
    assert.equal(reason('revoked', m) - reason('revoked', before), 1);
    assert.equal(reason('oauth_invalid', m) - reason('oauth_invalid', before), 1);
    assert.ok(v(m, 'cmdop_grpc_call_duration_seconds_count{method="ClientService/ListMachines",code="UNAUTHENTICATED"}')! >= 2);
  });

  it('a frozen agent moves from CONNECTED to GRACE_PERIOD, and back', async () => {
    const agent = c.agents.get('box')!;
    agent.kill('SIGSTOP');
    try {
      await eventually(async () => {
        const m = await scrape(url);
        return v(m, 'cmdop_sessions{state="GRACE_PERIOD"}') === 1 && v(m, 'cmdop_sessions{state="CONNECTED"}') === 0 && v(m, 'cmdop_agents_connected') === 0;
      }, 8000, 'GRACE_PERIOD 1, CONNECTED 0, no agent connected');
    } finally {
      agent.kill('SIGCONT');
    }
    await eventually(async () => {
      const m = await scrape(url);
      return v(m, 'cmdop_sessions{state="CONNECTED"}') === 1 && v(m, 'cmdop_sessions{state="GRACE_PERIOD"}') === 0 && v(m, 'cmdop_agents_connected') === 1;
    }, 10_000, 'CONNECTED again');
  });

  it('is not served on the public ports', async () => {
    const res = await fetch(`${webUrl}/metrics`);
    assert.doesNotMatch(await res.text(), /cmdop_sessions|process_cpu_seconds_total/);
    const grpcPort = Number(c.server.split(':').pop());
    await assert.rejects(fetch(`http://127.0.0.1:${grpcPort}/metrics`).then((r) => r.text()).then((t) => assert.doesNotMatch(t, /cmdop_sessions/)).then(() => {
      throw new Error('answered');
    }));
  });
});

describe('metrics off, and refused ports', () => {
  it('without --metrics-listen there is no metrics port and prom-client is never loaded', async () => {
    const dir = tempDir('cmdop-metrics-off-');
    const cp = await startControlPlane({ listen: '127.0.0.1:0', dataDir: path.join(dir, 'cp'), logger: createLogger('control-plane', 'silent') });
    try {
      assert.equal(cp.metricsUrl, '');
      assert.ok(!Object.keys(require.cache).some((f) => f.includes(`${path.sep}prom-client${path.sep}`)), 'prom-client is not loaded');
      const res = await fetch(`${cp.webUrl}/metrics`);
      assert.doesNotMatch(await res.text(), /cmdop_sessions|process_cpu_seconds_total/);
    } finally {
      await cp.close();
    }
  });

  it('refuses a metrics port that is one of the public ports, saying so', async () => {
    const port = await freePort();
    for (const [metrics, what] of [
      [`127.0.0.1:${port}`, /port \d+ is the gRPC port \(--listen\)/],
      [`127.0.0.1:${port + 1}`, /port \d+ is the web port \(--web-listen\)/],
      ['9464', /--metrics-listen must be HOST:PORT/],
    ] as const) {
      const p = track(
        spawn(process.execPath, [CLI, 'server', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(tempDir('cmdop-metrics-refuse-'), 'cp'), '--metrics-listen', metrics], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...cliEnv(), CMDOP_RELAUNCH: '0' },
        }),
      );
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((r) => p.once('exit', r));
      assert.notEqual(code, 0);
      assert.match(err, what);
    }
  });

  it('cmdop server prints where metrics are', async () => {
    const [port, mport] = [await freePort(), await freePort()];
    const p = track(
      spawn(process.execPath, [CLI, 'server', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(tempDir('cmdop-metrics-print-'), 'cp'), '--metrics-listen', `127.0.0.1:${mport}`], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...cliEnv(), CMDOP_RELAUNCH: '0' },
      }),
    );
    try {
      const [, at] = await waitForLine(p, /metrics: (\S+)/);
      assert.equal(at, `http://127.0.0.1:${mport}/metrics`);
      const res = await fetch(at.replace('/metrics', '/'));
      assert.equal(res.status, 404);
    } finally {
      p.kill('SIGTERM');
    }
  });
});
