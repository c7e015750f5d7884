// Entry: which page this is decides what to show.
//   /callback           the OAuth redirect: finish signing in
//   /share#TOKEN        a share link: the watch-only view of one terminal
//   /watch?machine=M&terminal=T
//                       a watch window the console opened (its sign-in)
//   /#token=TOKEN or /  the console (a token from the fragment, this tab's
//                       sign-in, or the sign-in page)
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { createRoot } from 'react-dom/client';
import { TokenKind } from '../../../protocol/generated/cmdop/v1/cmdop';
import { refreshAuth, revokeAuth } from './auth/pkce';
import { clearAuth, loadAuth, takeFragmentToken, takeShareToken } from './auth/storage';
import { serveTokensToWatchWindows, watchWindowTokens } from './auth/watchWindowToken';
import { ConsoleConnection } from './net/connection';
import { clearTabs } from './state/persistedTabs';
import { loadSettings } from './state/settings';
import { ConsoleStore } from './state/store';
import { applyPageTheme } from './state/theme';
import { installTestHook } from './testHook';
import { Callback } from './ui/Callback';
import { ConsoleApp } from './ui/ConsoleApp';
import { SignIn } from './ui/SignIn';
import { WatchApp, type WatchTarget } from './ui/WatchApp';
import { watchTarget } from './ui/watchWindow';

/** Refresh an OAuth access token a minute before it ends (each reconnect asks). */
const REFRESH_BEFORE_MS = 60_000;

let refreshing: Promise<string> | undefined;

async function currentToken(): Promise<string> {
  const a = loadAuth();
  if (!a) throw new Error('not signed in');
  if (a.source === 'oauth' && a.refreshToken && a.expiresAtMs && a.expiresAtMs - Date.now() < REFRESH_BEFORE_MS) {
    // One refresh at a time: the refresh token rotates, and using it twice revokes the sign-in.
    refreshing ??= refreshAuth(a)
      .then((n) => n.accessToken)
      .finally(() => (refreshing = undefined));
    return refreshing;
  }
  return a.accessToken;
}

// Every page (sign-in, share and watch windows too) in the theme chosen in settings.
applyPageTheme(loadSettings().theme);

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
    const conn = store.conn;
    const target = async (): Promise<WatchTarget> => {
      const id = await conn.call('whoAmI', {});
      if (id.kind !== TokenKind.SHARE || !id.machine || !id.terminalId) throw new Error('this link does not carry a share token');
      return { machine: id.machine, terminalId: id.terminalId };
    };
    root.render(<WatchApp store={store} target={target} label="shared terminal" />);
  }
} else if (path === '/watch') {
  const t = watchTarget(location.search);
  if (!loadAuth()) {
    root.render(<SignIn message="This watch window has no sign-in: open it from the console." />);
  } else if (!t) {
    root.render(<SignIn message="This watch window does not say which terminal to watch." />);
  } else {
    // The machine list gives the PTY's size and the session's state.
    store = new ConsoleStore(new ConsoleConnection(watchWindowTokens()), { listMachines: true });
    store.start();
    root.render(<WatchApp store={store} target={async () => t} label="watching" />);
  }
} else {
  takeFragmentToken();
  // `/?open=MACHINE` (the desktop's "New terminal to…"): open a shell there, once.
  const open = new URLSearchParams(location.search).get('open');
  if (open !== null) history.replaceState(history.state, '', location.pathname + location.hash);
  if (!loadAuth()) {
    root.render(<SignIn />);
  } else {
    store = new ConsoleStore(new ConsoleConnection(currentToken), { listMachines: true, persistTabs: true });
    if (open) store.openWhenListed(open);
    store.start();
    serveTokensToWatchWindows(currentToken);
    const signOut = () => {
      store?.stop();
      const a = loadAuth();
      clearAuth();
      clearTabs();
      void (a ? revokeAuth(a) : Promise.resolve()).finally(() => location.replace('/'));
    };
    root.render(<ConsoleApp store={store} signOut={signOut} />);
  }
}
