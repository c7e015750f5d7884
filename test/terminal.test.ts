// Interactive terminals: several operators and observers on one PTY, late
// joiners, re-attach from a sequence, floods.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Terminal } from '@xterm/headless';
import { Cluster, eventually, startCluster } from './helpers/cluster';
import { Collected } from './helpers/collect';
import { PermissionDeniedError } from '../sdk';

describe('terminals', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
  });
  after(() => c.stop());

  it('two operators and an observer share a terminal; observer input is refused and never reaches the PTY', async () => {
    const op1 = await c.client.terminal.open({ cols: 100, rows: 30 });
    const op2 = await c.client.terminal.attach(op1.terminalId, { mode: 'operator' });
    const obs = await c.client.terminal.attach(op1.terminalId, { mode: 'observer' });
    const [o1, o2, ob] = [new Collected(op1), new Collected(op2), new Collected(obs)];

    const id1 = await op1.sendInput('echo from-op1-$((6*7))\r');
    await ob.waitFor('from-op1-42');
    const id2 = await op2.sendInput('echo from-op2-$((7*7))\r');
    await ob.waitFor('from-op2-49');
    assert.notEqual(id1, id2);
    for (const x of [o1, o2]) {
      await x.waitFor('from-op1-42');
      await x.waitFor('from-op2-49');
    }

    await assert.rejects(obs.sendInput('echo OBSERVER-MARK\r'), PermissionDeniedError);
    await assert.rejects(obs.resize(50, 20), PermissionDeniedError);
    await assert.rejects(obs.signal('SIGINT'), PermissionDeniedError);
    // A marker typed after the refused input: if the observer's bytes had
    // reached the PTY they would be echoed before it.
    await op1.sendInput('echo after-$((2+2))\r');
    await ob.waitFor('after-4');
    for (const x of [o1, o2, ob]) assert.ok(!x.text.includes('OBSERVER-MARK'), 'observer input reached the PTY');

    // Output is tagged with the command_id of the input it follows.
    assert.ok(o1.commandIds.includes(id1) && o1.commandIds.includes(id2));
    for (const a of [op1, op2, obs]) a.close();
    await c.client.terminal.close(op1.terminalId);
  });

  it('a late joiner gets the current screen of a full-screen program first, then live output', async () => {
    const op = await c.client.terminal.open({ cols: 80, rows: 24 });
    const o = new Collected(op);
    // More scrolling output than the control plane keeps, then a full-screen
    // program: a replay of recent bytes could not rebuild this screen.
    await op.sendInput("seq 1 900000 | tail -c 6000000 >/dev/null; seq 1 700000\r");
    await o.waitFor('700000', 60_000);
    await op.sendInput("printf '\\033[?1049h\\033[2J\\033[5;10HFULLSCREEN-MARK\\033[12;3Hsecond\\040line'; sleep 600\r");
    await o.waitFor('second line');

    const late = await c.client.terminal.attach(op.terminalId, { mode: 'observer' });
    const l = new Collected(late);
    await eventually(() => l.snapshots.length === 1, 5000, 'a snapshot');
    const screen = new Terminal({ cols: 80, rows: 24, allowProposedApi: true });
    await new Promise<void>((r) => screen.write(l.snapshots[0].data, r));
    const line = (y: number) => screen.buffer.active.getLine(y)!.translateToString(true);
    assert.equal(screen.buffer.active.type, 'alternate');
    assert.equal(line(4), '         FULLSCREEN-MARK');
    assert.equal(line(11), '  second line');

    // Then the live stream.
    await op.sendInput('\x03');
    await op.sendInput("printf '\\033[?1049l'; echo live-after-$((3*3))\r");
    await l.waitFor('live-after-9');
    late.close();
    op.close();
    await c.client.terminal.close(op.terminalId);
  });

  it('a client re-attaching with from_seq gets exactly the bytes after it', async () => {
    const op = await c.client.terminal.open();
    const o = new Collected(op);
    await op.sendInput('seq 1 2000\r');
    await o.waitFor('\r\n2000\r\n');
    const mark = op.cursor;
    await op.sendInput('seq 5000 7000\r');
    await o.waitFor('\r\n7000\r\n');
    const again = await c.client.terminal.attach(op.terminalId, { mode: 'observer', fromSeq: mark });
    const a = new Collected(again);
    await eventually(() => again.cursor >= op.cursor, 5000, 'the re-attach to catch up');
    assert.deepEqual(a.bytes, o.bytes.subarray(mark - 0, op.cursor), 'bytes after from_seq differ');
    assert.equal(a.snapshots.length, 0);
    again.close();
    op.close();
    await c.client.terminal.close(op.terminalId);
  });

  it('a flood stops promptly on Ctrl-C, and a stalled observer is told exactly what it skipped', async () => {
    const op = await c.client.terminal.open();
    const o = new Collected(op);
    const obs = await c.client.terminal.attach(op.terminalId, { mode: 'observer', fromSeq: 0 });
    const ob = new Collected(obs);
    obs.pause(); // a slow observer: never reads during the flood
    await op.sendInput('yes flood-line\r');
    await eventually(() => op.cursor > 20 * 1024 * 1024, 30_000, '20 MB of flood');
    await op.sendInput('\x03');
    await op.sendInput('echo stopped-$((5*5))\r');
    await o.waitFor('stopped-25', 15_000);
    assert.equal(o.gaps.length, 0, 'the operator must not skip anything');

    obs.resume();
    await eventually(() => obs.cursor >= op.cursor, 15_000, 'the observer to catch up');
    assert.ok(ob.gaps.length >= 1, 'the stalled observer was not told what it skipped');
    // The gaps plus the bytes it received account for every offset exactly once.
    const skipped = ob.gaps.reduce((n, g) => n + (g.toSeq - g.fromSeq), 0);
    assert.equal(skipped + ob.bytes.length, obs.cursor);
    assert.ok(ob.text.includes('stopped-25'));
    obs.close();
    op.close();
    await c.client.terminal.close(op.terminalId);
  });

  it('an exited terminal keeps only its tail once its operator has all of it; a late observer is told of the rest', async () => {
    const op = await c.client.terminal.open();
    const o = new Collected(op);
    const exited = new Promise<void>((resolve) => op.once('exit', () => resolve()));
    await op.sendInput('seq 1 400000; exit\r'); // ~2.7 MB
    await exited;
    const head = op.cursor;
    assert.ok(head > 2_000_000, `the terminal printed ${head} bytes`);
    // The operator confirmed the exit: the control plane no longer needs what it holds beyond a tail.
    let late!: Collected;
    await eventually(async () => {
      const obs = await c.client.terminal.attach(op.terminalId, { mode: 'observer', fromSeq: 0 });
      const l = new Collected(obs);
      await eventually(() => obs.cursor >= head, 10_000, 'the late observer to reach the end');
      obs.close();
      if (l.gaps.length === 0) return false; // the exit was not confirmed yet: the whole buffer was still held
      late = l;
      return true;
    }, 10_000, 'an exited terminal to drop what its operator confirmed');
    const skipped = late.gaps.reduce((n, g) => n + (g.toSeq - g.fromSeq), 0);
    assert.equal(late.gaps[0].fromSeq, 0);
    assert.equal(skipped + late.bytes.length, head, 'the gap and the bytes account for every offset once');
    assert.ok(late.bytes.length <= 256 * 1024 && late.bytes.length > 0, `kept ${late.bytes.length} bytes`);
    assert.deepEqual(late.bytes, o.bytes.subarray(head - late.bytes.length), 'the tail it kept is the last output, byte-exact');
    op.close();
  });

  it('lists terminals with their attachments and closes them', async () => {
    const info = await c.client.terminal.create({ title: 'build' });
    const obs = await c.client.terminal.attach(info.terminalId, { mode: 'observer' });
    const list = await c.client.terminal.list();
    const t = list.find((x) => x.terminalId === info.terminalId)!;
    assert.equal(t.spec!.title, 'build');
    assert.equal(t.observers, 1);
    await c.client.terminal.close(info.terminalId);
    const exit = await obs.done;
    assert.equal(exit.terminalId, info.terminalId);
  });
});
