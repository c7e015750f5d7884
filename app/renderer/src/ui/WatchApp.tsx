// One terminal, watch-only, filling the window: what a share link opens
// (the share token's whoAmI names the machine and terminal; it can do
// nothing else) and what the console's "Watch" opens in a window of its own.
// It offers nothing but the screen: no machine list, no tabs, no input.
import { useEffect, useState } from 'react';
import { AttachMode } from '../../../../protocol/generated/cmdop/v1/cmdop';
import type { ConsoleStore } from '../state/store';
import { useObservable } from './hooks';
import { ConnectionBanner } from './SignIn';
import { TerminalPane } from './TerminalPane';
import { SessionBadge } from './TabBar';

export interface WatchTarget {
  machine: string;
  terminalId: string;
}

export function WatchApp({ store, target, label }: { store: ConsoleStore; target: () => Promise<WatchTarget>; label: string }) {
  useObservable(store);
  const [error, setError] = useState('');
  useEffect(() => {
    let cancelled = false;
    target()
      .then((t) => {
        if (cancelled) return;
        if (store.tabs.length === 0) store.attach(t.machine, t.terminalId, AttachMode.OBSERVER);
        document.title = `${label}: ${t.machine} ${t.terminalId.slice(0, 8)} — CMDOP`;
      })
      .catch((e: Error) => !cancelled && setError(e.message));
    return () => {
      cancelled = true;
    };
  }, [store, target, label]);

  const tab = store.tabs[0];
  const refused = store.conn.status === 'refused';
  return (
    <div className="app share">
      <header className="header">
        <span className="brand">CMDOP</span>
        <span>
          {label}
          {tab ? `: ${tab.machine} ${tab.terminalId.slice(0, 8)}` : ''}
        </span>
        {tab && <WatchState tab={tab} />}
        <span className="spacer" />
        <ConnectionBanner store={store} />
      </header>
      {(error || refused) && (
        <p className="error" data-testid="share-error">
          {refused ? `This view no longer works: ${store.conn.refusal}` : error}
        </p>
      )}
      <main className="main">{tab && <TerminalPane tab={tab} visible />}</main>
    </div>
  );
}

function WatchState({ tab }: { tab: NonNullable<ConsoleStore['tabs'][number]> }) {
  useObservable(tab);
  return <SessionBadge tab={tab} />;
}
