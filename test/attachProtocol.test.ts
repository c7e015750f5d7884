// The client side of the attach protocol on its own, over a scripted stream:
// what the SDK (gRPC) and the console (gateway WebSocket) both rely on, so
// the cases a live cluster rarely produces (a replay that overlaps, output
// that skips ahead, a stale stream talking) are checked here once for both.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AttachMode, AttachRequest, ClientMessage, ServerMessage, SessionState, StreamError, TerminalInfo } from '../protocol';
import { shellSpec } from '../protocol/terminalSpec';
import { AttachHooks, AttachProtocol, AttachStreamHandlers, StreamEnding } from '../sdk/attachProtocol';

type Msg = NonNullable<ServerMessage['msg']>;

/** One scripted stream: what the client sent, and a way to answer. */
class FakeStream {
  sent: ClientMessage[] = [];
  closed = false;
  constructor(
    first: ClientMessage,
    private readonly h: AttachStreamHandlers<StreamError>,
  ) {
    this.sent.push(first);
  }
  get first() {
    const m = this.sent[0].msg;
    assert.equal(m?.$case, 'attach');
    return m.value;
  }
  say(msg: Msg) {
    this.h.message({ msg });
  }
  end(error?: StreamError) {
    this.h.end(error);
  }
}

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (b: Uint8Array) => Buffer.from(b).toString();
const output = (seq: number, s: string): Msg => ({ $case: 'output', value: { terminalId: 't1', seq, data: bytes(s), commandId: '', stream: 0 } });
const exit = (exitCode: number): Msg => ({ $case: 'exit', value: { terminalId: 't1', exitCode, signal: '', finalSeq: 0, error: '' } });
const attached: Msg = { $case: 'attached', value: { terminal: { terminalId: 't1', cols: 80, rows: 24 } as TerminalInfo, mode: AttachMode.OPERATOR, attachmentId: 'a' } };

function harness(first: AttachRequest) {
  const events: string[] = [];
  const streams: FakeStream[] = [];
  const hooks: AttachHooks<string, StreamError> = {
    firstAttach: () => first,
    attached: (info, again) => events.push(`attached ${info?.terminalId} ${again ? 'again' : 'first'}`),
    output: (data) => events.push(`output ${text(data)}`),
    missed: (from, to) => events.push(`missed ${from}-${to}`),
    snapshot: (s) => events.push(`snapshot ${s.seq}`),
    gap: (g, advanced) => events.push(`gap ${g.fromSeq}-${g.toSeq} ${advanced ? 'advanced' : 'behind'}`),
    accepted: (entry, id) => events.push(`accepted ${entry} ${id}`),
    refused: (e, entry) => events.push(`refused ${entry ?? '-'} ${e.code}`),
    state: (s) => events.push(`state ${SessionState[s.state]}`),
    exit: (e) => events.push(`exit ${e.exitCode}`),
    ended: (how: StreamEnding, e) => events.push(`ended ${how} ${e?.code ?? '-'}`),
  };
  const p = new AttachProtocol<string>(hooks);
  const connect = () => {
    p.connect((m, h) => {
      const s = new FakeStream(m, h);
      streams.push(s);
      return { send: (x) => s.sent.push(x), close: () => (s.closed = true) };
    });
    return streams[streams.length - 1];
  };
  return { p, events, connect };
}

const existing: AttachRequest = { machine: 'box', terminalId: 't1', mode: AttachMode.OBSERVER, open: undefined, fromSeq: undefined, acks: true };
const openShell: AttachRequest = {
  machine: 'box',
  terminalId: '',
  mode: AttachMode.OPERATOR,
  open: { machine: 'box', spec: shellSpec() },
  fromSeq: undefined,
  acks: true,
};

describe('AttachProtocol', () => {
  it('opens with the first request, then re-attaches to the same terminal from the cursor (never opening again)', () => {
    const { connect } = harness(openShell);
    const s1 = connect();
    assert.deepEqual(s1.first, openShell);
    s1.say(attached);
    s1.say(output(0, 'hello'));
    s1.end({ code: 'UNAVAILABLE', message: 'gone', ref: '', reason: '' });
    const s2 = connect();
    assert.deepEqual(s2.first, { ...openShell, open: undefined, terminalId: 't1', fromSeq: 5 });
    // A stream dropped before `attached` repeats the first request.
    const { connect: connect2 } = harness(existing);
    connect2().end({ code: 'UNAVAILABLE', message: 'gone', ref: '', reason: '' });
    assert.deepEqual(connect2().first, existing);
  });

  it('trims the overlap of a replay, skips what it already has, and says when output skipped ahead', () => {
    const { p, events, connect } = harness(existing);
    const s = connect();
    s.say(attached);
    s.say(output(0, 'abcdef'));
    s.say(output(2, 'cd')); // all behind the cursor
    s.say(output(4, 'efgh')); // half behind it
    s.say(output(10, 'kl')); // ahead of it, with no gap message
    assert.deepEqual(events.slice(1), ['output abcdef', 'output gh', 'missed 8-10', 'output kl']);
    assert.equal(p.cursor, 12);
  });

  it('a snapshot sets the cursor; a gap advances it only forward', () => {
    const { p, events, connect } = harness(existing);
    const s = connect();
    s.say(attached);
    s.say({ $case: 'snapshot', value: { terminalId: 't1', seq: 100, data: bytes('screen'), cols: 80, rows: 24 } });
    assert.equal(p.cursor, 100);
    s.say({ $case: 'gap', value: { fromSeq: 100, toSeq: 150, reason: 'behind' } });
    s.say({ $case: 'gap', value: { fromSeq: 120, toSeq: 140, reason: 'old' } });
    assert.equal(p.cursor, 150);
    assert.deepEqual(events.slice(1), ['snapshot 100', 'gap 100-150 advanced', 'gap 120-140 behind']);
  });

  it('sends nothing before `attached` or after the exit; answers find their requests by ref', () => {
    const { p, events, connect } = harness(existing);
    const s = connect();
    assert.equal(p.send({ $case: 'heartbeat', value: { timestampMs: 1 } }), false);
    assert.equal(p.request((ref) => ({ $case: 'signal', value: { signal: 'SIGINT', ref } }), 'early'), false);
    s.say(attached);
    assert.equal(p.request((ref) => ({ $case: 'signal', value: { signal: 'SIGINT', ref } }), 'sig'), true);
    assert.equal(p.request((ref) => ({ $case: 'resize', value: { cols: 1, rows: 1, ref } }), 'size'), true);
    assert.equal(p.request((ref) => ({ $case: 'resize', value: { cols: 2, rows: 2, ref } }), 'lost'), true);
    const refs = s.sent.slice(1).map((m) => (m.msg?.value as { ref: string }).ref);
    assert.equal(new Set(refs).size, 3, 'a ref per request');
    s.say({ $case: 'accepted', value: { commandId: 'c9', ref: refs[0] } });
    s.say({ $case: 'error', value: { code: 'INVALID_ARGUMENT', message: 'no', ref: refs[1], reason: '' } });
    s.say({ $case: 'error', value: { code: 'PERMISSION_DENIED', message: 'no', ref: '', reason: '' } });
    s.say({ $case: 'accepted', value: { commandId: 'c9', ref: refs[0] } }); // answered already
    assert.deepEqual(events.slice(1), ['accepted sig c9', 'refused size INVALID_ARGUMENT', 'refused - PERMISSION_DENIED']);
    assert.deepEqual(p.takePending(), ['lost']);
    assert.deepEqual(p.takePending(), []);
    s.say(exit(3));
    assert.equal(p.send({ $case: 'heartbeat', value: { timestampMs: 1 } }), false);
  });

  it('tells how a stream ended: exited, DISCONNECTED, or lost; a replaced or closed stream says nothing more', () => {
    const a = harness(existing);
    const s = a.connect();
    s.say(attached);
    s.say(exit(0));
    s.end();
    const b = harness(existing);
    const t = b.connect();
    t.say(attached);
    t.say({ $case: 'state', value: { state: SessionState.DISCONNECTED, reason: 'grace period over', deadlineMs: 0 } });
    t.end();
    const c = harness(existing);
    const u = c.connect();
    u.say(attached);
    u.end({ code: 'UNAVAILABLE', message: 'socket closed', ref: '', reason: '' });
    u.say(output(0, 'late')); // the old stream, after its end
    u.end();
    const v = c.connect();
    c.p.close();
    assert.ok(v.closed);
    v.say(output(0, 'late'));
    v.end();
    assert.deepEqual(a.events.slice(1), ['exit 0', 'ended exited -']);
    assert.deepEqual(b.events.slice(1), ['state DISCONNECTED', 'ended disconnected -']);
    assert.deepEqual(c.events.slice(1), ['ended lost UNAVAILABLE']);
    c.connect();
    assert.equal(c.p.streaming, false, 'no stream after close');
  });
});
