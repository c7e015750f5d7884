// One sign-in for every console tab of this browser (same origin), without
// putting it on disk.
//
// Each tab keeps its copy in sessionStorage (storage.ts): gone when the tab
// closes, never in localStorage, so a browser restart or another OS user
// of the profile finds nothing. A tab that has none (a new tab, a pasted
// /watch URL) asks the live tabs over a BroadcastChannel, which only pages
// of this origin can hear, and keeps the latest sign-in they hold. With no
// live tab there is nothing to hand over and the tab asks the person to
// sign in, as before.
//
// The OAuth refresh token rotates and is single-use: the authorization
// server treats a second use as theft and revokes the whole grant. So only
// one tab refreshes at a time, under a Web Lock (`navigator.locks`), and it
// tells the others the new tokens. A tab that was queued for the lock
// cannot rely on that message having arrived when the lock is handed to it
// (the lock and the channel are not ordered with each other), so before it
// refreshes it asks every live tab of the sign-in for its copy: each answers
// after whatever it did under the lock, and the highest `gen` wins. How many
// answers to wait for comes from Web Locks too: every tab holding the
// sign-in holds a shared lock named after it, and `navigator.locks.query()`
// counts them, so nobody waits out a timeout in the usual case.
//
// Signing out in one tab signs out every tab of that sign-in.
import { refreshAuth } from './pkce';
import { clearAuth, loadAuth, saveAuth, type StoredAuth } from './storage';

const CHANNEL = 'cmdop.auth';
const REFRESH_LOCK = 'cmdop.auth.refresh';
/** Held (shared) by every tab that holds sign-in SID: `cmdop.auth.tab:SID`. */
const PRESENCE = 'cmdop.auth.tab:';
/** Refresh an OAuth access token a minute before it ends (each reconnect asks). */
const REFRESH_BEFORE_MS = 60_000;
/** A tab that does not answer (frozen in the background) is not waited for longer than this. */
const ASK_TIMEOUT_MS = 1000;

type Msg =
  /** Every live tab of sign-in `sid` (of any sign-in when absent) answers with its copy. */
  | { type: 'ask'; id: string; sid?: string }
  | { type: 'answer'; id: string; auth: StoredAuth | null }
  /** A tab refreshed: the new tokens. */
  | { type: 'refreshed'; auth: StoredAuth }
  | { type: 'signout'; sid: string };

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(CHANNEL) : undefined;
const locks: LockManager | undefined = typeof navigator !== 'undefined' ? navigator.locks : undefined;
const waiting = new Map<string, (a: StoredAuth | null) => void>();
let taking = false;
let onSignedOut: (() => void) | undefined;
let presence: { sid: string; release(): void } | undefined;
let refreshing: Promise<string> | undefined;

const post = (m: Msg) => channel?.postMessage(m);
const randomId = () => crypto.getRandomValues(new Uint32Array(2)).join('-');

channel?.addEventListener('message', (e: MessageEvent<Msg>) => {
  const m = e.data;
  const mine = loadAuth();
  switch (m?.type) {
    case 'ask':
      if (taking && mine && (!m.sid || m.sid === mine.sid)) post({ type: 'answer', id: m.id, auth: mine });
      return;
    case 'answer':
      waiting.get(m.id)?.(m.auth);
      return;
    case 'refreshed':
      if (mine && m.auth.sid === mine.sid && m.auth.gen > mine.gen) saveAuth(m.auth);
      return;
    case 'signout':
      if (!mine || m.sid !== mine.sid) return;
      leave();
      onSignedOut?.();
      return;
  }
});

/** Holds the presence lock of `sid` until leave() (or the tab goes). */
function holdPresence(sid: string): Promise<void> {
  if (!locks || presence?.sid === sid) return Promise.resolve();
  presence?.release();
  return new Promise((granted) => {
    let release = () => {};
    const held = new Promise<void>((r) => (release = r));
    presence = { sid, release };
    void locks.request(PRESENCE + sid, { mode: 'shared' }, () => {
      granted();
      return held;
    });
  });
}

function leave(): void {
  presence?.release();
  presence = undefined;
  clearAuth();
}

/** How many other tabs hold sign-in `sid` (any sign-in when absent); undefined when the browser cannot tell. */
async function otherTabs(sid?: string): Promise<number | undefined> {
  if (!locks) return undefined;
  const { held = [] } = await locks.query();
  const n = held.filter((l) => (sid ? l.name === PRESENCE + sid : l.name?.startsWith(PRESENCE))).length;
  return presence && (!sid || presence.sid === sid) ? n - 1 : n;
}

/** The copies of the live tabs (of sign-in `sid`, or of any). */
async function ask(sid?: string): Promise<StoredAuth[]> {
  const expected = await otherTabs(sid);
  if (!channel || expected === 0) return [];
  const id = randomId();
  const got: StoredAuth[] = [];
  await new Promise<void>((done) => {
    let answers = 0;
    const finish = () => {
      clearTimeout(timer);
      waiting.delete(id);
      done();
    };
    const timer = setTimeout(finish, ASK_TIMEOUT_MS);
    waiting.set(id, (a) => {
      if (a && (!sid || a.sid === sid)) got.push(a);
      if (++answers === expected) finish();
    });
    post({ type: 'ask', id, sid });
  });
  return got;
}

/** Latest sign-in first; of copies of one sign-in, the most refreshed first. */
const newestFirst = (a: StoredAuth, b: StoredAuth) => b.sinceMs - a.sinceMs || b.gen - a.gen;

/**
 * A tab with no sign-in of its own: takes the latest sign-in a live tab of
 * this browser holds (kept in this tab's sessionStorage), or undefined.
 */
export async function joinSession(): Promise<StoredAuth | undefined> {
  const best = (await ask()).sort(newestFirst)[0];
  if (best) saveAuth(best);
  return best;
}

/**
 * This tab shares its sign-in: it answers tabs that ask, takes the tokens
 * other tabs refresh, and is signed out when one of them signs out
 * (`signedOut` is told then, after the copy is gone).
 */
export async function shareSession(signedOut: () => void): Promise<void> {
  taking = true;
  onSignedOut = signedOut;
  const a = loadAuth();
  if (a) await holdPresence(a.sid);
}

const needsRefresh = (a: StoredAuth) =>
  a.source === 'oauth' && !!a.refreshToken && !!a.expiresAtMs && a.expiresAtMs - Date.now() < REFRESH_BEFORE_MS;

/** The page's current access token, refreshed first when it is about to end. */
export function currentToken(): Promise<string> {
  const a = loadAuth();
  if (!a) return Promise.reject(new Error('not signed in'));
  if (!needsRefresh(a)) return Promise.resolve(a.accessToken);
  // One refresh at a time in this tab, and under the lock across the tabs.
  if (!refreshing) {
    const run = locks ? withLock(locks) : refreshUnderLock();
    refreshing = run.finally(() => (refreshing = undefined));
  }
  return refreshing;
}

// The lock is held until the callback's promise settles; request() resolves with its value.
const withLock = async (l: LockManager): Promise<string> => await l.request(REFRESH_LOCK, refreshUnderLock);

async function refreshUnderLock(): Promise<string> {
  let a = loadAuth();
  if (!a) throw new Error('signed out');
  // Another tab refreshed while this one waited for the lock, and its word has arrived.
  if (!needsRefresh(a)) return a.accessToken;
  // Or its word is still on the way: ask the tabs of this sign-in.
  const newest = (await ask(a.sid)).sort(newestFirst)[0];
  if (newest && newest.gen > a.gen) {
    saveAuth(newest);
    a = newest;
    if (!needsRefresh(a)) return a.accessToken;
  }
  const next = await refreshAuth(a);
  post({ type: 'refreshed', auth: next });
  return next.accessToken;
}

/** Signs out this tab and every tab of its sign-in; returns what was signed out (to revoke). */
export function signOutEverywhere(): StoredAuth | undefined {
  const a = loadAuth();
  if (a) post({ type: 'signout', sid: a.sid });
  leave();
  return a;
}
