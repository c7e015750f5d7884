// Bad input on the agent side: stolen or stale resume tokens and heartbeats
// for sessions that are not the stream's are refused, and nothing changes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { AgentMessage, AgentServiceDefinition, ControlMessage, SessionState, toGrpcService } from '../protocol';
import { Cluster, eventually, startCluster } from './helpers/cluster';

const AgentClient = grpc.makeGenericClientConstructor(toGrpcService(AgentServiceDefinition), 'AgentService');
type AgentCall = grpc.ClientDuplexStream<AgentMessage, ControlMessage>;

/** A hand-driven agent stream: send what a real agent never would. */
function rawAgent(server: string, token: string) {
  const client = new AgentClient(server, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${token}`);
  const call = (client as any).connect(md) as AgentCall;
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

const caps = { os: 'linux', arch: 'x64', hostname: 'raw', shells: [], pty: false, files: false, version: 'test' };

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
