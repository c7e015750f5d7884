// An xterm.js terminal with the console's addons. WebGL is the fast renderer
// where there is a GPU, but it may be missing (no GPU, blocklisted driver,
// too many contexts), only emulated in software (see webgl.ts), or lost
// later; in every such case the terminal uses xterm's default DOM renderer
// and keeps working.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { SearchAddon } from '@xterm/addon-search';
import { Unicode11Addon } from '@xterm/addon-unicode11';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { WebglAddon } from '@xterm/addon-webgl';
import type { Settings } from '../state/settings';
import { THEMES, type ThemeName } from './themes';
import { gpuWebgl } from './webgl';

/**
 * Row height as a multiple of the font's. At 1 (xterm's default) the DOM
 * renderer's rows clip what DejaVu Sans Mono draws at the bottom of its
 * cell: at 10, 14 and 19 px the underscore vanishes ("snake_case" reads
 * "snake case"). From 1.1 up every size from FONT_MIN to FONT_MAX shows it;
 * 1.2 leaves room for other fonts' deeper descenders.
 */
export const LINE_HEIGHT = 1.2;
/** Matches the search bar counts and highlights; beyond it the bar says "1000+". */
export const SEARCH_LIMIT = 1000;
export const FONT_FAMILY = 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';

export interface Xterm {
  term: Terminal;
  fit: FitAddon;
  search: SearchAddon;
  /** Which renderer draws it, once opened. */
  renderer: () => 'webgl' | 'dom';
  open(el: HTMLElement): void;
}

export function createXterm(settings: Settings, theme: ThemeName, readOnly: boolean): Xterm {
  const term = new Terminal({
    fontSize: settings.fontSize,
    lineHeight: LINE_HEIGHT,
    fontFamily: FONT_FAMILY,
    theme: THEMES[theme],
    scrollback: 5000,
    // A watch-only view has no input path: xterm ignores keystrokes and the
    // view never subscribes to onData (see tab.ts).
    disableStdin: readOnly,
    cursorBlink: false,
    cursorInactiveStyle: readOnly ? 'none' : 'outline',
    allowProposedApi: true, // unicode11's activeVersion
  });
  const fit = new FitAddon();
  const search = new SearchAddon({ highlightLimit: SEARCH_LIMIT });
  term.loadAddon(fit);
  term.loadAddon(search);
  term.loadAddon(new WebLinksAddon((_e, uri) => window.open(uri, '_blank', 'noopener,noreferrer')));
  const unicode = new Unicode11Addon();
  term.loadAddon(unicode);
  term.unicode.activeVersion = '11';
  let renderer: 'webgl' | 'dom' = 'dom';
  return {
    term,
    fit,
    search,
    renderer: () => renderer,
    open(el) {
      term.open(el);
      if (settings.renderer === 'dom' || (settings.renderer === 'auto' && !gpuWebgl())) return;
      try {
        const webgl = new WebglAddon();
        webgl.onContextLoss(() => {
          // The GPU went away (driver reset, too many contexts): back to the DOM renderer.
          renderer = 'dom';
          webgl.dispose();
        });
        term.loadAddon(webgl);
        renderer = 'webgl';
      } catch {
        renderer = 'dom';
      }
    },
  };
}

/** The active buffer as text, one line per row, trailing blank rows dropped (for the test hook). */
export function bufferText(term: Terminal): string {
  const b = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i)?.translateToString(true) ?? '');
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}
