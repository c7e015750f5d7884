// Compares two headless xterms the way a user would see them, and more: every
// row of both buffers (scrollback included) cell by cell with colours and
// attributes, the cursor, which buffer is active, the modes, and the state a
// program relies on next (scroll region, charsets, saved cursor, cursor
// visibility), which xterm keeps in its core: read here through a narrow
// private view, like app/agent/screenState.ts does.
import { Terminal } from '@xterm/headless';
import type { IBuffer, IBufferCell } from '@xterm/headless';

interface CoreView {
  _bufferService: {
    buffers: Record<
      'normal' | 'alt',
      { scrollTop: number; scrollBottom: number; savedX: number; savedY: number; ybase: number; savedCurAttrData: { fg: number; bg: number } }
    >;
  };
  coreService: { isCursorHidden: boolean };
  _charsetService: { glevel: number; charset: unknown; _charsets: unknown[] };
}
const core = (t: Terminal) => (t as unknown as { _core: CoreView })._core;

/** Writes and resolves once parsed. */
export function writeAll(t: Terminal, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => t.write(data, resolve));
}

function cellKey(c: IBufferCell): string {
  const flags = [
    c.isBold(),
    c.isDim(),
    c.isItalic(),
    c.isUnderline(),
    c.isBlink(),
    c.isInverse(),
    c.isInvisible(),
    c.isStrikethrough(),
    c.isOverline(),
  ]
    .map((f) => (f ? 1 : 0))
    .join('');
  // A colour as it is drawn: `38;5;n` and `3n` (n < 16) are one colour in two modes.
  const color = (rgb: boolean, palette: boolean, n: number) => (rgb ? `#${n.toString(16)}` : palette ? `${n}` : 'default');
  const fg = color(c.isFgRGB(), c.isFgPalette(), c.getFgColor());
  const bg = color(c.isBgRGB(), c.isBgPalette(), c.getBgColor());
  return `${JSON.stringify(c.getChars())}/w${c.getWidth()} fg:${fg} bg:${bg} ${flags}`;
}

function rows(b: IBuffer, cols: number): { text: string[]; cells: string[][]; wrapped: boolean[] } {
  const text: string[] = [];
  const cells: string[][] = [];
  const wrapped: boolean[] = [];
  for (let y = 0; y < b.length; y++) {
    const line = b.getLine(y)!;
    text.push(line.translateToString(false));
    wrapped.push(line.isWrapped);
    const row: string[] = [];
    for (let x = 0; x < cols; x++) row.push(cellKey(line.getCell(x)!));
    cells.push(row);
  }
  return { text, cells, wrapped };
}

/**
 * What differs between `a` (the operator's screen) and `b` (the joiner's);
 * empty when they agree. At most `max` lines. `scrollback: false` compares
 * the last `rows` lines of each buffer only (a real terminal's scrollback
 * holds what was there before).
 */
export function screenDiff(a: Terminal, b: Terminal, { max = 12, scrollback = true } = {}): string[] {
  const out: string[] = [];
  const cmp = (what: string, x: unknown, y: unknown) => {
    const sx = JSON.stringify(x);
    const sy = JSON.stringify(y);
    if (sx !== sy && out.length < max) out.push(`${what}: operator ${sx} joiner ${sy}`);
  };
  cmp('size', [a.cols, a.rows], [b.cols, b.rows]);
  cmp('active buffer', a.buffer.active.type, b.buffer.active.type);
  cmp('cursor', [a.buffer.active.cursorX, a.buffer.active.cursorY], [b.buffer.active.cursorX, b.buffer.active.cursorY]);
  cmp('modes', a.modes, b.modes);
  const ca = core(a);
  const cb = core(b);
  cmp('cursor hidden', ca.coreService.isCursorHidden, cb.coreService.isCursorHidden);
  cmp('charset level', ca._charsetService.glevel, cb._charsetService.glevel);
  // Tables are shared objects of xterm's (same table, same identity), named here by their first entries.
  const name = (t: unknown) => (t ? `${JSON.stringify(t).slice(0, 24)}…` : 'US ASCII');
  for (let g = 0; g < 4; g++) cmp(`charset G${g}`, name(ca._charsetService._charsets[g]), name(cb._charsetService._charsets[g]));
  cmp('charset GL', name(ca._charsetService.charset), name(cb._charsetService.charset));
  for (const name of ['normal', 'alt'] as const) {
    const ba = ca._bufferService.buffers[name];
    const bb = cb._bufferService.buffers[name];
    cmp(`${name} scroll region`, [ba.scrollTop, ba.scrollBottom], [bb.scrollTop, bb.scrollBottom]);
    // As DECRC would restore it (it keeps the cursor on the screen).
    const saved = (x: typeof ba, t: Terminal) => [
      Math.min(x.savedX, t.cols - 1),
      Math.min(Math.max(x.savedY - x.ybase, 0), t.rows - 1),
      x.savedCurAttrData.fg,
      x.savedCurAttrData.bg,
    ];
    cmp(`${name} saved cursor`, saved(ba, a), saved(bb, b));
  }
  for (const name of ['normal', 'alternate'] as const) {
    const ra = rows(a.buffer[name], a.cols);
    const rb = rows(b.buffer[name], b.cols);
    if (scrollback) cmp(`${name} buffer lines`, ra.text.length, rb.text.length);
    // Align from the bottom: the screen is the last `rows` lines.
    const n = Math.min(ra.text.length, rb.text.length, scrollback ? Infinity : a.rows);
    for (let i = 1; i <= n && out.length < max; i++) {
      const ya = ra.text.length - i;
      const yb = rb.text.length - i;
      const where = `${name} line ${ya} (${i <= a.rows ? `screen row ${a.rows - i}` : 'scrollback'})`;
      if (ra.text[ya] !== rb.text[yb]) {
        cmp(`${where} text`, ra.text[ya].trimEnd(), rb.text[yb].trimEnd());
        continue;
      }
      cmp(`${where} wrapped`, ra.wrapped[ya], rb.wrapped[yb]);
      const x = ra.cells[ya].findIndex((c, k) => c !== rb.cells[yb][k]);
      if (x >= 0) cmp(`${where} cell ${x}`, ra.cells[ya][x], rb.cells[yb][x]);
    }
  }
  return out;
}
