import { useState } from 'react';
import { beginSignIn } from '../auth/pkce';
import { clearAuth, newAuth, saveAuth } from '../auth/storage';
import type { ConsoleStore } from '../state/store';
import { useObservable } from './hooks';

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

/** The page's own connection: says so when it is lost and while it reconnects (never silent). */
export function ConnectionBanner({ store }: { store: ConsoleStore }) {
  useObservable(store);
  const s = store.conn.status;
  const text = s === 'open' ? (store.conn.reconnects > 0 ? 'connected (reconnected)' : 'connected') : s === 'connecting' ? 'connecting…' : s === 'reconnecting' ? 'connection lost: reconnecting…' : 'refused';
  return (
    <span className={`conn conn-${s}`} data-testid="connection-status" data-status={s} data-reconnects={store.conn.reconnects} role="status">
      {text}
    </span>
  );
}
