// A share link: straight into the one terminal it may watch. The share
// token's whoAmI names the machine and terminal; it can do nothing else
// (no machine list, no input), so this view offers nothing else.
import { useEffect, useState } from 'react';
import { AttachMode, TokenKind } from '../../../../protocol/generated/cmdop/v1/cmdop';
import type { ConsoleStore } from '../state/store';
import { useObservable } from './hooks';
import { ConnectionBanner } from './SignIn';
import { TerminalPane } from './TerminalPane';
import { SessionBadge } from './TabBar';

export function ShareApp({ store }: { store: ConsoleStore }) {
  useObservable(store);
  const [error, setError] = useState('');
  useEffect(() => {
    let cancelled = false;
    store.conn
      .call('whoAmI', {})
      .then((id) => {
        if (cancelled) return;
        if (id.kind !== TokenKind.SHARE || !id.machine || !id.terminalId) {
          setError('this link does not carry a share token');
          return;
        }
        if (store.tabs.length === 0) store.attach(id.machine, id.terminalId, AttachMode.OBSERVER);
      })
      .catch((e: Error) => !cancelled && setError(e.message));
    return () => {
      cancelled = true;
    };
  }, [store]);

  const tab = store.tabs[0];
  const refused = store.conn.status === 'refused';
  return (
    <div className="app share">
      <header className="header">
        <span className="brand">CMDOP</span>
        <span>shared terminal{tab ? `: ${tab.machine} ${tab.terminalId.slice(0, 8)}` : ''}</span>
        {tab && <ShareTabState tab={tab} />}
        <span className="spacer" />
        <ConnectionBanner store={store} />
      </header>
      {(error || refused) && (
        <p className="error" data-testid="share-error">
          {refused ? `This share link no longer works: ${store.conn.refusal}` : error}
        </p>
      )}
      <main className="main">{tab && <TerminalPane tab={tab} visible />}</main>
    </div>
  );
}

function ShareTabState({ tab }: { tab: NonNullable<ConsoleStore['tabs'][number]> }) {
  useObservable(tab);
  return <SessionBadge tab={tab} />;
}
