// The shared protocol pieces on their own: the hand-written output encoder
// against the generated codec, and the output log's offsets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  AgentMessage,
  ControlMessage,
  DownloadMessage,
  FILE_CHUNK_FIELD,
  OUTPUT_FIELD,
  OutputLog,
  OutputStream,
  ServerMessage,
  UploadMessage,
  encodeFileChunkEnvelope,
  encodeOutputEnvelope,
} from '../protocol';

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
  it('writes data given in parts (consecutive chunks sent as one message) exactly as the whole', () => {
    const data = randomBytes(200_000);
    const parts = [data.subarray(0, 1), data.subarray(1, 1), data.subarray(1, 70_000), data.subarray(70_000)];
    const whole = encodeOutputEnvelope(OUTPUT_FIELD.server, 'ab12cd34', 4096, data, 'c-1', OutputStream.STDOUT).bytes;
    const inParts = encodeOutputEnvelope(OUTPUT_FIELD.server, 'ab12cd34', 4096, parts, 'c-1', OutputStream.STDOUT).bytes;
    assert.ok(Buffer.from(whole).equals(inParts));
    assert.ok(Buffer.from(encodeOutputEnvelope(OUTPUT_FIELD.server, 't', 0, [], '', OutputStream.OUTPUT_STREAM_UNSPECIFIED).bytes).equals(
      encodeOutputEnvelope(OUTPUT_FIELD.server, 't', 0, new Uint8Array(), '', OutputStream.OUTPUT_STREAM_UNSPECIFIED).bytes,
    ));
  });
});

describe('encodeFileChunkEnvelope', () => {
  const envelopes = [
    { name: 'AgentMessage.fileChunk', field: FILE_CHUNK_FIELD.agent, encode: (value: object) => AgentMessage.encode({ msg: { $case: 'fileChunk', value } as never }).finish() },
    { name: 'ControlMessage.fileChunk', field: FILE_CHUNK_FIELD.control, encode: (value: object) => ControlMessage.encode({ msg: { $case: 'fileChunk', value } as never }).finish() },
    { name: 'DownloadMessage.chunk', field: FILE_CHUNK_FIELD.download, encode: (value: object) => DownloadMessage.encode({ msg: { $case: 'chunk', value } as never }).finish() },
    { name: 'UploadMessage.chunk', field: FILE_CHUNK_FIELD.upload, encode: (value: object) => UploadMessage.encode({ msg: { $case: 'chunk', value } as never }).finish() },
  ];
  const cases = [
    { requestId: 0, offset: 0, data: new Uint8Array() },
    { requestId: 1, offset: 0, data: Buffer.from('x') },
    { requestId: 300, offset: 2 ** 40 + 3, data: Buffer.alloc(70_000, 7) },
    { requestId: 2 ** 31, offset: Number.MAX_SAFE_INTEGER, data: Buffer.alloc(2 * 1024 * 1024, 1) },
  ];
  for (const e of envelopes) {
    it(`writes exactly what the generated encoder writes: ${e.name}`, () => {
      for (const c of cases) {
        const fast = encodeFileChunkEnvelope(e.field, c.requestId, c.offset, c.data).bytes;
        assert.ok(Buffer.from(e.encode(c)).equals(fast), `${e.name} ${c.requestId} ${c.offset} ${c.data.length}`);
      }
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
