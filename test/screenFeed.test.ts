// The flood skip of the agent's screen (app/agent/screenFeed.ts): output fed
// in batches through writeBatch, which skips lines of plain text that scroll
// away, must leave the headless xterm exactly as parsing every byte does:
// cells and colours of every row (scrollback too), the cursor, the modes,
// the region, the charsets and the saved cursor (test/helpers/screen.ts).
// Streams mix floods with the state a flood must not disturb or must not be
// skipped across; each case also says whether anything was skipped, so a
// rule that never fires (or always does) fails here.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Terminal } from '@xterm/headless';
import { floodCut, writeBatch } from '../app/agent/screenFeed';
import { PendingSequence } from '../app/agent/screenState';
import { screenDiff, writeAll } from './helpers/screen';

const SCROLLBACK = 200;
const ESC = '\x1b';

function term(): Terminal {
  return new Terminal({ cols: 80, rows: 24, scrollback: SCROLLBACK, allowProposedApi: true, logLevel: 'off' });
}

/** `n` lines of text as a PTY gives them (CRLF), numbered so that any lost or moved line shows. */
function flood(n: number, tag = 'line', width = 60): string {
  let s = '';
  for (let i = 0; i < n; i++) s += `${tag} ${i} ${'x'.repeat((i * 7) % width)}\r\n`;
  return s;
}

/** Feeds `batches` through writeBatch one after the other; resolves with the bytes skipped. */
async function feedBatches(t: Terminal, batches: Uint8Array[]): Promise<number> {
  let skipped = 0;
  for (const b of batches) {
    skipped += await new Promise<number>((resolve) => writeBatch(t, b, SCROLLBACK, (_last, n) => resolve(n)));
  }
  return skipped;
}

/** Parses `parts` whole into one terminal and as batches into another; returns the difference and the bytes skipped. */
async function compare(parts: string[], batchBytes?: number): Promise<{ diff: string[]; skipped: number }> {
  const whole = term();
  const fed = term();
  const bytes = Buffer.from(parts.join(''), 'utf8');
  await writeAll(whole, bytes);
  const batches: Uint8Array[] = [];
  if (batchBytes) for (let i = 0; i < bytes.length; i += batchBytes) batches.push(bytes.subarray(i, i + batchBytes));
  else for (const p of parts) batches.push(Buffer.from(p, 'utf8'));
  const skipped = await feedBatches(fed, batches);
  const diff = screenDiff(whole, fed);
  whole.dispose();
  fed.dispose();
  return { diff, skipped };
}

describe('screen feed: skipping flood lines changes nothing a screen shows', () => {
  it('a plain flood from a fresh terminal is mostly skipped, and the screen is the same', async () => {
    const r = await compare([flood(5000)]);
    assert.deepEqual(r.diff, []);
    assert.ok(r.skipped > 150_000, `skipped ${r.skipped} of ${Buffer.byteLength(flood(5000))} bytes`);
  });

  it('pen colours, a saved cursor, a cursor at the top and a half-written line before the flood', async () => {
    const r = await compare([
      `${ESC}[44;33;1m`, // blank lines scrolled in take the pen's background
      `${ESC}[5;10H${ESC}7`, // DECSC
      `${ESC}[H` + 'half a line, no newline',
      flood(3000) + 'tail without newline',
    ]);
    assert.deepEqual(r.diff, []);
    assert.ok(r.skipped > 0, 'something was skipped');
  });

  it('the alternate screen, wrapping lines, tabs, wide and combining characters', async () => {
    const wide = Array.from({ length: 3000 }, (_, i) => `${i} 宽字符\tcafé\u0301 ${'é'.repeat(i % 100)}\r\n`).join('');
    const r = await compare([`${ESC}[?1049h`, wide, `${ESC}[?1049l`, 'back']);
    assert.deepEqual(r.diff, []);
    assert.ok(r.skipped > 0, 'something was skipped');
  });

  it('insert mode, auto-wrap off and a staircase of bare line feeds around the flood', async () => {
    const r = await compare([
      `${ESC}[4h${ESC}[?7l`,
      flood(2000, 'ins', 150),
      'a\nb\nc\nd\n'.repeat(50),
      flood(1500),
      'end\nstair\nstep',
    ]);
    assert.deepEqual(r.diff, []);
    assert.ok(r.skipped > 0, 'something was skipped');
  });

  it('a scroll region keeps the flood from being skipped (the rows outside it stay)', async () => {
    const r = await compare([`${ESC}[2J${ESC}[1;1HHEADER${ESC}[3;20r${ESC}[3;1H`, flood(3000), `${ESC}[r`]);
    assert.deepEqual(r.diff, []);
    assert.equal(r.skipped, 0);
  });

  it('text inside an unterminated OSC or DCS string is never skipped', async () => {
    for (const open of [`${ESC}]0;title `, `${ESC}P1$r`]) {
      const r = await compare([open, flood(3000), '\x07after', flood(10)]);
      assert.deepEqual(r.diff, [], JSON.stringify(open));
      assert.equal(r.skipped, 0, JSON.stringify(open));
    }
  });

  it('a batch that ends inside a string begun before its plain text keeps the whole sequence for a joiner', async () => {
    // What the worker does with each batch (screenWorker.ts): PendingSequence is what a snapshot carries after the cells.
    const batch = Buffer.from(`ok ${ESC}]0;title ${flood(2000)}`, 'utf8');
    const fed = term();
    const pending = new PendingSequence();
    const skipped = await new Promise<number>((resolve) =>
      writeBatch(fed, batch, SCROLLBACK, (last, n) => {
        pending.update(fed, last);
        resolve(n);
      }),
    );
    assert.equal(skipped, 0);
    assert.ok(Buffer.from(pending.data).toString('utf8').startsWith(`${ESC}]0;title line 0`), 'the open OSC from its ESC on');
    assert.equal(pending.data.length, batch.length - 3);
    fed.dispose();
  });

  it('a batch that starts inside a UTF-8 character or an escape sequence', async () => {
    const all = Buffer.from(`${ESC}[31m€${flood(3000)}€${ESC}[0m${flood(3000)}`, 'utf8');
    // Batches of a prime size: their edges fall inside characters and sequences.
    const r = await compare([all.toString('utf8')], 65_537);
    assert.deepEqual(r.diff, []);
    assert.ok(r.skipped > 0, 'something was skipped');
  });

  it('a C1 control in UTF-8 (C2 9B is CSI) ends a run of plain text', () => {
    const text = Buffer.from(flood(2000), 'utf8');
    const csi = Buffer.from([0xc2, 0x9b, 0x32, 0x4a]); // C1 CSI 2 J
    const data = Buffer.concat([text, csi, Buffer.from('ok')]);
    const cut = floodCut(data, 24, SCROLLBACK);
    assert.ok(cut, 'the run before the C1 is cut');
    assert.ok(cut.to <= text.length, `cut ends at ${cut.to}, before the C1 at ${text.length}`);
    assert.equal(floodCut(Buffer.concat([csi, Buffer.from(flood(100))]), 24, SCROLLBACK), undefined, 'too few lines after it');
  });

  it('random mixes of floods, sequences and batch sizes', async () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const seqs = [
      `${ESC}[1m`,
      `${ESC}[0m`,
      `${ESC}[4${rand(8)}m`,
      `${ESC}[38;2;1;2;3m`,
      `${ESC}[5;5H`,
      `${ESC}[2J`,
      `${ESC}[K`,
      `${ESC}7`,
      `${ESC}8`,
      `${ESC}[?1049h`,
      `${ESC}[?1049l`,
      `${ESC}[4h`,
      `${ESC}[4l`,
      `${ESC}(0`,
      `${ESC}(B`,
      `${ESC}[?25l`,
      `${ESC}[5;15r`,
      `${ESC}[r`,
      `${ESC}]2;t\x07`,
      '\x07',
      '\b\b',
      `${ESC}[3A`,
      'x\x1b[2b', // REP
    ];
    let totalSkipped = 0;
    for (let round = 0; round < 12; round++) {
      const parts: string[] = [];
      for (let k = 0; k < 12; k++) {
        if (rand(3) === 0) parts.push(flood(200 + rand(2500), `r${round}k${k}`, 1 + rand(200)));
        else parts.push(seqs[rand(seqs.length)] + 'w'.repeat(rand(90)) + (rand(2) ? '\r\n' : ''));
      }
      const r = await compare(parts, 4096 + rand(400_000));
      assert.deepEqual(r.diff, [], `round ${round}`);
      totalSkipped += r.skipped;
    }
    assert.ok(totalSkipped > 0, 'the random streams skipped something');
  });
});
