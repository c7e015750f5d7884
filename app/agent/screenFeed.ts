// How a terminal's output reaches its headless xterm (screenWorker.ts): in
// batches, and without parsing lines of a flood that no screen could show.
//
// Why: xterm's parser runs at ~40 MB/s here and every byte must reach it
// (screen.ts), so a flood used to run at the parser's pace, slower than ssh
// moves the same output. But a flood of plain text mostly writes lines that
// scroll out of the screen and out of the scrollback before anyone could
// look: only its last rows + scrollback lines decide what the screen holds.
//
// The rule (test/screenFeed.test.ts checks it against parsing every byte,
// cell by cell, on streams that mix floods with every kind of state): a run
// of plain text (printable characters, TAB, CR, LF; no ESC, no other control,
// no C1) starting where the parser is between sequences, the UTF-8 decoder
// holds no partial character and the scroll region is the whole screen, may
// be cut at a point right after "\r\n" that is followed, within the run, by
// at least scrollback + 2 × rows line feeds and one printable character:
// - text and CR/LF change no mode, pen, charset, tab stop, region or saved
//   cursor, so only the cursor and the cells can differ at the cut;
// - after "\r\n" the cursor's column is 0 either way; after rows − 1 more
//   line feeds its row is the region's bottom either way (a full-screen
//   region: the cursor is always inside it);
// - from there every further line feed scrolls, and scrollback + rows more
//   of them replace every line of the buffer with blank lines written by the
//   tail alone (blank in the pen's colour, which the text does not change).
// So the skipped bytes change nothing that can be seen or relied on later.
// A lone byte run of a batch is never skipped: a batch is everything the
// worker was sent while it parsed the previous one, so bytes are only ever
// skipped when the parser is behind, i.e. during a flood.
import type { Terminal } from '@xterm/headless';
import { core, GROUND } from './screenState';

/** Skipping less than this is not worth splitting a write. */
const MIN_SKIP = 16 * 1024;

/**
 * Per byte: 0 ends a run of plain text (ESC and the other C0 controls, DEL);
 * 1 is plain text (printable ASCII, TAB, LF, CR, UTF-8 bytes); 2 is a byte
 * 80..9F, plain text unless it follows C2 (C2 80..9F is a C1 control such as
 * CSI to xterm). A table, because this loop sees every byte of a flood.
 */
const TEXT = new Uint8Array(256);
for (let b = 0x20; b < 0x7f; b++) TEXT[b] = 1;
for (const b of [0x09, 0x0a, 0x0d]) TEXT[b] = 1;
for (let b = 0x80; b < 0x100; b++) TEXT[b] = b <= 0x9f ? 2 : 1;

export interface Cut {
  /** Where the run of plain text starts: the parser's state is checked here. */
  from: number;
  /** Where parsing resumes: bytes [from, to) may be skipped. */
  to: number;
}

/**
 * The longest stretch of `data` that may be skipped if the state at `from`
 * allows it (see the header), or undefined. Looks at the last run of plain
 * text long enough to have one, scanning back from the end.
 */
export function floodCut(data: Uint8Array, rows: number, scrollback: number): Cut | undefined {
  const needLf = scrollback + 2 * rows;
  let end = data.length;
  while (end > 0) {
    // The tail: walk back over plain text until enough line feeds (and a
    // printable character) lie behind a "\r\n" followed by an ASCII byte.
    let lf = 0;
    let printable = false;
    let to = -1;
    let i = end - 1;
    for (; i >= 0; i--) {
      const b = data[i];
      const t = TEXT[b];
      if (t === 0 || (t === 2 && i > 0 && data[i - 1] === 0xc2)) break;
      if (b === 0x0a) {
        if (lf >= needLf && printable && i > 0 && data[i - 1] === 0x0d && i + 1 < end && data[i + 1] < 0x80) {
          to = i + 1;
          break;
        }
        lf++;
      } else if (b >= 0x20 && b < 0x7f) {
        printable = true;
      }
    }
    if (to > 0) {
      // What may be skipped: back from the cut to where the run starts (the hot loop of a flood).
      const from = runStart(data, i - 1);
      if (to - from >= MIN_SKIP) return { from, to };
      i = from - 1;
    }
    // An earlier run ends before the byte (or the C1 pair) that ended this one.
    end = i >= 0 && TEXT[data[i]] === 2 ? i - 1 : i;
  }
  return undefined;
}

/**
 * Where the run of plain text that ends at data[last] starts, scanning back:
 * four bytes at a time while all four are printable ASCII (most of a flood:
 * ~0.5 ns a byte against ~1.7 one by one), byte by byte through the rest.
 */
function runStart(data: Uint8Array, last: number): number {
  const base = data.byteOffset;
  const first = (base + 3) & ~3; // the first aligned address at or after data[0]
  const words = new Uint32Array(data.buffer, first, Math.max(0, ((base + data.length) & ~3) - first) >>> 2);
  let j = last;
  for (;;) {
    // Byte by byte up to the end of an aligned word (or through a word that failed the test).
    while (j >= 0 && ((base + j + 1) & 3) !== 0) {
      const t = TEXT[data[j]];
      if (t === 0 || (t === 2 && j > 0 && data[j - 1] === 0xc2)) return j + 1;
      j--;
    }
    if (j < 0) return 0;
    // data[j] ends an aligned word: whole words while all their bytes are 0x20..0x7E
    // (none below 0x20: no borrow sets a high bit; none above 0x7E: no carry into one).
    let k = (base + j + 1 - first) / 4 - 1;
    while (k >= 0 && ((((words[k] - 0x20202020) & ~words[k]) | (words[k] + 0x01010101) | words[k]) & 0x80808080) === 0) k--;
    j = first - base + 4 * k + 3; // the last byte of the word that failed, or -1
    if (j < 0) return 0;
    // That word byte by byte (then on with the words before it).
    for (let n = 0; n < 4 && j >= 0; n++, j--) {
      const t = TEXT[data[j]];
      if (t === 0 || (t === 2 && j > 0 && data[j - 1] === 0xc2)) return j + 1;
    }
  }
}

/** The parser's state allows skipping plain text from here on (see the header). */
export function canSkipFromHere(term: Terminal): boolean {
  const c = core(term);
  const b = c._bufferService.buffers.active;
  return (
    c._inputHandler._parser.currentState === GROUND &&
    c._inputHandler._utf8Decoder.interim[0] === 0 &&
    b.scrollTop === 0 &&
    b.scrollBottom === term.rows - 1
  );
}

/**
 * Parses `data` into `term` (a whole batch), skipping what `floodCut` finds
 * if the state where it starts allows. `done` gets the bytes that end the
 * batch since the parser was last between sequences (for
 * PendingSequence.update) and how many were skipped.
 */
export function writeBatch(
  term: Terminal,
  data: Uint8Array,
  scrollback: number,
  done: (lastWritten: Uint8Array, skipped: number) => void,
  allowSkip = true,
): void {
  const cut = allowSkip ? floodCut(data, term.rows, scrollback) : undefined;
  if (!cut) {
    term.write(data, () => done(data, 0));
    return;
  }
  // The callback runs before anything written later is parsed, so the state read there is the state at `cut.from`.
  term.write(data.subarray(0, cut.from), () => {
    const skip = canSkipFromHere(term);
    const rest = data.subarray(skip ? cut.to : cut.from);
    // Not skipped: the sequence the output may end inside of can have begun in the prefix, so all of it counts.
    term.write(rest, () => done(skip ? rest : data, skip ? cut.to - cut.from : 0));
  });
}
