// How a watch window (opened by the console with window.open) gets its token.
//
// The browser copies the console's sessionStorage into the new window, the
// sign-in included. A token from `#token=` is simply used. An OAuth sign-in
// is different: its refresh token rotates on every use, so two windows
// refreshing their own copies would invalidate each other (and the
// authorization server treats a replayed refresh token as theft and revokes
// the grant). So the watch window drops its copy of the refresh token and,
// when its access token nears its end, asks the console window for a fresh
// one over postMessage, same origin only.
import { loadAuth, saveAuth } from './storage';

const REQUEST = 'cmdop.token-request';
const REPLY = 'cmdop.token-reply';
const ASK_TIMEOUT_MS = 10_000;
/** Ask for a new access token this long before the current one ends. */
const FRESH_FOR_MS = 60_000;

interface TokenRequest {
  type: typeof REQUEST;
  id: string;
}
interface TokenReply {
  type: typeof REPLY;
  id: string;
  token?: string;
  /** When that token ends (OAuth); absent for a token without an expiry. */
  expiresAtMs?: number;
  error?: string;
}

/** In the console: answer token requests from the windows it opened (same origin only). */
export function serveTokensToWatchWindows(currentToken: () => Promise<string>): void {
  window.addEventListener('message', (e: MessageEvent<TokenRequest>) => {
    if (e.origin !== location.origin || e.data?.type !== REQUEST || !e.source) return;
    const source = e.source as Window;
    // Only a window this one opened: its opener is us.
    if (source.opener !== window) return;
    const reply = (r: Omit<TokenReply, 'type' | 'id'>) => source.postMessage({ type: REPLY, id: e.data.id, ...r }, location.origin);
    currentToken().then(
      (token) => reply({ token, expiresAtMs: loadAuth()?.expiresAtMs }),
      (err: Error) => reply({ error: err.message }),
    );
  });
}

/** In a watch window: its token, refreshed through the console window that opened it. */
export function watchWindowTokens(): () => Promise<string> {
  const a = loadAuth();
  if (a?.refreshToken) saveAuth({ ...a, refreshToken: undefined });
  return async () => {
    const now = loadAuth();
    if (!now) throw new Error('not signed in: open this view from the console');
    if (now.source !== 'oauth' || !now.expiresAtMs || now.expiresAtMs - Date.now() > FRESH_FOR_MS) return now.accessToken;
    const { token, expiresAtMs } = await askOpener();
    saveAuth({ ...now, accessToken: token, expiresAtMs });
    return token;
  };
}

function askOpener(): Promise<{ token: string; expiresAtMs?: number }> {
  const opener = window.opener as Window | null;
  if (!opener || opener.closed) {
    return Promise.reject(new Error('the console window that opened this view is gone; open it again from the console'));
  }
  const id = crypto.getRandomValues(new Uint32Array(2)).join('-');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('the console window did not answer with a token')), ASK_TIMEOUT_MS);
    const onMessage = (e: MessageEvent<TokenReply>) => {
      if (e.origin !== location.origin || e.source !== opener || e.data?.type !== REPLY || e.data.id !== id) return;
      const { token, expiresAtMs, error } = e.data;
      done(token ? undefined : new Error(error ?? 'no token'), token ? { token, expiresAtMs } : undefined);
    };
    const done = (err: Error | undefined, r?: { token: string; expiresAtMs?: number }) => {
      clearTimeout(timer);
      window.removeEventListener('message', onMessage);
      if (err || !r) reject(err);
      else resolve(r);
    };
    window.addEventListener('message', onMessage);
    opener.postMessage({ type: REQUEST, id } satisfies TokenRequest, location.origin);
  });
}
