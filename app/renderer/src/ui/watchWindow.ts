// Watch-only views open in windows of their own, so an operator can keep a
// colleague's terminal in view beside their own tabs. A window per terminal:
// asking again brings the open one to the front. Where the browser blocks
// the popup, the view opens as a tab instead and the caller is told.
const open = new Map<string, Window>();

export const watchUrl = (machine: string, terminalId: string): string =>
  `/watch?machine=${encodeURIComponent(machine)}&terminal=${encodeURIComponent(terminalId)}`;

/** Opens (or focuses) the watch window of the terminal; false when the browser refused to open it. */
export function openWatchWindow(machine: string, terminalId: string): boolean {
  const existing = open.get(terminalId);
  if (existing && !existing.closed) {
    existing.focus();
    return true;
  }
  // Not `noopener`: the handle lets asking again focus it. Its sign-in comes from this tab (auth/sharedSession.ts).
  const w = window.open(watchUrl(machine, terminalId), `cmdop-watch-${terminalId}`, 'popup,width=960,height=640');
  if (!w) return false;
  open.set(terminalId, w);
  return true;
}

/** The watch window's target, from its URL. */
export function watchTarget(search: string): { machine: string; terminalId: string } | undefined {
  const q = new URLSearchParams(search);
  const machine = q.get('machine') ?? '';
  const terminalId = q.get('terminal') ?? '';
  return machine && terminalId ? { machine, terminalId } : undefined;
}
