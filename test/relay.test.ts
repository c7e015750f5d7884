// The relay on its own (no transport, no agent): what a client that was
// held back is sent once it may read again. Consecutive output of one
// command goes out in messages of at most MAX_OUTPUT_CHUNK bytes, every byte
// exactly once and in order, and never across a change of command or stream.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AttachMode, Encoded, MAX_OUTPUT_CHUNK, OutputStream, ServerMessage } from '../protocol';
import { execSpec } from '../protocol/terminalSpec';
import { TerminalRelay, type AttachStream, type RelayHost } from '../control-plane/core/relay';
import { createLogger } from '../lib/logger';

const logger = createLogger('test', 'silent');

/** A client stream that takes messages only while `open`; decodes what it is sent. */
function fakeStream() {
  const sent: ServerMessage[] = [];
  let drain: (() => void) | undefined;
  const s = {
    open: false,
    sent,
    write(m: ServerMessage | Encoded): boolean {
      sent.push(m instanceof Encoded ? ServerMessage.decode(m.bytes) : m);
      return s.open;
    },
    end() {},
    fail() {},
    onDrain(l: () => void) {
      drain = l;
    },
    closed: false,
    /** The client may read again. */
    drain() {
      s.open = true;
      drain?.();
    },
  };
  return s;
}

function relayOf(): TerminalRelay {
  const host: RelayHost = { name: 'box', logger, sendToAgent: () => true, agentConnected: () => true, persist: () => {} };
  const spec = execSpec(['x']);
  return new TerminalRelay('t1', spec, host);
}

const outputs = (sent: ServerMessage[]) =>
  sent.flatMap((m) => (m.msg?.$case === 'output' ? [m.msg.value] : []));

describe('relay: output for a client that was held back', () => {
  it('goes out in runs of one command, at most MAX_OUTPUT_CHUNK bytes each, every byte once and in order', () => {
    const relay = relayOf();
    const s = fakeStream();
    relay.attach(s as unknown as AttachStream, AttachMode.OPERATOR, 0, logger, true);
    // The stream is full from the start (it took `attached` and said stop): the output waits in the relay.
    const sizes = [4096, 40_000, 90_000, 100_000, 70_000, 4096, 300_000, 1, 65_536, 120_000];
    const commands = ['a', 'a', 'a', 'a', 'a', 'b', 'b', 'b', 'b', 'b'];
    const streams = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2].map((x) => (x === 1 ? OutputStream.STDOUT : OutputStream.STDERR));
    const chunks = sizes.map((n) => randomBytes(n));
    let seq = 0;
    for (const [i, data] of chunks.entries()) {
      relay.onOutput({ terminalId: 't1', seq, data, commandId: commands[i], stream: streams[i] });
      seq += data.length;
    }
    assert.equal(outputs(s.sent).length, 0, 'nothing sent while the stream is full');
    s.drain();
    const out = outputs(s.sent);
    // Every byte exactly once, in order, at the right offsets.
    let at = 0;
    for (const o of out) {
      assert.equal(o.seq, at);
      at += o.data.length;
    }
    assert.equal(at, seq);
    assert.ok(Buffer.concat(out.map((o) => o.data)).equals(Buffer.concat(chunks)));
    // Merged, but never over the bound (a chunk larger than it alone), never across a command or a stream.
    for (const o of out) {
      assert.ok(o.data.length <= MAX_OUTPUT_CHUNK || sizes.includes(o.data.length), `${o.data.length} bytes in one message`);
    }
    const cut = (o: { seq: number; data: Uint8Array }) => [o.seq, o.seq + o.data.length];
    let start = 0;
    const bounds = chunks.map((c) => ((start += c.length), start));
    for (const [i, o] of out.entries()) {
      const [from, to] = cut(o);
      const first = bounds.findIndex((b) => b > from);
      const last = bounds.findIndex((b) => b >= to);
      for (let k = first; k <= last; k++) {
        assert.equal(commands[k], o.commandId, `message ${i} holds output of command ${commands[k]}`);
        assert.equal(streams[k], o.stream, `message ${i} holds output of stream ${streams[k]}`);
      }
    }
    // a: 4096+40000+90000+100000 | 70000 ; b: 4096 | 300000 (larger than the bound: alone) | 1 | (stderr) 65536+120000
    assert.deepEqual(
      out.map((o) => o.data.length),
      [234_096, 70_000, 4096, 300_000, 1, 185_536],
    );
  });

  it('with several clients attached, sends each chunk as it is, encoded once for all', () => {
    const relay = relayOf();
    const a = fakeStream();
    const b = fakeStream();
    relay.attach(a as unknown as AttachStream, AttachMode.OPERATOR, 0, logger, true);
    relay.attach(b as unknown as AttachStream, AttachMode.OBSERVER, 0, logger, true);
    const chunks = [1000, 2000, 3000].map((n) => randomBytes(n));
    let seq = 0;
    for (const data of chunks) {
      relay.onOutput({ terminalId: 't1', seq, data, commandId: 'a', stream: OutputStream.STDOUT });
      seq += data.length;
    }
    a.drain();
    b.drain();
    for (const s of [a, b]) {
      assert.deepEqual(
        outputs(s.sent).map((o) => o.data.length),
        [1000, 2000, 3000],
      );
    }
  });
});
