// A read-only window into the console for end-to-end tests (and anyone
// debugging in devtools): what each terminal shows and how many bytes it has
// rendered. It exposes no way to send anything.
import type { ConsoleStore } from './state/store';
import type { Tab } from './state/tab';

export interface CmdopTestHook {
  /** The active buffer of the terminal's tab as text (a tab key works too). */
  screenText(terminalId: string): string;
  /** Terminal ids of the open tabs, in tab order. */
  terminals(): string[];
  /** Bytes of the terminal's output rendered so far (its stream position). */
  bytes(terminalId: string): number;
  /** Bytes handed to xterm so far: equals bytes() for a tab that opened its terminal and never skipped or repeated any. */
  written(terminalId: string): number;
  /** The terminal's grid (columns and rows), to find a cell on screen. */
  grid(terminalId: string): { cols: number; rows: number };
  /** A copy of the colour theme the terminal draws with now (xterm's ITheme). */
  theme(terminalId: string): Record<string, unknown>;
  /** Every tab: key, terminal, mode, renderer. */
  tabs(): { key: string; terminalId: string; mode: 'operator' | 'observer'; renderer: string }[];
}

export function installTestHook(store: () => ConsoleStore | undefined): void {
  const find = (id: string): Tab | undefined => {
    const tabs = store()?.tabs ?? [];
    // An operator tab and a watch-only tab can show the same terminal; the operator's is the default.
    return tabs.find((t) => t.key === id) ?? tabs.find((t) => t.terminalId === id && t.operator) ?? tabs.find((t) => t.terminalId === id);
  };
  const hook: CmdopTestHook = Object.freeze({
    screenText: (id: string) => find(id)?.screenText() ?? '',
    terminals: () => (store()?.tabs ?? []).map((t) => t.terminalId).filter(Boolean),
    bytes: (id: string) => find(id)?.session.rendered ?? 0,
    written: (id: string) => find(id)?.written ?? 0,
    grid: (id: string) => {
      const t = find(id)?.xterm.term;
      return { cols: t?.cols ?? 0, rows: t?.rows ?? 0 };
    },
    theme: (id: string) => ({ ...(find(id)?.xterm.term.options.theme ?? {}) }),
    tabs: () =>
      (store()?.tabs ?? []).map((t) => ({
        key: t.key,
        terminalId: t.terminalId,
        mode: t.operator ? ('operator' as const) : ('observer' as const),
        renderer: t.xterm.renderer(),
      })),
  });
  Object.defineProperty(window, '__cmdop', { value: hook, writable: false, configurable: false, enumerable: false });
}
