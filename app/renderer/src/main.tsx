// Entry: which page this is decides what to show.
//   /callback           the OAuth redirect: finish signing in
//   /share#TOKEN        a share link: the watch-only view of one terminal
//   /#token=TOKEN or /  the console (a token from the fragment, this tab's
//                       sign-in, or the sign-in page)
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { createRoot } from 'react-dom/client';
import { refreshAuth, revokeAuth } from './auth/pkce';
import { clearAuth, loadAuth, takeFragmentToken, takeShareToken } from './auth/storage';
import { ConsoleConnection } from './net/connection';
import { ConsoleStore } from './state/store';
import { installTestHook } from './testHook';
import { Callback } from './ui/Callback';
import { ConsoleApp } from './ui/ConsoleApp';
import { ShareApp } from './ui/ShareApp';
import { SignIn } from './ui/SignIn';

/** Refresh an OAuth access token a minute before it ends (each reconnect asks). */
const REFRESH_BEFORE_MS = 60_000;

async function currentToken(): Promise<string> {
  let a = loadAuth();
  if (!a) throw new Error('not signed in');
  if (a.source === 'oauth' && a.refreshToken && a.expiresAtMs && a.expiresAtMs - Date.now() < REFRESH_BEFORE_MS) {
    a = await refreshAuth(a);
  }
  return a.accessToken;
}

let store: ConsoleStore | undefined;
installTestHook(() => store);

const root = createRoot(document.getElementById('root')!);
const path = location.pathname;

if (path === '/callback') {
  root.render(<Callback />);
} else if (path === '/share') {
  const token = takeShareToken();
  if (!token) {
    root.render(<SignIn message="This share link carries no token." />);
  } else {
    store = new ConsoleStore(new ConsoleConnection(async () => token), { listMachines: false });
    store.start();
    root.render(<ShareApp store={store} />);
  }
} else {
  takeFragmentToken();
  if (!loadAuth()) {
    root.render(<SignIn />);
  } else {
    store = new ConsoleStore(new ConsoleConnection(currentToken), { listMachines: true });
    store.start();
    const signOut = () => {
      store?.stop();
      const a = loadAuth();
      clearAuth();
      void (a ? revokeAuth(a) : Promise.resolve()).finally(() => location.replace('/'));
    };
    root.render(<ConsoleApp store={store} signOut={signOut} />);
  }
}
