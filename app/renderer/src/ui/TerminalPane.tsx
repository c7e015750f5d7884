// One tab's screen: the xterm container (mounted once, hidden when another
// tab is active so its screen and scrollback stay), the watch-only banner,
// the grace-period and final banners (each saying what can be done next),
// input waiting to be sent, notices for reconnects, skipped output and
// refused input, and "End terminal".
import { useEffect, useRef } from 'react';
import { SessionState } from '../../../../protocol/generated/cmdop/v1/cmdop';
import type { NextStep } from '../state/explain';
import { MACHINES, canOpen, type ConsoleStore } from '../state/store';
import type { Tab } from '../state/tab';
import { Countdown } from './Countdown';
import { useObservable } from './hooks';
import { panelId, tabId } from './tabIds';

const NOTICE_TESTID = { gap: 'gap-notice', reconnected: 'reconnect-notice', input: 'input-notice', error: 'error-notice' } as const;

/** `store`: the console's (absent in a watch window, which has no other tabs to offer). */
export function TerminalPane({ tab, visible, store }: { tab: Tab; visible: boolean; store?: ConsoleStore }) {
  useObservable(tab);
  const ref = useRef<HTMLDivElement>(null);

  // Visibility first, so the first fit (and the size a new shell opens with) sees the real container.
  useEffect(() => tab.setVisible(visible), [tab, visible]);

  useEffect(() => {
    if (ref.current) tab.mount(ref.current);
  }, [tab]);

  // The window (or the layout) changed size: refit, which resizes the PTY.
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    let frame = 0;
    const ro = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => tab.fitNow());
    });
    ro.observe(el);
    return () => {
      cancelAnimationFrame(frame);
      ro.disconnect();
    };
  }, [tab]);

  const grace = tab.state === SessionState.GRACE_PERIOD && !tab.over;
  const disconnected = tab.state === SessionState.DISCONNECTED;
  const offline = store && store.conn.status !== 'open' && !tab.over;
  return (
    <section
      className="pane"
      role="tabpanel"
      id={panelId(tab.key)}
      aria-labelledby={tabId(tab.key)}
      data-testid="terminal-pane"
      data-tab-key={tab.key}
      hidden={!visible}
    >
      {!tab.operator && (
        <div className="banner observer-banner" data-testid="observer-banner" role="status">
          <strong>Watch-only.</strong> You are observing {tab.machine} {tab.terminalId.slice(0, 8)}; nothing you type is sent.
        </div>
      )}
      {tab.operator && !tab.over && store && tab.terminalId && (
        <div className="pane-bar">
          <span className="dim">
            {tab.machine} {tab.terminalId.slice(0, 8)}: closing the tab leaves it running
          </span>
          <button type="button" className="danger" data-testid="end-terminal" onClick={() => void store.endTerminal(tab.machine, tab.terminalId, tab.key)}>
            End terminal
          </button>
        </div>
      )}
      {offline && (
        <div className="banner grace-banner" data-testid="offline-banner" role="status">
          <strong>This page lost its connection</strong> and is reconnecting; {tab.machine} is not affected and the screen continues when the page is back.
        </div>
      )}
      {grace && (
        <div className="banner grace-banner" data-testid="grace-banner" role="status">
          <strong>{tab.machine} is not answering</strong>
          {tab.stateReason ? ` (${tab.stateReason})` : ''}: its processes keep running and the screen continues when it returns. Given up in{' '}
          <Countdown deadlineMs={tab.deadlineMs} testId="grace-countdown" />.
        </div>
      )}
      {tab.pendingInput > 0 && (
        <div className="banner pending-banner" data-testid="pending-input" data-bytes={tab.pendingInput} role="status">
          {tab.pendingInput} bytes typed are waiting: they are sent, in order, once {grace ? `${tab.machine} answers again` : 'the page is reconnected'}.
        </div>
      )}
      {(disconnected || tab.over) && (
        <div className="banner final-banner" data-testid="final-banner" role="alert">
          {disconnected ? (
            <>
              <strong>{tab.machine} disconnected</strong>: its session has ended{tab.stateReason ? ` (${tab.stateReason})` : ''}, and this terminal with
              it. The screen is kept for reading.
            </>
          ) : tab.exit ? (
            <>
              The terminal has exited ({tab.exit.signal || `code ${tab.exit.exitCode}`}){tab.exit.error ? `: ${tab.exit.error}` : ''}.
            </>
          ) : (
            <>{tab.endedExplained?.text ?? `This view has ended: ${tab.endedWhy}`}</>
          )}
          {store && <FinalActions tab={tab} store={store} next={disconnected || tab.exit ? ['new-terminal', 'close'] : (tab.endedExplained?.next ?? ['close'])} />}
        </div>
      )}
      {tab.notices.length > 0 && (
        <ul className="notices">
          {tab.notices.map((n) => (
            <li key={n.id} className={`notice notice-${n.kind}`} data-testid={NOTICE_TESTID[n.kind]} role="status">
              {n.text}
              {n.count > 1 && <span className="count"> ×{n.count}</span>}
              <button type="button" aria-label="Dismiss" onClick={() => tab.dismissNotice(n.id)}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <div
        className={`term${tab.operator ? '' : ' watch-only'}`}
        data-testid="terminal"
        data-terminal-id={tab.terminalId}
        data-mode={tab.operator ? 'operator' : 'observer'}
        data-renderer={tab.xterm.renderer()}
        ref={ref}
      />
    </section>
  );
}

/** What to do once a tab is over: a new shell on the same machine (when it can take one), back to the machines, or close the tab. */
function FinalActions({ tab, store, next }: { tab: Tab; store: ConsoleStore; next: NextStep[] }) {
  useObservable(store); // the machine's state decides whether a new terminal can be opened
  const m = store.machine(tab.machine);
  return (
    <span className="final-actions">
      {next.map((step) => {
        switch (step) {
          case 'new-terminal':
            return (
              tab.operator && (
                <button
                  key={step}
                  type="button"
                  data-testid="final-new-terminal"
                  disabled={!canOpen(m?.state)}
                  title={canOpen(m?.state) ? '' : `${tab.machine} is not connected now`}
                  onClick={() => store.openTerminal(tab.machine)}
                >
                  New terminal on {tab.machine}
                </button>
              )
            );
          case 'retry':
            return (
              <button key={step} type="button" data-testid="final-retry" onClick={() => store.retry(tab.key)}>
                Try again
              </button>
            );
          case 'machines':
            return (
              <button key={step} type="button" data-testid="final-machines" onClick={() => store.activate(MACHINES)}>
                Machines
              </button>
            );
          case 'sign-in':
            return (
              <button key={step} type="button" data-testid="final-sign-in" onClick={() => location.replace('/')}>
                Sign in again
              </button>
            );
          case 'close':
            return (
              <button key={step} type="button" data-testid="final-close" onClick={() => store.closeTab(tab.key)}>
                Close
              </button>
            );
        }
      })}
    </span>
  );
}
