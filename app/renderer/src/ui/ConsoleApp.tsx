// The signed-in console: header, tab strip, machines view and terminal
// panes; keyboard shortcuts; settings.
import { useEffect, useState } from 'react';
import { SessionState } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { FONT_MAX, FONT_MIN } from '../state/settings';
import { MACHINES, type ConsoleStore } from '../state/store';
import type { Tab } from '../state/tab';
import { useObservable } from './hooks';
import { MachinesView } from './MachinesView';
import { SearchBar } from './SearchBar';
import { HelpPanel, SettingsPanel } from './SettingsPanel';
import { actionFor, type Action } from './shortcuts';
import { TabBar } from './TabBar';
import { TerminalPane } from './TerminalPane';
import { ConnectionBanner, SignIn } from './SignIn';
import { ConsoleMessageBar, EndDialog } from './ConsoleMessage';

type Overlay = '' | 'settings' | 'help';

export function ConsoleApp({ store, signOut }: { store: ConsoleStore; signOut(): void }) {
  useObservable(store);
  const [searching, setSearching] = useState(false);
  const [overlay, setOverlay] = useState<Overlay>('');
  const [renaming, setRenaming] = useState('');

  useEffect(() => {
    const run = (a: Action) => {
      const t = store.activeTab;
      switch (a) {
        case 'newTab': {
          const m = t?.machine ?? store.machines.find((x) => x.state === SessionState.CONNECTED)?.name;
          if (m) store.openTerminal(m);
          return;
        }
        case 'closeTab':
          if (t) store.closeTab(t.key);
          return;
        case 'nextTab':
          return store.cycle(1);
        case 'prevTab':
          return store.cycle(-1);
        case 'moveLeft':
          if (t) store.move(t.key, -1);
          return;
        case 'moveRight':
          if (t) store.move(t.key, 1);
          return;
        case 'rename':
          if (t) setRenaming(t.key);
          return;
        case 'machines':
          return store.activate(MACHINES);
        case 'search':
          if (t) setSearching(true);
          return;
        case 'copy':
          void t?.copySelection();
          return;
        case 'paste':
          void t?.pasteFromClipboard();
          return;
        case 'fontUp':
        case 'fontDown': {
          const s = store.settings;
          const fontSize = Math.max(FONT_MIN, Math.min(FONT_MAX, s.fontSize + (a === 'fontUp' ? 1 : -1)));
          return store.updateSettings({ ...s, fontSize });
        }
        case 'settings':
          return setOverlay('settings');
        case 'help':
          return setOverlay('help');
        default: {
          const n = Number(a.slice(3));
          const target = store.tabs[n - 1];
          if (target) store.activate(target.key);
        }
      }
    };
    // Capture phase: seen before xterm's textarea, which never gets the key.
    const onKey = (e: KeyboardEvent) => {
      const a = actionFor(e);
      if (!a) return;
      e.preventDefault();
      e.stopPropagation();
      run(a);
    };
    window.addEventListener('keydown', onKey, true);
    return () => window.removeEventListener('keydown', onKey, true);
  }, [store]);

  useEffect(() => setSearching(false), [store.active]);
  useEffect(() => {
    if (store.active === MACHINES) document.title = 'CMDOP console';
  }, [store.active]);

  if (store.conn.status === 'refused') return <SignIn message={store.conn.refusal} />;
  const active = store.activeTab;
  return (
    <div className="app">
      <header className="header">
        <span className="brand">CMDOP</span>
        <ConnectionBanner store={store} />
        <span className="spacer" />
        {store.identity && (
          <span className="who dim" data-testid="identity">
            {store.identity.user}
          </span>
        )}
        <button type="button" onClick={() => setOverlay('help')} title="Keyboard shortcuts (Alt+Shift+/)">
          Keys
        </button>
        <button type="button" data-testid="settings-button" onClick={() => setOverlay('settings')} title="Settings (Alt+Shift+,)">
          Settings
        </button>
        <button type="button" data-testid="sign-out" onClick={signOut}>
          Sign out
        </button>
      </header>
      <TabBar store={store} renaming={renaming} setRenaming={setRenaming} />
      <ConsoleMessageBar store={store} />
      {searching && active && <SearchBar tab={active} close={() => setSearching(false)} />}
      <main className="main">
        <MachinesView store={store} visible={store.active === MACHINES} />
        {store.tabs.map((t) => (
          <TerminalPane key={t.key} tab={t} store={store} visible={store.active === t.key} />
        ))}
      </main>
      {active && <DocumentTitle key={active.key} tab={active} />}
      <EndDialog store={store} />
      {overlay === 'settings' && <SettingsPanel store={store} close={() => setOverlay('')} />}
      {overlay === 'help' && <HelpPanel close={() => setOverlay('')} />}
    </div>
  );
}

/** The window's title follows the active tab's (the shell's OSC title included), as a terminal emulator's does. */
function DocumentTitle({ tab }: { tab: Tab }) {
  useObservable(tab);
  const title = tab.title;
  useEffect(() => {
    document.title = title;
  }, [title]);
  return null;
}
