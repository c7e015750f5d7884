// Console settings, persisted in localStorage (they are preferences, not
// secrets, and should outlive the tab).
import type { ThemeChoice } from './theme';

const KEY = 'cmdop.settings';

export interface Settings {
  fontSize: number;
  /** `system` follows prefers-color-scheme (and its changes); light or dark pins it. */
  theme: ThemeChoice;
  /**
   * `auto`: WebGL where a GPU draws it, else the DOM renderer; `webgl`: WebGL
   * even when software draws it (a GPU the check misjudges); `dom`: never
   * WebGL. Applies to tabs opened afterwards; a lost WebGL context falls back
   * to the DOM renderer in every case.
   */
  renderer: 'auto' | 'webgl' | 'dom';
}

/** 14 px with term/xterm.ts's LINE_HEIGHT: every glyph of DejaVu Sans Mono shows (see there). */
export const DEFAULT_SETTINGS: Settings = { fontSize: 14, theme: 'system', renderer: 'auto' };
export const FONT_MIN = 8;
export const FONT_MAX = 32;

export function loadSettings(): Settings {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Settings>;
    const fontSize = Number.isFinite(raw.fontSize) ? Math.min(FONT_MAX, Math.max(FONT_MIN, Math.round(raw.fontSize!))) : DEFAULT_SETTINGS.fontSize;
    const theme = parseTheme(raw.theme);
    const renderer = parseRenderer(raw.renderer);
    return { fontSize, theme, renderer };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

export const parseTheme = (v: unknown): ThemeChoice => (v === 'light' || v === 'dark' ? v : 'system');

export const parseRenderer = (v: unknown): Settings['renderer'] => (v === 'dom' || v === 'webgl' ? v : 'auto');

export function saveSettings(s: Settings): void {
  localStorage.setItem(KEY, JSON.stringify(s));
}
