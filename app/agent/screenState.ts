// The bytes that rebuild a headless xterm's state in a fresh terminal: what a
// late joiner is sent. The serialize addon writes the cells (scrollback, the
// screen, the alternate screen) but not the state a program sets and then
// relies on: it drops the scroll region (DECSTBM), the charsets, cursor
// visibility, the saved cursor (DECSC, and the one 1049h saves), the mouse
// encoding; it emits origin mode *after* the cursor (DECOM homes the cursor,
// so the cursor lands at the region's top), leaves a cursor in the pending
// wrap column one cell short, and starts the alternate screen's cells
// assuming default colours while the normal screen's last colours are set.
// So the addon's cells are kept and that state is written after them, in an
// order that survives each sequence's side effects (DECSTBM and DECOM home
// the cursor, so the cursor goes last but one; colours last).
//
// Much of that state is not in xterm's public API; it is read from xterm's
// core (@xterm/headless 6.0, pinned by the lockfile) through the narrow
// CoreView below, and test/screen.test.ts compares a joiner's terminal with
// the operator's cell by cell, so a change there shows up as a failing test.
import { Terminal } from '@xterm/headless';
import type { IBufferCell } from '@xterm/headless';
import type { SerializeAddon } from '@xterm/addon-serialize';

/** Cell or pen attributes: what an SGR sequence sets. */
type Attr = Pick<
  IBufferCell,
  | 'getFgColor'
  | 'getBgColor'
  | 'getFgColorMode'
  | 'getBgColorMode'
  | 'isFgRGB'
  | 'isBgRGB'
  | 'isFgPalette'
  | 'isBgPalette'
  | 'isBold'
  | 'isDim'
  | 'isItalic'
  | 'isUnderline'
  | 'isBlink'
  | 'isInverse'
  | 'isInvisible'
  | 'isStrikethrough'
  | 'isOverline'
>;
type Charset = Record<string, string>;

interface CoreBuffer {
  x: number;
  y: number;
  ybase: number;
  scrollTop: number;
  scrollBottom: number;
  savedX: number;
  savedY: number;
  savedCurAttrData: Attr;
  savedCharset: Charset | undefined;
}

/** The parts of xterm's core read here (private API: see the header). */
interface CoreView {
  _bufferService: { buffers: { normal: CoreBuffer; alt: CoreBuffer; active: CoreBuffer }; cols: number };
  coreService: {
    isCursorHidden: boolean;
    decPrivateModes: { cursorStyle?: 'block' | 'underline' | 'bar'; cursorBlink?: boolean };
  };
  coreMouseService: { activeEncoding: string };
  _charsetService: { glevel: number; charset: Charset | undefined; _charsets: (Charset | undefined)[] };
  _inputHandler: {
    _curAttrData: Attr;
    _parser: { currentState: number };
    _utf8Decoder: { interim: Uint8Array };
    parse(data: string | Uint8Array): void | Promise<boolean>;
  };
}

export function core(term: Terminal): CoreView {
  return (term as unknown as { _core: CoreView })._core;
}

const ESC = '\x1b';
const ALT_MARKER = `${ESC}[?1049h${ESC}[H`; // how the addon starts the alternate screen

/** `ESC ( F` final characters of the charsets xterm knows (aliases share a table). 'B' (US ASCII) is xterm's undefined. */
const CHARSET_FINALS = '0A4CRQKYEZH=';
let charsetNames: Map<Charset, string> | undefined;

/** Charset table → its designation final, learnt from xterm itself (its tables are not exported). */
function charsetName(cs: Charset | undefined): string {
  if (!cs) return 'B';
  if (!charsetNames) {
    charsetNames = new Map();
    const t = new Terminal({ cols: 10, rows: 2, allowProposedApi: true });
    const scratch = core(t);
    for (const f of CHARSET_FINALS) {
      scratch._inputHandler.parse(`${ESC}(${f}`); // synchronous, unlike write()
      const table = scratch._charsetService._charsets[0];
      if (table && !charsetNames.has(table)) charsetNames.set(table, f);
    }
    t.dispose();
  }
  return charsetNames.get(cs) ?? 'B';
}

/** xterm's colour modes (Attributes.CM_*): `38;5;n` and `3n` give the same colour for n < 16, in different modes. */
const CM_P16 = 0x1000000;
const CM_P256 = 0x2000000;
const CM_RGB = 0x3000000;

/** One SGR sequence that sets exactly these attributes from any previous ones. */
export function sgr(a: Attr): string {
  const p: number[] = [0];
  const color = (c: number, mode: number, base: number, bright: number) => {
    if (mode === CM_RGB) p.push(base + 8, 2, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff);
    else if (mode === CM_P256) p.push(base + 8, 5, c);
    else if (mode === CM_P16) p.push((c & 8 ? bright : base) + (c & 7));
  };
  color(a.getFgColor(), a.getFgColorMode(), 30, 90);
  color(a.getBgColor(), a.getBgColorMode(), 40, 100);
  if (a.isBold()) p.push(1);
  if (a.isDim()) p.push(2);
  if (a.isItalic()) p.push(3);
  if (a.isUnderline()) p.push(4);
  if (a.isBlink()) p.push(5);
  if (a.isInverse()) p.push(7);
  if (a.isInvisible()) p.push(8);
  if (a.isStrikethrough()) p.push(9);
  if (a.isOverline()) p.push(53);
  return `${ESC}[${p.join(';')}m`;
}

const cup = (row: number, col: number) => `${ESC}[${row + 1};${col + 1}H`;
const region = (b: CoreBuffer, rows: number) =>
  b.scrollTop === 0 && b.scrollBottom === rows - 1 ? '' : `${ESC}[${b.scrollTop + 1};${b.scrollBottom + 1}r`;

/**
 * The saved cursor (DECSC, also what 1049h saves): position, pen and GL
 * charset, set by saving them. Leaves the pen and the cursor changed (what
 * follows sets them) and G0 as US ASCII in GL. Origin mode must be off.
 */
function savedCursor(b: CoreBuffer): string {
  const at = cup(Math.max(b.savedY - b.ybase, 0), b.savedX);
  return at + sgr(b.savedCurAttrData) + `${ESC}(${charsetName(b.savedCharset)}\x0f${ESC}7${ESC}(B`;
}

/** Everything but the cells, for the active buffer, after its cells were written. */
function activeState(term: Terminal, c: CoreView, b: CoreBuffer): string {
  const { rows, cols } = term;
  const modes = term.modes;
  let s = savedCursor(b) + region(b, rows);
  if (modes.originMode) s += `${ESC}[?6h`;
  // The cursor. In origin mode rows count from the region's top.
  const row = modes.originMode ? b.y - b.scrollTop : b.y;
  if (b.x < cols) {
    s += cup(row, b.x);
  } else {
    // Pending wrap: the cursor sits past the last column after a character
    // was printed there, and the next character starts a new row. No cursor
    // sequence reaches that column; printing the last cell again does.
    const line = term.buffer.active.getLine(b.ybase + b.y);
    let cell = line?.getCell(cols - 1);
    let col = cols - 1;
    if (cell && cell.getWidth() === 0 && cols > 1) {
      col = cols - 2; // the right half of a wide character: print the character
      cell = line?.getCell(col);
    }
    s += cup(row, col) + (cell ? sgr(cell) + (cell.getChars() || ' ') : ' ');
  }
  // Modes (the addon's list, which it writes after the cursor: see the header).
  if (modes.applicationCursorKeysMode) s += `${ESC}[?1h`;
  if (modes.applicationKeypadMode) s += `${ESC}[?66h`;
  if (modes.bracketedPasteMode) s += `${ESC}[?2004h`;
  if (modes.insertMode) s += `${ESC}[4h`;
  if (modes.reverseWraparoundMode) s += `${ESC}[?45h`;
  if (modes.sendFocusMode) s += `${ESC}[?1004h`;
  if (!modes.wraparoundMode) s += `${ESC}[?7l`;
  const mouse = { none: '', x10: '9', vt200: '1000', drag: '1002', any: '1003' }[modes.mouseTrackingMode];
  if (mouse) s += `${ESC}[?${mouse}h`;
  const encoding = { SGR: '1006', SGR_PIXELS: '1016' }[c.coreMouseService.activeEncoding];
  if (encoding) s += `${ESC}[?${encoding}h`;
  if (c.coreService.isCursorHidden) s += `${ESC}[?25l`;
  const { cursorStyle, cursorBlink } = c.coreService.decPrivateModes;
  if (cursorStyle) {
    const n = { block: 1, underline: 3, bar: 5 }[cursorStyle] + (cursorBlink === false ? 1 : 0);
    s += `${ESC}[${n} q`;
  }
  // Charsets G0-G3 and which one is in GL (after the pending-wrap cell, printed in US ASCII).
  const cs = c._charsetService;
  ['(', ')', '*', '+'].forEach((g, i) => (s += `${ESC}${g}${charsetName(cs._charsets[i])}`));
  s += ['\x0f', '\x0e', `${ESC}n`, `${ESC}o`][cs.glevel] ?? '';
  if (cs.charset !== cs._charsets[cs.glevel] && cs.charset === b.savedCharset && b.x < cols) {
    // Only DECRC leaves GL differing from the G-set in use (it restores the
    // table itself); so does the joiner's, then the cursor is put back.
    s += `${ESC}8${cup(row, b.x)}`;
  }
  // The pen last: the saved cursor and the pending-wrap cell set their own.
  return s + sgr(c._inputHandler._curAttrData);
}

/**
 * What rebuilds `term` in a terminal of the same size that is in its initial
 * state: the cells of both buffers, the cursor, the modes, the scroll
 * region, the charsets and the saved cursors. Output that ends inside an
 * escape sequence is not covered here: see ScreenTracker.pending.
 */
export function serializeScreen(term: Terminal, serializer: SerializeAddon): string {
  const c = core(term);
  const { normal, alt } = c._bufferService.buffers;
  const cells = serializer.serialize({ excludeModes: true });
  if (term.buffer.active.type !== 'alternate') return cells + activeState(term, c, normal);
  const at = cells.indexOf(ALT_MARKER);
  if (at < 0) throw new Error('serialize addon: no alternate screen marker');
  // The normal buffer keeps its own scroll region and the cursor 1049h saved
  // (1049l restores it); 1049h itself saves the cursor, pen and charset set
  // just before it, and fills the alternate screen with that pen's background,
  // as it did for the program. The addon's alternate cells assume the default pen.
  return (
    cells.slice(0, at) +
    region(normal, term.rows) +
    savedCursor(normal) +
    ALT_MARKER +
    `${ESC}[0m` +
    cells.slice(at + ALT_MARKER.length) +
    activeState(term, c, alt)
  );
}

/** xterm's parser state for "between sequences" (ParserState.GROUND). */
export const GROUND = 0;
/** Bytes that begin a sequence: ESC, and the C1 introducers in UTF-8 (DCS, SOS, CSI, OSC, PM, APC). */
const C1_STARTS = new Set([0x90, 0x98, 0x9b, 0x9d, 0x9e, 0x9f]);
/** An unfinished sequence longer than this (a huge OSC or DCS) is not carried over. */
const MAX_PENDING = 1024 * 1024;

/**
 * The bytes of a sequence (or UTF-8 character) that the output stopped in
 * the middle of, so that a snapshot taken there can be followed by the rest of
 * the stream. A snapshot is cells and state; a parser halfway through
 * `ESC [ 3` would otherwise hand the joiner `1m` as text.
 */
export class PendingSequence {
  private bytes: Uint8Array = new Uint8Array(0);

  get data(): Uint8Array {
    return this.bytes;
  }

  /** After `data` was parsed by `term`. */
  update(term: Terminal, data: Uint8Array): void {
    const ih = core(term)._inputHandler;
    const inSequence = ih._parser.currentState !== GROUND;
    const utf8 = ih._utf8Decoder.interim.findIndex((b) => b === 0);
    const partialChar = utf8 < 0 ? ih._utf8Decoder.interim.length : utf8;
    if (!inSequence && partialChar === 0) {
      if (this.bytes.length) this.bytes = new Uint8Array(0);
      return;
    }
    const all = this.bytes.length ? Buffer.concat([this.bytes, data]) : data;
    let from = Math.max(0, all.length - partialChar);
    if (inSequence) {
      // No sequence contains an ESC (one ends or aborts it), so the last ESC starts the one still open.
      from = -1;
      for (let i = all.length - 1; i >= 0; i--) {
        if (all[i] === 0x1b || (C1_STARTS.has(all[i]) && i > 0 && all[i - 1] === 0xc2)) {
          from = all[i] === 0x1b ? i : i - 1;
          break;
        }
      }
    }
    this.bytes = from < 0 || all.length - from > MAX_PENDING ? new Uint8Array(0) : new Uint8Array(all.subarray(from));
  }
}
