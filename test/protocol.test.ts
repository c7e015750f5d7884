// The shared protocol pieces on their own: the hand-written output encoder
// against the generated codec, and the output log's offsets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AgentMessage, OUTPUT_FIELD, OutputLog, OutputStream, ServerMessage, encodeOutputEnvelope } from '../protocol';

describe('encodeOutputEnvelope', () => {
  const cases = [
    { terminalId: 'ab12cd34', seq: 0, data: new Uint8Array(), commandId: '', stream: OutputStream.OUTPUT_STREAM_UNSPECIFIED },
    { terminalId: 'ab12cd34', seq: 1, data: Buffer.from('x'), commandId: 'c-1', stream: OutputStream.STDOUT },
    { terminalId: 't', seq: 2 ** 40 + 7, data: randomBytes(300_000), commandId: 'é-ünïcode', stream: OutputStream.STDERR },
  ];
  for (const [i, value] of cases.entries()) {
    it(`decodes with the generated codec exactly as the generated encoder's output (case ${i})`, () => {
      const agent = AgentMessage.decode(new Uint8Array(encodeOutputEnvelope(OUTPUT_FIELD.agent, value.terminalId, value.seq, value.data, value.commandId, value.stream).bytes));
      const server = ServerMessage.decode(new Uint8Array(encodeOutputEnvelope(OUTPUT_FIELD.server, value.terminalId, value.seq, value.data, value.commandId, value.stream).bytes));
      const expectedAgent = AgentMessage.decode(AgentMessage.encode({ msg: { $case: 'output', value } }).finish());
      const expectedServer = ServerMessage.decode(ServerMessage.encode({ msg: { $case: 'output', value } }).finish());
      assert.deepEqual(agent, expectedAgent);
      assert.deepEqual(server, expectedServer);
    });
  }
});

describe('OutputLog', () => {
  it('reads from any offset, trims, and skips ahead without losing track of offsets', () => {
    const log = new OutputLog();
    log.append(Buffer.from('hello '));
    log.append(Buffer.from('world'), 'c1');
    assert.equal(log.head, 11);
    assert.equal(Buffer.concat(log.readFrom(3).map((c) => c.data)).toString(), 'lo world');
    assert.equal(log.readFrom(8)[0].seq, 8);
    log.trimTo(4);
    assert.equal(log.start, 4);
    assert.equal(Buffer.concat(log.readFrom(0).map((c) => c.data)).toString(), 'o world');
    assert.deepEqual(log.readFrom(11), []);
    log.skipTo(20);
    assert.equal(log.start, 20);
    assert.equal(log.head, 20);
    assert.throws(() => log.skipTo(5), RangeError);
  });
});
