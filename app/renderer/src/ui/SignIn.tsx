import { useState } from 'react';
import { beginSignIn } from '../auth/pkce';
import { clearAuth, newAuth, saveAuth } from '../auth/storage';
import type { ConsoleStore } from '../state/store';
import { useNow, useObservable } from './hooks';

/** Not signed in (or the token was refused): sign in with the control plane, or paste a token. */
export function SignIn({ message }: { message?: string }) {
  const [error, setError] = useState('');
  const [token, setToken] = useState('');
  return (
    <div className="signin" data-testid="signin-view">
      <h1>CMDOP</h1>
      {message && (
        <p className="error" data-testid="signin-message">
          {message}
        </p>
      )}
      <button
        type="button"
        className="primary"
        data-testid="sign-in"
        onClick={() => {
          clearAuth();
          beginSignIn().catch((e: Error) => setError(e.message));
        }}
      >
        Sign in
      </button>
      {error && <p className="error">{error}</p>}
      <details>
        <summary>Use a token instead</summary>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (!token.trim()) return;
            saveAuth(newAuth({ accessToken: token.trim(), source: 'fragment' }));
            location.replace('/');
          }}
        >
          <input type="password" autoComplete="off" placeholder="cmdop_…" value={token} onChange={(e) => setToken(e.target.value)} aria-label="Token" />{' '}
          <button type="submit">Use</button>
        </form>
      </details>
    </div>
  );
}

/** How long the header says "reconnected" after the page's connection came back. */
const RECONNECTED_SHOWN_MS = 5000;

/** The page's own connection: says so when it is lost and while it reconnects (never silent), and that it came back, for a moment. */
export function ConnectionBanner({ store }: { store: ConsoleStore }) {
  useObservable(store);
  const s = store.conn.status;
  const since = Date.now() - store.conn.reconnectedAtMs;
  const fresh = s === 'open' && store.conn.reconnects > 0 && since < RECONNECTED_SHOWN_MS;
  // Re-render once the "reconnected" moment is over.
  useNow(RECONNECTED_SHOWN_MS - since + 50, fresh);
  const text = s === 'open' ? (fresh ? 'reconnected' : 'connected') : s === 'connecting' ? 'connecting…' : s === 'reconnecting' ? 'offline: reconnecting…' : 'refused';
  return (
    <span className={`conn conn-${s}`} data-testid="connection-status" data-status={s} data-reconnects={store.conn.reconnects} role="status">
      {text}
    </span>
  );
}
