// Which theme is in force: the one chosen in settings, or the system's
// (prefers-color-scheme) when the choice is "system". The page's colours
// follow it through CSS alone (styles.css: light-dark() under color-scheme,
// which data-theme on <html> pins when the user overrides); the terminals,
// drawn by xterm.js, need the resolved name.
import type { ThemeName } from '../term/themes';

export type ThemeChoice = 'system' | ThemeName;

const darkQuery = (): MediaQueryList | undefined => (typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : undefined);

/**
 * The theme to draw with. Without a dark preference it is light, as CSS
 * resolves light-dark() then, so the terminal and the page always agree.
 */
export function effectiveTheme(choice: ThemeChoice): ThemeName {
  if (choice !== 'system') return choice;
  return darkQuery()?.matches ? 'dark' : 'light';
}

/** Pins the page to the chosen theme, or lets it follow the system. */
export function applyPageTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === 'system') delete root.dataset.theme;
  else root.dataset.theme = choice;
}

/** Calls `cb` when the system's light/dark setting changes; returns the unsubscribe. */
export function onSystemThemeChange(cb: () => void): () => void {
  const q = darkQuery();
  q?.addEventListener('change', cb);
  return () => q?.removeEventListener('change', cb);
}
