// What an attacker or a careless admin can do to the control plane: revoke
// an agent's credential (the agent must be cut off at once), open streams
// with a bogus token and never speak, open connections that never finish
// the HTTP/2 handshake or hold no stream, send oversized headers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { AgentServiceDefinition, ClientServiceDefinition, SessionState, TokenKind, toGrpcService } from '../protocol';
import { startControlPlane, type ControlPlane } from '../control-plane/server';
import { DEFAULT_CONNECTION_LIMITS } from '../control-plane/transports/grpc/connections';
import { createLogger } from '../lib/logger';
import { Cluster, eventually, runCli, startCluster, tempDir } from './helpers/cluster';

const AgentClient = grpc.makeGenericClientConstructor(toGrpcService(AgentServiceDefinition), 'AgentService');
const ClientClient = grpc.makeGenericClientConstructor(toGrpcService(ClientServiceDefinition), 'ClientService');

const exited = (p: ChildProcess) =>
  new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : void p.once('exit', () => r())));

describe('revoking an agent credential cuts the agent off at once', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({ agent: false });
  });
  after(() => c.stop());

  const machine = async (name: string) => (await c.client.machines.list()).find((m) => m.name === name)!;
  const agentTokenId = async (name: string) => {
    const t = (await c.client.auth.listTokens({ kind: TokenKind.AGENT })).filter((x) => x.machine === name && !x.revokedMs);
    assert.equal(t.length, 1, `one live credential for ${name}`);
    return t[0].id;
  };

  it('`cmdop tokens revoke` of a connected agent: its streams end, its clients hear why, the agent stops, the audit has it', async () => {
    const agent = await c.startAgent('rev');
    let agentErr = '';
    agent.stderr!.on('data', (d: Buffer) => (agentErr += d.toString()));
    const tab = await c.client.terminal.open({ machine: 'rev' });
    const states: { state: SessionState; reason: string }[] = [];
    tab.on('state', (s) => states.push(s));
    await tab.sendInput('echo alive-$((6*7))\r');
    const id = await agentTokenId('rev');
    const since = Date.now();

    const r = await runCli(['tokens', 'revoke', id], { server: c.server });
    assert.equal(r.code, 0, r.stderr);
    // The agent's Connect and Bulk streams (a session counts once per stream it holds).
    assert.match(r.stdout.toString(), new RegExp(`revoked ${id}; [1-9]\\d* live stream\\(s\\) closed`));

    const m = await machine('rev');
    assert.equal(m.state, SessionState.DISCONNECTED);
    assert.match(m.stateReason, new RegExp(`credential revoked: token ${id} was revoked`));
    await eventually(() => states.some((s) => s.state === SessionState.DISCONNECTED && /credential revoked/.test(s.reason)), 5000, 'the tab told why');
    await tab.done.catch(() => {});
    // The agent was refused for good: it exits saying why instead of retrying.
    await exited(agent);
    assert.notEqual(agent.exitCode, 0);
    assert.match(agentErr, /revoked/);
    const audit = await c.client.auth.audit({ machine: 'rev', sinceMs: since });
    assert.ok(audit.some((e) => e.action === 'token-revoke'), 'the revoke is audited');
    assert.ok(audit.some((e) => e.action === 'agent-revoked' && /credential revoked/.test(e.detail)), 'the cut session is audited');
    await assert.rejects(c.client.terminal.open({ machine: 'rev' }), /DISCONNECTED|credential revoked/);
  });

  it('enrolling the machine again cuts off the agent running with the old credential', async () => {
    const agent = await c.startAgent('reen');
    await c.agentToken('reen'); // a new enrollment of the same machine
    const m = await eventually(async () => {
      const x = await machine('reen');
      return x.state === SessionState.DISCONNECTED ? x : undefined;
    }, 5000, 'reen DISCONNECTED');
    assert.match(m!.stateReason, /credential revoked: machine reen was enrolled again/);
    await exited(agent);
  });

  it('a session in its grace period ends at once too: its agent could never resume it', async () => {
    const agent = await c.startAgent('gone');
    const id = await agentTokenId('gone');
    agent.kill('SIGKILL');
    await eventually(async () => (await machine('gone')).state === SessionState.GRACE_PERIOD, 10_000, 'GRACE_PERIOD');
    const r = await c.client.auth.revokeToken(id);
    assert.equal(r.streamsClosed, 1);
    const m = await machine('gone');
    assert.equal(m.state, SessionState.DISCONNECTED);
    assert.match(m.stateReason, /credential revoked/);
  });
});

describe('streams are authenticated as they open', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({ agent: false });
  });
  after(() => c.stop());

  it('thousands of Connect, Bulk and Attach streams with a bogus token that never send a message all end UNAUTHENTICATED', async () => {
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer cmdop_api_bogusbogusbogusbogusbogus');
    const agents = new AgentClient(c.server, grpc.credentials.createInsecure());
    const clients = new ClientClient(c.server, grpc.credentials.createInsecure());
    const N = 1500;
    const ends: Promise<number>[] = [];
    for (let i = 0; i < N; i++) {
      for (const [client, rpc] of [[agents, 'connect'], [agents, 'bulk'], [clients, 'attach']] as const) {
        const call = (client as unknown as Record<string, (m: grpc.Metadata) => grpc.ClientDuplexStream<unknown, unknown>>)[rpc](md);
        call.on('data', () => {});
        ends.push(new Promise((r) => call.on('error', (e: grpc.ServiceError) => r(e.code))));
      }
    }
    const codes = await Promise.race([
      Promise.all(ends),
      new Promise<never>((_, j) => setTimeout(() => j(new Error('streams still open after 20 s')), 20_000)),
    ]);
    assert.equal(codes.length, 3 * N);
    assert.ok(codes.every((x) => x === grpc.status.UNAUTHENTICATED), `codes: ${[...new Set(codes)]}`);
    agents.close();
    clients.close();
  });

  it('a bad token followed by a truncated first message ends UNAUTHENTICATED, never OK', async () => {
    const port = Number(c.server.split(':').pop());
    for (const p of ['/cmdop.v1.AgentService/Connect', '/cmdop.v1.AgentService/Bulk', '/cmdop.v1.ClientService/Attach', '/cmdop.v1.ClientService/Upload']) {
      const session = http2.connect(`http://127.0.0.1:${port}`);
      const req = session.request({
        ':method': 'POST',
        ':path': p,
        'content-type': 'application/grpc',
        te: 'trailers',
        authorization: 'Bearer nope',
      });
      // A frame header that promises 1,000 bytes, then 10 of them, then the end.
      const frame = Buffer.alloc(15);
      frame.writeUInt32BE(1000, 1);
      req.end(frame);
      const st = await new Promise<string>((resolve, reject) => {
        let code = '';
        req.on('response', (h) => (code = String(h['grpc-status'] ?? code)));
        req.on('trailers', (h) => (code = String(h['grpc-status'] ?? code)));
        req.on('close', () => resolve(code));
        req.on('error', reject);
        req.resume();
      });
      assert.equal(st, String(grpc.status.UNAUTHENTICATED), p);
      session.close();
    }
  });

  it('the server advertises bounded streams per connection and header list size, and refuses oversized headers', async () => {
    const port = Number(c.server.split(':').pop());
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const settings = await new Promise<http2.Settings>((r) => session.once('remoteSettings', r));
    assert.equal(settings.maxConcurrentStreams, DEFAULT_CONNECTION_LIMITS.maxStreams);
    assert.equal(settings.maxHeaderListSize, DEFAULT_CONNECTION_LIMITS.maxHeaderListBytes);
    session.close();
    // 32 KiB of metadata: refused, and the server goes on serving.
    const md = new grpc.Metadata();
    md.set('x-junk', 'x'.repeat(32 * 1024));
    const clients = new ClientClient(c.server, grpc.credentials.createInsecure());
    const err = await new Promise<grpc.ServiceError | null>((r) =>
      (clients as unknown as Record<string, Function>).listMachines({}, md, (e: grpc.ServiceError | null) => r(e)),
    );
    assert.ok(err, 'an oversized header list is refused');
    clients.close();
    assert.ok((await c.client.machines.list()).length >= 0);
  });
});

describe('connections that never finish the handshake or hold no stream are closed', () => {
  let cp: ControlPlane;
  let dir: string;
  before(async () => {
    dir = tempDir();
    cp = await startControlPlane({
      listen: '127.0.0.1:0',
      dataDir: path.join(dir, 'cp'),
      logger: createLogger('control-plane', 'silent'),
      connectionLimits: { handshakeMs: 1000, idleMs: 1500 },
    });
  });
  after(async () => {
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Opens `n` TCP connections that send `first` (maybe nothing) and resolves with when each was closed by the server, ms after open. */
  async function holdOpen(n: number, first: Buffer): Promise<number[]> {
    const t0 = Date.now();
    return Promise.all(
      Array.from({ length: n }, () =>
        new Promise<number>((resolve) => {
          const s = net.connect(cp.port, '127.0.0.1', () => {
            if (first.length) s.write(first);
          });
          s.on('data', () => {}); // read what the server sends (its SETTINGS, a GOAWAY)
          s.on('error', () => {});
          s.on('close', () => resolve(Date.now() - t0));
          setTimeout(() => s.destroy(), 15_000).unref();
        }),
      ),
    );
  }

  it('silent connections and ones that send only the HTTP/2 preface are closed by the server', async () => {
    const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]); // an empty SETTINGS frame: the handshake is complete
    const [silent, prefaceOnly, handshaken] = await Promise.all([
      holdOpen(100, Buffer.alloc(0)),
      holdOpen(100, PREFACE),
      holdOpen(100, Buffer.concat([PREFACE, SETTINGS])),
    ]);
    // Closed by the server, not by the 15 s fallback above.
    for (const [what, times] of [['silent', silent], ['preface only', prefaceOnly], ['no stream', handshaken]] as const) {
      assert.ok(Math.max(...times) < 10_000, `${what}: the last was closed after ${Math.max(...times)} ms`);
    }
  });
});
