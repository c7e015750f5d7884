// Bad input gets a clear error and changes nothing else; the server keeps serving.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ClientMessage, ServerMessage, SessionState } from '../protocol';
import {
  InvalidArgumentError,
  MachineNotFoundError,
  TerminalNotFoundError,
  TerminalAttachment,
} from '../sdk';
import { CLI, Cluster, runCli, startCluster } from './helpers/cluster';
import { Collected } from './helpers/collect';

describe('bad input', () => {
  let c: Cluster;
  let op: TerminalAttachment;
  let o: Collected;

  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    op = await c.client.terminal.open();
    o = new Collected(op);
  });
  after(async () => {
    // Whatever came before, the server still serves and the terminal still works.
    await op.sendInput('echo still-alive-$((1+1))\r');
    await o.waitFor('still-alive-2');
    const r = await c.client.terminal.execute('echo ok');
    assert.equal(r.stdout, 'ok\n');
    op.close();
    await c.stop();
  });

  it('unknown machine and unknown terminal are typed errors', async () => {
    await assert.rejects(c.client.terminal.execute('true', { machine: 'nope' }), MachineNotFoundError);
    await assert.rejects(c.client.terminal.attach('deadbeef'), TerminalNotFoundError);
    await assert.rejects(c.client.terminal.close('deadbeef'), TerminalNotFoundError);
    const r = await runCli(['exec', 'nope', '--', 'true'], { server: c.server });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /no machine named "nope"/);
  });

  it('zero or absurd sizes and unknown signals are refused', async () => {
    await assert.rejects(op.resize(0, 0), InvalidArgumentError);
    await assert.rejects(op.resize(100000, 10), InvalidArgumentError);
    await assert.rejects(op.signal('SIGFOO'), /unknown signal/);
    await assert.rejects(c.client.terminal.create({ cols: 0, rows: 5 }), InvalidArgumentError);
  });

  it('a replay from a sequence never sent is refused', async () => {
    await assert.rejects(
      c.client.terminal.attach(op.terminalId, { mode: 'observer', fromSeq: 1e12 }),
      (e: Error) => e instanceof InvalidArgumentError && /never sent/.test(e.message),
    );
  });

  it('bad terminal specs are refused', async () => {
    await assert.rejects(c.client.terminal.execute([]), /needs a command/);
    await assert.rejects(c.client.terminal.execute('true', { env: { 'BAD NAME': 'x' } }), /environment variable name/);
  });

  it('oversized input is refused on the stream, which stays usable', async () => {
    const call = c.client.transport().openStream();
    const got: ServerMessage[] = [];
    call.on('data', (m: ServerMessage) => got.push(m));
    call.on('error', () => {}); // the cancel at the end
    call.write({ msg: { $case: 'attach', value: { machine: 'box', terminalId: op.terminalId, open: undefined, mode: 1, fromSeq: undefined, acks: true } } });
    call.write({ msg: { $case: 'input', value: { data: Buffer.alloc(100 * 1024, 0x61), ref: 'big', eof: false } } });
    call.write({ msg: { $case: 'input', value: { data: Buffer.from('echo small-$((3+4))\r'), ref: 'small', eof: false } } });
    await o.waitFor('small-7');
    const err = got.find((m) => m.msg?.$case === 'error');
    assert.ok(err && err.msg?.$case === 'error');
    assert.equal(err.msg.value.ref, 'big');
    assert.equal(err.msg.value.code, 'INVALID_ARGUMENT');
    assert.ok(!o.text.includes('aaaaaaaaaa'), 'the oversized input reached the PTY');
    assert.ok(got.some((m) => m.msg?.$case === 'accepted' && m.msg.value.ref === 'small'));
    call.cancel();
  });

  it('the first message of an attach stream must be attach', async () => {
    const call = c.client.transport().openStream();
    const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
    call.on('error', () => {});
    call.write({ msg: { $case: 'heartbeat', value: { timestampMs: 1 } } });
    const s = await status;
    assert.equal(s.code, grpc.status.INVALID_ARGUMENT);
    assert.match(s.details, /first message/);
  });

  it('malformed and oversized gRPC messages get an error status', async () => {
    const raw = new grpc.Client(c.server, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1 });
    // Signed in: a stream without a valid token ends UNAUTHENTICATED before its messages are read.
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${c.token}`);
    const send = (payload: Buffer) =>
      new Promise<grpc.StatusObject>((resolve) => {
        const call = raw.makeBidiStreamRequest(
          '/cmdop.v1.ClientService/Attach',
          (b: Buffer) => b,
          (b: Buffer) => b,
          md,
        );
        call.on('data', () => {});
        call.on('error', () => {});
        call.on('status', resolve);
        call.write(payload);
        call.end();
      });
    const garbage = await send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
    assert.notEqual(garbage.code, grpc.status.OK);
    const huge = await send(Buffer.concat([ClientMessage.encode({ msg: { $case: 'heartbeat', value: { timestampMs: 1 } } }).finish(), Buffer.alloc(9 * 1024 * 1024)]));
    assert.equal(huge.code, grpc.status.RESOURCE_EXHAUSTED);
    raw.close();
  });

  it('a second agent claiming a connected machine name is refused; the first is untouched', async () => {
    // Even holding box's credential, an agent of another identity cannot take a connected machine's place.
    // (Enrolling box again is how to replace its agent: that revokes the old credential and cuts it off, test/hardening.)
    const stateDir = path.join(c.dir, 'intruder');
    fs.mkdirSync(stateDir, { recursive: true });
    fs.copyFileSync(path.join(c.dir, 'agent-box', 'credentials.json'), path.join(stateDir, 'credentials.json'));
    const intruder = spawn(process.execPath, [CLI, 'agent', '--server', c.server, '--name', 'box', '--state-dir', stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    intruder.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => intruder.on('exit', r));
    assert.equal(code, 1);
    assert.match(stderr, /machine name "box" is in use by another agent/);
    const m = (await c.client.machines.list()).find((x) => x.name === 'box')!;
    assert.equal(m.state, SessionState.CONNECTED);
  });

  it('a bad machine name is refused', async () => {
    const r = await runCli(['agent', '--name', 'bad name!', '--state-dir', path.join(c.dir, 'badname')], { server: c.server });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /machine name "bad name!" must be/);
  });
});
