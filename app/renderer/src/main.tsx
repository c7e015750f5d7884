// Entry: which page this is decides what to show.
//   /callback           the OAuth redirect: finish signing in
//   /share#TOKEN        a share link: the watch-only view of one terminal
//   /watch?machine=M&terminal=T
//                       a watch window (the console opened it, or the URL
//                       was pasted): the browser's sign-in
//   /#token=TOKEN or /  the console (a token from the fragment, this tab's
//                       sign-in, the sign-in of another live tab of this
//                       browser, or the sign-in page)
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { createRoot } from 'react-dom/client';
import { TokenKind } from '../../../protocol/generated/cmdop/v1/cmdop';
import { revokeAuth } from './auth/pkce';
import { currentToken, joinSession, shareSession, signOutEverywhere } from './auth/sharedSession';
import { loadAuth, takeFragmentToken, takeShareToken } from './auth/storage';
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
  void watchPage();
} else {
  void consolePage();
}

/** This tab's sign-in, or the one a live tab of this browser hands over. */
async function signedIn(): Promise<boolean> {
  return !!(loadAuth() ?? (await joinSession()));
}

/** Signed out in another tab: this one stops and says so. */
function signedOutElsewhere(): void {
  store?.stop();
  store = undefined;
  clearTabs();
  root.render(<SignIn message="Signed out (in another tab of this browser)." />);
}

async function watchPage(): Promise<void> {
  const t = watchTarget(location.search);
  if (!(await signedIn())) {
    root.render(<SignIn message="Sign in to watch this terminal: no tab of this browser is signed in." />);
  } else if (!t) {
    root.render(<SignIn message="This watch window does not say which terminal to watch." />);
  } else {
    await shareSession(signedOutElsewhere);
    // The machine list gives the PTY's size and the session's state.
    store = new ConsoleStore(new ConsoleConnection(currentToken), { listMachines: true });
    store.start();
    root.render(<WatchApp store={store} target={async () => t} label="watching" />);
  }
}

async function consolePage(): Promise<void> {
  takeFragmentToken();
  // `/?open=MACHINE` (the desktop's "New terminal to…"): open a shell there, once.
  const open = new URLSearchParams(location.search).get('open');
  if (open !== null) history.replaceState(history.state, '', location.pathname + location.hash);
  if (!(await signedIn())) {
    root.render(<SignIn />);
    return;
  }
  await shareSession(signedOutElsewhere);
  const s = new ConsoleStore(new ConsoleConnection(currentToken), { listMachines: true, persistTabs: true });
  store = s;
  if (open) s.openWhenListed(open);
  s.start();
  const signOut = () => {
    s.stop();
    const a = signOutEverywhere();
    clearTabs();
    void (a ? revokeAuth(a) : Promise.resolve()).finally(() => location.replace('/'));
  };
  root.render(<ConsoleApp store={s} signOut={signOut} />);
}
