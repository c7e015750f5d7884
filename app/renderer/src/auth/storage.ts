// The console's credentials. They live in sessionStorage (this browser tab
// only, gone when it closes) and never in the URL: a token that arrives in a
// fragment is moved here and the fragment is dropped at once, so it is not
// left in the address bar, the history or a screenshot. Other tabs of the
// same browser get them from a live tab, never from disk (sharedSession.ts).
const AUTH_KEY = 'cmdop.auth';
const SHARE_KEY = 'cmdop.share';

export interface StoredAuth {
  accessToken: string;
  /** OAuth only: the rotating refresh token and when the access token ends. */
  refreshToken?: string;
  expiresAtMs?: number;
  /** Where it came from: a pasted/printed token (`#token=`) or an OAuth sign-in. */
  source: 'fragment' | 'oauth';
  /** One sign-in, whichever tabs share it: refreshes and sign-out apply to tabs of the same `sid`. */
  sid: string;
  /** Refreshes so far: of two copies of one sign-in, the higher `gen` holds the live refresh token. */
  gen: number;
  /** When it was signed in: a new tab takes the latest sign-in when several answer. */
  sinceMs: number;
}

/** A new sign-in (its own `sid`, no refresh yet). */
export function newAuth(a: Omit<StoredAuth, 'sid' | 'gen' | 'sinceMs'>): StoredAuth {
  return { ...a, sid: crypto.getRandomValues(new Uint32Array(4)).join('-'), gen: 0, sinceMs: Date.now() };
}

function read<T>(key: string): T | undefined {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? (JSON.parse(raw) as T) : undefined;
  } catch {
    return undefined;
  }
}

export function loadAuth(): StoredAuth | undefined {
  const a = read<StoredAuth>(AUTH_KEY);
  if (!a || a.sid) return a;
  // A copy saved by an older console (before sessions were shared) has no sid: give it one, once.
  const b = { ...newAuth(a), sinceMs: 0 };
  saveAuth(b);
  return b;
}
export const saveAuth = (a: StoredAuth): void => sessionStorage.setItem(AUTH_KEY, JSON.stringify(a));
export const clearAuth = (): void => sessionStorage.removeItem(AUTH_KEY);

export const loadShareToken = (): string | undefined => read<string>(SHARE_KEY);
export const clearShareToken = (): void => sessionStorage.removeItem(SHARE_KEY);

/** Drops the fragment from the address bar without a navigation. */
function dropFragment(): void {
  history.replaceState(history.state, '', location.pathname + location.search);
}

/** `#token=TOKEN` (what `cmdop up` prints): keep it, drop it from the URL. */
export function takeFragmentToken(): string | undefined {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return undefined;
  const token = decodeURIComponent(m[1]);
  dropFragment();
  saveAuth(newAuth({ accessToken: token, source: 'fragment' }));
  return token;
}

/** A share link is `/share#TOKEN` (`cmdop share` prints it). */
export function takeShareToken(): string | undefined {
  const raw = location.hash.slice(1);
  if (raw) {
    const token = decodeURIComponent(raw.startsWith('token=') ? raw.slice('token='.length) : raw);
    dropFragment();
    sessionStorage.setItem(SHARE_KEY, JSON.stringify(token));
    return token;
  }
  return loadShareToken();
}
