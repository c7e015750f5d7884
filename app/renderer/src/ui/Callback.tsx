import { useEffect, useState } from 'react';
import { completeSignIn } from '../auth/pkce';

/** /callback: trade the authorization code for tokens, then go to the console. */
export function Callback() {
  const [error, setError] = useState('');
  useEffect(() => {
    completeSignIn(location.search)
      .then((to) => location.replace(to))
      .catch((e: Error) => setError(e.message));
  }, []);
  return (
    <div className="signin" data-testid="callback-view">
      <h1>CMDOP</h1>
      {error ? (
        <>
          <p className="error" data-testid="signin-message">
            {error}
          </p>
          <a href="/">Back to the console</a>
        </>
      ) : (
        <p>Signing in…</p>
      )}
    </div>
  );
}
