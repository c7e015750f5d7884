// One tab's screen: the xterm container (mounted once, hidden when another
// tab is active so its screen and scrollback stay), the watch-only banner,
// the grace-period and final banners, and notices for reconnects, skipped
// output and refused input.
import { useEffect, useRef } from 'react';
import { SessionState } from '../../../../protocol/generated/cmdop/v1/cmdop';
import type { Tab } from '../state/tab';
import { Countdown } from './Countdown';
import { useObservable } from './hooks';
import { panelId, tabId } from './tabIds';

const NOTICE_TESTID = { gap: 'gap-notice', reconnected: 'reconnect-notice', input: 'input-notice', error: 'error-notice' } as const;

export function TerminalPane({ tab, visible }: { tab: Tab; visible: boolean }) {
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
      {grace && (
        <div className="banner grace-banner" data-testid="grace-banner" role="status">
          <strong>{tab.machine} is unreachable</strong> (GRACE_PERIOD): its processes keep running and the screen continues when it
          returns. Given up in <Countdown deadlineMs={tab.deadlineMs} testId="grace-countdown" />.
        </div>
      )}
      {(disconnected || tab.over) && (
        <div className="banner final-banner" data-testid="final-banner" role="alert">
          {disconnected ? (
            <>
              <strong>DISCONNECTED</strong>: the session on {tab.machine} has ended{tab.stateReason ? ` (${tab.stateReason})` : ''}. This is final;
              the screen is kept for reading.
            </>
          ) : tab.exit ? (
            <>
              The terminal has exited ({tab.exit.signal || `code ${tab.exit.exitCode}`}){tab.exit.error ? `: ${tab.exit.error}` : ''}.
            </>
          ) : (
            <>This view has ended: {tab.endedWhy}</>
          )}
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
