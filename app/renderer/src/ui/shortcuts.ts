// Keyboard shortcuts. Alt+Shift and Ctrl+Shift combinations: a shell needs
// plain Ctrl and Alt keys (Ctrl-C, Ctrl-R, Alt-B …), and browsers keep
// Ctrl+T/W/N for themselves. Matched on `code`, so they work whatever the
// keyboard layout makes of Shift.
export type Action =
  | 'newTab'
  | 'closeTab'
  | 'nextTab'
  | 'prevTab'
  | 'moveLeft'
  | 'moveRight'
  | 'rename'
  | 'machines'
  | 'search'
  | 'copy'
  | 'paste'
  | 'fontUp'
  | 'fontDown'
  | 'settings'
  | 'help'
  | `tab${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9}`;

interface Binding {
  ctrl?: boolean;
  alt?: boolean;
  code: string;
  action: Action;
  label: string;
  what: string;
}

export const BINDINGS: Binding[] = [
  { alt: true, code: 'KeyT', action: 'newTab', label: 'Alt+Shift+T', what: 'new terminal on this machine' },
  { alt: true, code: 'KeyW', action: 'closeTab', label: 'Alt+Shift+W', what: 'close the tab' },
  { alt: true, code: 'ArrowRight', action: 'nextTab', label: 'Alt+Shift+→', what: 'next tab' },
  { alt: true, code: 'ArrowLeft', action: 'prevTab', label: 'Alt+Shift+←', what: 'previous tab' },
  { alt: true, code: 'PageDown', action: 'moveRight', label: 'Alt+Shift+PageDown', what: 'move the tab right' },
  { alt: true, code: 'PageUp', action: 'moveLeft', label: 'Alt+Shift+PageUp', what: 'move the tab left' },
  { alt: true, code: 'KeyR', action: 'rename', label: 'Alt+Shift+R', what: 'rename the tab' },
  { alt: true, code: 'KeyM', action: 'machines', label: 'Alt+Shift+M', what: 'machines view' },
  { ctrl: true, code: 'KeyF', action: 'search', label: 'Ctrl+Shift+F', what: 'search the terminal' },
  { ctrl: true, code: 'KeyC', action: 'copy', label: 'Ctrl+Shift+C', what: 'copy the selection' },
  { ctrl: true, code: 'KeyV', action: 'paste', label: 'Ctrl+Shift+V', what: 'paste' },
  { alt: true, code: 'Equal', action: 'fontUp', label: 'Alt+Shift+=', what: 'larger font' },
  { alt: true, code: 'Minus', action: 'fontDown', label: 'Alt+Shift+-', what: 'smaller font' },
  { alt: true, code: 'Comma', action: 'settings', label: 'Alt+Shift+,', what: 'settings' },
  { alt: true, code: 'Slash', action: 'help', label: 'Alt+Shift+/', what: 'this list' },
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({
    alt: true,
    code: `Digit${n}`,
    action: `tab${n}` as Action,
    label: n === 1 ? 'Alt+Shift+1…9' : '',
    what: n === 1 ? 'go to tab N' : '',
  })),
];

export function actionFor(e: KeyboardEvent): Action | undefined {
  if (!e.shiftKey || e.metaKey) return undefined;
  const b = BINDINGS.find((x) => x.code === e.code && !!x.ctrl === e.ctrlKey && !!x.alt === e.altKey);
  return b?.action;
}
