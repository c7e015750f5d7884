// The gRPC calls of the SDK and the agent are typed from the generated
// service definitions (protocol/grpc.ts `typedClient`): a wrong method name,
// a request of the wrong type or a call of the wrong streaming kind does not
// compile. The `@ts-expect-error` lines below are that check: `npx tsc -p .`
// fails if any of them stops being an error. At run time, the client built
// from a definition has each of its methods, and the pre-encoded bytes of
// the hot messages still go out as they are.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  AgentMessage,
  AgentServiceDefinition,
  AuthServiceDefinition,
  ClientServiceDefinition,
  ControlMessage,
  Encoded,
  ListMachinesResponse,
  OUTPUT_FIELD,
  TerminalInfo,
  encodeOutputEnvelope,
  toGrpcService,
  typedClient,
} from '../protocol';
import { CmdopClient } from '../sdk';
import { ROOT } from './helpers/cluster';

/** Never called: only compiled. Each `@ts-expect-error` must be an error. */
export function compileTimeChecks(client: CmdopClient, md: grpc.Metadata): void {
  const Clients = typedClient(ClientServiceDefinition);
  const c = new Clients('127.0.0.1:1', grpc.credentials.createInsecure());
  c.listMachines({}, md, (err, res) => res?.machines);
  // @ts-expect-error: no such method
  c.listMachinez({}, md, () => {});
  // @ts-expect-error: the request of another method (OpenTerminal wants machine and spec)
  c.openTerminal({ machine: 'box' }, md, () => {});
  // @ts-expect-error: a field the request does not have
  c.listTerminals({ machine: 'box', bogus: 1 }, md, () => {});
  // @ts-expect-error: Attach is a bidirectional stream: it takes no request
  c.attach({ machine: 'box' }, md);
  const attach = c.attach(md);
  attach.write({ msg: { $case: 'heartbeat', value: { timestampMs: 1 } } });
  attach.write(new Encoded(Buffer.alloc(0))); // bytes encoded once pass through
  // @ts-expect-error: a message of another service (the agent's) on the client's stream
  attach.write({ msg: { $case: 'bulkHello', value: { sessionId: '', resumeToken: '' } } });
  attach.on('data', (m) => {
    // @ts-expect-error: what Attach receives is a ServerMessage, not a ControlMessage
    if (m.msg?.$case === 'registered') return;
  });
  // @ts-expect-error: a listener for another message than the method's response
  attach.on('data', (m: ControlMessage) => m);
  attach.on('error', (e) => e.code); // a ServiceError

  const Agents = typedClient(AgentServiceDefinition);
  const a = new Agents('127.0.0.1:1', grpc.credentials.createInsecure());
  const connect = a.connect(md);
  connect.write(encodeOutputEnvelope(OUTPUT_FIELD.agent, 't', 0, new Uint8Array(1), '', 0));
  connect.write(AgentMessage.fromPartial({}));
  // @ts-expect-error: AgentService has no Attach
  a.attach(md);

  const Auth = typedClient(AuthServiceDefinition);
  // @ts-expect-error: WhoAmI is not a ClientService method
  new Clients('x', grpc.credentials.createInsecure()).whoAmI({}, md, () => {});
  new Auth('x', grpc.credentials.createInsecure()).whoAmI({}, md, () => {});

  // The SDK's calls by name.
  const machines: Promise<ListMachinesResponse> = client.unary('listMachines', {});
  // @ts-expect-error: the response of ListMachines is not a TerminalInfo
  const wrong: Promise<TerminalInfo> = client.unary('listMachines', {});
  // @ts-expect-error: no such method
  void client.unary('listMachinez', {});
  // @ts-expect-error: StatFile needs a path
  void client.unary('statFile', { machine: 'box' });
  // @ts-expect-error: Download streams: not a unary call
  void client.unary('download', { machine: 'box', path: '/', offset: 0, transferId: '' });
  // @ts-expect-error: ListMachines is unary: not a stream
  client.duplex('listMachines');
  client.duplex('upload').on('data', (r) => r.msg);
  // @ts-expect-error: an AuthService method on ClientService
  void client.unary('whoAmI', {});
  void client.authUnary('whoAmI', {});
  void machines;
  void wrong;
}

describe('typed gRPC calls', () => {
  it('a client built from a definition has each of its methods, at its path', () => {
    for (const def of [ClientServiceDefinition, AuthServiceDefinition, AgentServiceDefinition]) {
      const Ctor = typedClient(def) as unknown as grpc.ServiceClientConstructor;
      for (const [key, m] of Object.entries(def.methods)) {
        assert.equal(typeof Ctor.prototype[key], 'function', `${def.name}.${key}`);
        const d = Ctor.service[key];
        assert.equal(d.path, `/${def.fullName}/${m.name}`);
        assert.equal(d.requestStream, m.requestStream);
        assert.equal(d.responseStream, m.responseStream);
      }
    }
  });

  it('pre-encoded bytes are written as they are, without a copy', () => {
    const def = toGrpcService(AgentServiceDefinition);
    const bytes = encodeOutputEnvelope(OUTPUT_FIELD.agent, 't1', 7, Buffer.from('hi'), '', 0);
    assert.ok(bytes instanceof Encoded);
    assert.equal(def.connect.requestSerialize(bytes), bytes.bytes);
    const decoded = AgentMessage.decode(def.connect.requestSerialize(bytes));
    assert.equal(decoded.msg?.$case, 'output');
  });

  it('no `any` in the SDK\'s and the agent\'s call paths', () => {
    for (const f of ['sdk/client.ts', 'sdk/files.ts', 'sdk/auth.ts', 'sdk/attachment.ts', 'app/agent/agent.ts']) {
      const src = fs.readFileSync(path.join(ROOT, f), 'utf8');
      assert.doesNotMatch(src, /\bas any\b|: any\b|<any>/, f);
    }
  });
});
