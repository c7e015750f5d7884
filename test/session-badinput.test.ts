// Bad input on the agent side: stolen or stale resume tokens and heartbeats
// for sessions that are not the stream's are refused, and nothing changes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AgentMessage, AgentServiceDefinition, ControlMessage, PROTOCOL_VERSION, SessionState, toGrpcService } from '../protocol';
import { Cluster, eventually, startCluster } from './helpers/cluster';

const AgentClient = grpc.makeGenericClientConstructor(toGrpcService(AgentServiceDefinition), 'AgentService');
type AgentCall = grpc.ClientDuplexStream<AgentMessage, ControlMessage>;

/** A hand-driven agent stream (Connect, or Bulk for file traffic): send what a real agent never would. */
function rawAgent(server: string, token: string, rpc: 'connect' | 'bulk' = 'connect') {
  const client = new AgentClient(server, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const call = (client as any)[rpc](md) as AgentCall;
  const got: ControlMessage[] = [];
  call.on('data', (m: ControlMessage) => got.push(m));
  call.on('error', () => {});
  const ended = new Promise<void>((r) => call.on('end', () => r()));
  return {
    call,
    got,
    ended,
    next: (kind: string) => eventually(() => got.find((m) => m.msg?.$case === kind), 5000, kind),
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

const caps = { os: 'linux', arch: 'x64', hostname: 'raw', shells: [], pty: false, files: false, version: 'test', protocolVersion: PROTOCOL_VERSION, uptimeMs: 0 };

/** A raw agent registered as `name`: its Connect stream and the session's resume token. */
async function registered(c: Cluster, name: string) {
  const token = await c.agentToken(name);
  const main = rawAgent(c.server, token);
  main.call.write({ msg: { $case: 'register', value: { agentId: `${name}-id`, name, capabilities: { ...caps, files: true }, orphanedTerminalIds: [] } } });
  const reg = (await main.next('registered'))!;
  assert.ok(reg.msg?.$case === 'registered');
  return { token, main, sessionId: reg.msg.value.sessionId, resumeToken: reg.msg.value.resumeToken };
}

describe('agent-side bad input', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({ serverArgs: ['--heartbeat-timeout', '1', '--grace-period', '2'], agentArgs: ['--heartbeat-interval', '0.25'] });
  });
  after(() => c.stop());

  const boxState = async () => (await c.client.machines.list()).find((m) => m.name === 'box')!;

  it('a resume with another agent id or a wrong token is refused; the real session is untouched', async () => {
    const box = await boxState();
    // Even holding box's own credential, a resume needs the session's resume token.
    const boxToken = c.storedAgentToken('box');
    const wrongAgent = rawAgent(c.server, boxToken);
    wrongAgent.call.write({
      msg: { $case: 'resume', value: { agentId: 'someone-else', sessionId: box.sessionId, resumeToken: Buffer.alloc(32), terminals: [], capabilities: caps } },
    });
    const refused = (await wrongAgent.next('refused'))!;
    assert.ok(refused.msg?.$case === 'refused');
    assert.equal(refused.msg.value.code, 'PERMISSION_DENIED');
    await wrongAgent.ended;
    wrongAgent.close();

    const wrongToken = rawAgent(c.server, boxToken);
    wrongToken.call.write({
      msg: { $case: 'resume', value: { agentId: box.agentId, sessionId: box.sessionId, resumeToken: Buffer.alloc(32, 7), terminals: [], capabilities: caps } },
    });
    const r2 = (await wrongToken.next('refused'))!;
    assert.ok(r2.msg?.$case === 'refused' && /resume token does not match/.test(r2.msg.value.message));
    wrongToken.close();

    const after = await boxState();
    assert.equal(after.state, SessionState.CONNECTED);
    assert.equal(after.sessionId, box.sessionId);
    const r = await c.client.terminal.execute('echo still-mine', { machine: 'box' });
    assert.equal(r.stdout, 'still-mine\n');
  });

  it('a resume of an ended session is refused with the reason it ended', async () => {
    const rawToken = await c.agentToken('raw');
    const first = rawAgent(c.server, rawToken);
    first.call.write({ msg: { $case: 'register', value: { agentId: 'raw-1', name: 'raw', capabilities: caps, orphanedTerminalIds: [] } } });
    const reg = (await first.next('registered'))!;
    assert.ok(reg.msg?.$case === 'registered');
    const { sessionId, resumeToken } = reg.msg.value;
    first.close(); // stream lost; no heartbeat either: GRACE_PERIOD, then DISCONNECTED after 2 s
    await eventually(async () => (await c.client.machines.list()).find((m) => m.name === 'raw')?.state === SessionState.DISCONNECTED, 8000, 'DISCONNECTED');
    const late = rawAgent(c.server, rawToken);
    late.call.write({ msg: { $case: 'resume', value: { agentId: 'raw-1', sessionId, resumeToken, terminals: [], capabilities: caps } } });
    const refused = (await late.next('refused'))!;
    assert.ok(refused.msg?.$case === 'refused');
    assert.equal(refused.msg.value.code, 'NOT_FOUND');
    assert.match(refused.msg.value.message, /has ended \(grace period of 2 s ran out\)/);
    late.close();
  });

  it('file traffic on the Bulk stream: bound by session and resume token; its file replies answer the main stream’s requests', async () => {
    const a = await registered(c, 'bulky');
    const bulk = rawAgent(c.server, a.token, 'bulk');
    bulk.call.write({ msg: { $case: 'bulkHello', value: { sessionId: a.sessionId, resumeToken: a.resumeToken } } });
    await bulk.next('bulkReady');
    // A stat goes to the agent on the main stream; the answer comes back on Bulk.
    const stat = c.client.files.stat('/etc/hostname', { machine: 'bulky' });
    const req = (await a.main.next('fileRequest'))!;
    assert.ok(req.msg?.$case === 'fileRequest' && req.msg.value.op?.$case === 'stat');
    const entry = { name: 'hostname', type: 1, size: 5, mode: 0o644, mtimeMs: 1, linkTarget: '' };
    bulk.call.write({ msg: { $case: 'fileReply', value: { requestId: req.msg.value.requestId, code: '', message: '', entry, entries: [], resumeOffset: 0, md5: Buffer.alloc(0), nextPageToken: '', totalEntries: 0, reason: '' } } });
    assert.equal((await stat).size, 5);
    // What is not a file message is ignored there: a heartbeat on Bulk keeps nothing alive.
    bulk.call.write({ msg: { $case: 'heartbeat', value: { sessionId: a.sessionId, timestampMs: Date.now(), cpuPercent: 0, memoryPercent: 0, diskPercent: 0, batteryPercent: -1 } } });
    bulk.close();
    a.main.close();
  });

  it('a Bulk stream with a wrong resume token, another machine’s credential, or no bulk_hello first is refused; the real session keeps working', async () => {
    const box = await boxState();
    const a = await registered(c, 'bulk-victim');
    const attempts: [string, string, AgentMessage, RegExp][] = [
      ['wrong token', a.token, { msg: { $case: 'bulkHello', value: { sessionId: a.sessionId, resumeToken: Buffer.alloc(32, 9) } } }, /PERMISSION_DENIED: resume token does not match/],
      ["box's credential", c.storedAgentToken('box'), { msg: { $case: 'bulkHello', value: { sessionId: a.sessionId, resumeToken: a.resumeToken } } }, /PERMISSION_DENIED: this credential is for machine box/],
      ['no such session', a.token, { msg: { $case: 'bulkHello', value: { sessionId: 'nope', resumeToken: a.resumeToken } } }, /NOT_FOUND: no session nope/],
      ['not bulk_hello first', a.token, { msg: { $case: 'fileChunk', value: { requestId: 1, offset: 0, data: Buffer.from('x') } } }, /INVALID_ARGUMENT: the first message on the bulk stream must be bulk_hello/],
    ];
    for (const [what, token, first, want] of attempts) {
      const b = rawAgent(c.server, token, 'bulk');
      b.call.write(first);
      const refused = (await b.next('refused'))!;
      assert.ok(refused.msg?.$case === 'refused', what);
      assert.match(`${refused.msg.value.code}: ${refused.msg.value.message}`, want, what);
      await b.ended;
      b.close();
    }
    assert.equal((await c.client.machines.list()).find((m) => m.name === 'bulk-victim')?.state, SessionState.CONNECTED);
    a.main.close();
    // box's real agent still moves files (on its own Bulk stream).
    const back = await c.client.files.read('/etc/hostname', { machine: 'box' });
    assert.ok(back.length > 0);
    assert.equal((await boxState()).sessionId, box.sessionId);
  });

  it('heartbeats for another session count for nothing', async () => {
    const box = await boxState();
    const raw = rawAgent(c.server, await c.agentToken('raw2'));
    raw.call.write({ msg: { $case: 'register', value: { agentId: 'raw-2', name: 'raw2', capabilities: caps, orphanedTerminalIds: [] } } });
    await raw.next('registered');
    const beat = setInterval(() => {
      raw.call.write({
        msg: { $case: 'heartbeat', value: { sessionId: box.sessionId, timestampMs: Date.now(), cpuPercent: 99, memoryPercent: 99, diskPercent: 99, batteryPercent: undefined, charging: undefined } },
      });
    }, 100);
    try {
      // Its own session gets no heartbeat, so it goes to GRACE_PERIOD as if none came ...
      const m = await eventually(async () => {
        const x = (await c.client.machines.list()).find((y) => y.name === 'raw2');
        return x?.state === SessionState.GRACE_PERIOD ? x : undefined;
      }, 5000, 'raw2 in GRACE_PERIOD');
      assert.match(m!.stateReason, /no heartbeat/);
      assert.equal(m!.lastHeartbeat, undefined);
      // ... and the session it named is untouched: its metrics are its own agent's.
      const b = await boxState();
      assert.equal(b.state, SessionState.CONNECTED);
      assert.notEqual(b.lastHeartbeat?.cpuPercent, 99);
    } finally {
      clearInterval(beat);
      raw.close();
    }
  });
});
