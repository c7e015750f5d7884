// The tab list survives a reload of the page: which terminals were open, in
// which order, under which names, and which was active. Kept in
// sessionStorage beside the sign-in (this browser tab only), so a reload
// re-attaches every tab — an existing terminal's first attach brings its
// current screen — and closing the browser tab forgets them.
import { AttachMode } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { NAME_PATTERN } from '../../../../protocol/limits';

const KEY = 'cmdop.tabs';
/** A sane bound: a corrupted or hostile entry cannot make the page open thousands of streams. */
export const MAX_RESTORED_TABS = 64;

export interface SavedTab {
  machine: string;
  terminalId: string;
  mode: AttachMode;
  /** Set only when the user renamed the tab. */
  title?: string;
}

export interface SavedTabs {
  tabs: SavedTab[];
  /** Index of the active tab in `tabs`; -1: the machines view. */
  active: number;
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;

function valid(t: unknown): t is SavedTab {
  if (!t || typeof t !== 'object') return false;
  const s = t as Record<string, unknown>;
  return (
    typeof s.machine === 'string' &&
    NAME_PATTERN.test(s.machine) &&
    typeof s.terminalId === 'string' &&
    ID.test(s.terminalId) &&
    (s.mode === AttachMode.OPERATOR || s.mode === AttachMode.OBSERVER) &&
    (s.title === undefined || (typeof s.title === 'string' && s.title.length <= 200))
  );
}

export function loadTabs(): SavedTabs {
  try {
    const raw = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as { tabs?: unknown; active?: unknown } | null;
    const tabs = Array.isArray(raw?.tabs) ? raw.tabs.filter(valid).slice(0, MAX_RESTORED_TABS) : [];
    const active = typeof raw?.active === 'number' && raw.active >= 0 && raw.active < tabs.length ? raw.active : -1;
    return { tabs, active };
  } catch {
    return { tabs: [], active: -1 };
  }
}

export function saveTabs(s: SavedTabs): void {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    // Storage full or disabled: the tabs simply will not survive a reload.
  }
}

export function clearTabs(): void {
  sessionStorage.removeItem(KEY);
}
