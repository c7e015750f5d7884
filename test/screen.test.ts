// A late joiner's screen: a full-screen program (alternate screen, header and
// footer, scroll region, origin mode, charsets, colours, saved cursor) floods
// megabytes inside its region; an operator renders every byte into its own
// headless xterm, late joiners (observers, no from_seq) render the snapshot
// and the live stream into theirs, and the screens are compared cell by cell
// (test/helpers/screen.ts): while the program holds the screen, and after it
// restores it. `cmdop watch` joins too, in a PTY of its own whose output is
// rendered the same way. Real control plane, agent and shell in a PTY.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Terminal } from '@xterm/headless';
import * as pty from 'node-pty';
import { CLI, Cluster, cliEnv, eventually, startCluster } from './helpers/cluster';
import { screenDiff, writeAll } from './helpers/screen';
import type { TerminalAttachment } from '../sdk';

const COLS = 80;
const ROWS = 24;
const FLOOD_MB = 5;

// The program: `node flood.js alt|main MB`. Draws a header and a footer, sets
// the scroll region 2-23, origin mode, G1 = DEC line drawing and hides the
// cursor, then prints MB of apt-like lines inside the region: colours (16,
// 256, RGB), wide characters, full-width rows (pending wrap), line drawing
// in G1 (SO/SI) and G0, a progress line in the footer drawn between DECSC
// and DECRC, titles. Then it leaves state set (pen, SO, cursor) and waits
// for a line on stdin; after it, prints inside the region again, restores
// the screen and exits.
const PROGRAM = String.raw`
const fs = require('fs');
const [mode, mb] = [process.argv[2], Number(process.argv[3])];
const E = '\x1b';
const w = (s) => { for (let b = Buffer.from(s); b.length; ) b = b.subarray(fs.writeSync(1, b)); };
let seed = 7;
const ri = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
if (mode === 'alt') w(E + '[?1049h' + E + '[2J');
w(E + '[H' + E + '[1;37;44m HEADER ' + mode + ' ' + E + '[K' + E + '[0m');
w(E + '[24;1H' + E + '[30;42m FOOTER ' + E + '[K' + E + '[0m');
w(E + '[2;23r' + E + '[?6h' + E + ')0' + E + '[?25l' + E + '[22;1H');
let out = 0, i = 0;
while (out < mb * 1e6) {
  let s = '';
  for (let k = 0; k < 300; k++, i++) {
    const r = ri(100);
    if (r < 8) s += E + '7' + E + '[?6l' + E + '[24;1H' + E + '[30;42m Progress: [' + String(i % 100).padStart(3) + '%] ' + E + '[K' + E + '[0m' + E + '[?6h' + E + '8';
    else if (r < 14) s += '\x0elqqqk\x0f box ' + E + '[38;5;' + ri(256) + 'm256 colours' + E + '[39m\r\n';
    else if (r < 20) s += E + '[38;2;' + ri(256) + ';' + ri(256) + ';' + ri(256) + 'mrgb 日本語テキスト ' + E + '[1;4mbold' + E + '[0m\r\n';
    else if (r < 24) s += E + '[3' + ri(8) + 'm' + 'x'.repeat(80) + E + '[0m';
    else if (r < 28) s += E + '[4' + ri(8) + 'm colored background ' + E + '[K' + E + '[0m\r\n';
    else if (r < 30) s += E + ']0;pkg ' + i + '\x07';
    else if (r < 33) s += E + '(0tqqu' + E + '(B ' + E + '[7minverse' + E + '[27m\r\n';
    else s += 'Get:' + i + ' http://deb.debian.org/debian bookworm/main amd64 pkg-' + i + ' [' + ri(99999) + ' kB]\r\n';
  }
  w(s);
  out += Buffer.byteLength(s);
}
w(E + '[11;30H' + E + '[1;33mFLOOD-DONE-MARK' + E + '[0;35m\x0e');
fs.readSync(0, Buffer.alloc(64));
w('\r\nqqq after ' + E + '[32mgreen\r\nxxx lines\x0f');
w(E + '[r' + E + '[?6l' + E + '[?25h' + E + '[0m' + (mode === 'alt' ? E + '[?1049l' : '') + 'RESTORED-MARK\n');
`;

/** An attachment rendered into a headless xterm the size of the PTY, as the console and `cmdop watch` do. */
class Rendered {
  readonly term = new Terminal({ cols: COLS, rows: ROWS, scrollback: 1000, allowProposedApi: true, logLevel: 'off' });
  snapshots = 0;
  snapshotSeq = -1;
  gaps = 0;
  private tail = '';

  constructor(readonly a: TerminalAttachment) {
    a.on('snapshot', (s) => {
      this.snapshots++;
      this.snapshotSeq = s.seq;
      this.term.reset();
      this.term.write(s.data);
    });
    a.on('output', (d) => {
      this.term.write(d);
      this.tail = (this.tail + Buffer.from(d).toString('latin1')).slice(-4096);
    });
    a.on('gap', () => this.gaps++);
  }

  seen(needle: string): boolean {
    return this.tail.includes(needle);
  }

  /** Resolves once every byte received so far is parsed. */
  settled(): Promise<void> {
    return writeAll(this.term, '');
  }
}

/** Waits until the operator's stream has been quiet for a while and every joiner has caught up with it. */
async function caughtUp(op: Rendered, joiners: Rendered[]): Promise<void> {
  let last = -1;
  let changedMs = Date.now();
  await eventually(
    () => {
      if (op.a.cursor !== last) [last, changedMs] = [op.a.cursor, Date.now()];
      return Date.now() - changedMs > 300 && joiners.every((j) => j.a.cursor === op.a.cursor);
    },
    30_000,
    'the joiners to catch up with the operator',
  );
  for (const r of [op, ...joiners]) await r.settled();
}

/** `cmdop watch` in a PTY of its own the size of the remote one, its output rendered like a terminal window would. */
class Watch {
  readonly term = new Terminal({ cols: COLS, rows: ROWS, scrollback: 1000, allowProposedApi: true, logLevel: 'off' });
  readonly p: pty.IPty;
  constructor(server: string, terminalId: string) {
    this.p = pty.spawn(process.execPath, [CLI, '--server', server, 'watch', 'box', terminalId], {
      cols: COLS,
      rows: ROWS,
      env: cliEnv(server),
      encoding: null,
    } as pty.IPtyForkOptions);
    this.p.onData((d) => this.term.write(d as unknown as Buffer));
  }

  /** Until its screen is the operator's (it has no cursor to wait for); fails with the difference. */
  async matches(op: Rendered, what: string): Promise<void> {
    await eventually(
      async () => {
        await op.settled();
        await writeAll(this.term, '');
        const diff = screenDiff(op.term, this.term, { scrollback: false });
        if (diff.length) throw new Error(`${what}: cmdop watch's screen differs from the operator's:\n  ${diff.join('\n  ')}`);
        return true;
      },
      15_000,
      `cmdop watch's screen (${what})`,
    );
  }
}

function assertSame(op: Rendered, j: Rendered, what: string): void {
  const diff = screenDiff(op.term, j.term);
  assert.deepEqual(diff, [], `${what}: the joiner's screen differs from the operator's:\n  ${diff.join('\n  ')}`);
}

describe('a late joiner gets exactly the operator screen', () => {
  let c: Cluster;
  let program: string;
  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    program = path.join(c.dir, 'flood.js');
    fs.writeFileSync(program, PROGRAM);
  });
  after(() => c.stop());

  for (const mode of ['alt', 'main'] as const) {
    const where = mode === 'alt' ? 'in the alternate screen' : 'in the main buffer';
    it(`after ${FLOOD_MB} MB inside a scroll region ${where}, joining during and after the flood`, async (t) => {
      const opA = await c.client.terminal.open({ cols: COLS, rows: ROWS });
      const op = new Rendered(opA);
      await opA.sendInput(`stty -echo; PS1='$ '; clear\r`);
      await eventually(() => op.seen('$ '), 10_000, 'the prompt');
      await opA.sendInput(`${JSON.stringify(process.execPath)} ${JSON.stringify(program)} ${mode} ${FLOOD_MB}\r`);

      // One joins in the middle of the flood, one once the program waits.
      const start = opA.cursor;
      await eventually(() => opA.cursor - start > 1.5e6, 60_000, '1.5 MB of the flood');
      const during = new Rendered(await c.client.terminal.attach(opA.terminalId, { mode: 'observer' }));
      await eventually(() => op.seen('FLOOD-DONE-MARK'), 120_000, 'the end of the flood');
      const floodEnd = opA.cursor;
      const late = new Rendered(await c.client.terminal.attach(opA.terminalId, { mode: 'observer' }));
      const watch = new Watch(c.server, opA.terminalId);
      t.after(() => watch.p.kill());
      await caughtUp(op, [during, late]);
      assert.ok(opA.cursor - start > FLOOD_MB * 1e6, 'the flood was shorter than planned');
      for (const j of [during, late]) {
        assert.equal(j.snapshots, 1, 'a late joiner starts from a snapshot');
        assert.equal(j.gaps, 0, 'nothing skipped');
      }
      assert.ok(during.snapshotSeq < floodEnd - 1e6, `the first joiner's screen is from the flood (at ${during.snapshotSeq} of ${floodEnd})`);
      assert.equal(op.term.buffer.active.type, mode === 'alt' ? 'alternate' : 'normal');
      assert.match(op.term.buffer.active.getLine(op.term.buffer.active.baseY)!.translateToString(), /^ HEADER /);
      assertSame(op, late, 'joined after the flood');
      assertSame(op, during, 'joined during the flood');
      await watch.matches(op, 'joined after the flood');

      // The program goes on from the state it left (pen, G1 in GL, origin
      // mode, region), then restores the screen.
      await opA.sendInput('\r');
      await eventually(() => op.seen('RESTORED-MARK') && op.seen('$ '), 10_000, 'the program to restore the screen');
      await caughtUp(op, [during, late]);
      assert.equal(op.term.buffer.active.type, 'normal');
      assertSame(op, late, 'after the program restored the screen (joined after the flood)');
      assertSame(op, during, 'after the program restored the screen (joined during the flood)');
      await watch.matches(op, 'after the program restored the screen');

      for (const a of [opA, during.a, late.a]) a.close();
      await c.client.terminal.close(opA.terminalId);
    });
  }
});
