// The tab strip: the machines view first, then terminal tabs. Tabs reorder
// by drag and drop (or Alt+Shift+PageUp/PageDown), rename on double-click
// (or Alt+Shift+R, or F2 on the tab), close with × (or Delete on the tab),
// which detaches: the terminal keeps running; each shows its session state
// (offline while the page itself is, "not responding" while its machine's
// heartbeat is late) and, for an operator's live tab, how many are watching.
//
// The keyboard follows the WAI-ARIA tabs pattern: the strip is one tab stop
// (the selected tab has tabIndex 0, the others -1), Left/Right/Home/End move
// to another tab and select it (showing a tab costs nothing, so selection
// follows focus), Enter goes into the tab's terminal.
import { useRef, useState, type DragEvent, type KeyboardEvent, type ReactNode } from 'react';
import { SessionState } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { MACHINES, stateName, type ConsoleStore } from '../state/store';
import type { Tab } from '../state/tab';
import { Countdown } from './Countdown';
import { useObservable } from './hooks';
import { panelId, tabId } from './tabIds';

const DRAG_TYPE = 'application/x-cmdop-tab';

export function TabBar({ store, renaming, setRenaming }: { store: ConsoleStore; renaming: string; setRenaming(key: string): void }) {
  const [dropAt, setDropAt] = useState(-1);
  const strip = useRef<HTMLElement>(null);
  const onKeyDown = (e: KeyboardEvent<HTMLElement>) => {
    const el = e.target as HTMLElement;
    // Keys typed into the rename box are its own.
    if (el.getAttribute('role') !== 'tab' || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const keys = [MACHINES, ...store.tabs.map((t) => t.key)];
    const key = el.dataset.tabKey ?? '';
    const i = keys.indexOf(key);
    const tab = store.tab(key);
    if (i < 0) return;
    const moves: Record<string, number> = { ArrowRight: (i + 1) % keys.length, ArrowLeft: (i - 1 + keys.length) % keys.length, Home: 0, End: keys.length - 1 };
    const to = moves[e.key];
    if (to !== undefined) {
      store.activate(keys[to]);
      focusTab(keys[to]);
    } else if (e.key === 'Enter' && tab) tab.focus();
    else if (e.key === 'F2' && tab) setRenaming(tab.key);
    else if (e.key === 'Delete' && tab) {
      store.closeTab(tab.key);
      // The focus stays in the strip, on the tab now selected, once it is drawn.
      requestAnimationFrame(() => focusTab(store.active));
    } else return;
    e.preventDefault();
  };
  const focusTab = (key: string) => strip.current?.querySelector<HTMLElement>(`[role=tab][data-tab-key="${key}"]`)?.focus();
  return (
    <nav className="tabbar" role="tablist" aria-label="Terminals" data-testid="tab-bar" ref={strip} onKeyDown={onKeyDown}>
      <button
        type="button"
        role="tab"
        id={tabId(MACHINES)}
        aria-controls={panelId(MACHINES)}
        className="tab machines-tab"
        data-testid="machines-tab"
        data-tab-key={MACHINES}
        tabIndex={store.active === MACHINES ? 0 : -1}
        aria-selected={store.active === MACHINES}
        onClick={() => store.activate(MACHINES)}
      >
        Machines
      </button>
      {store.tabs.map((t, i) => (
        <TabButton
          key={t.key}
          tab={t}
          store={store}
          index={i}
          dropTarget={dropAt === i}
          setDropAt={setDropAt}
          renaming={renaming === t.key}
          setRenaming={setRenaming}
        />
      ))}
    </nav>
  );
}

function TabButton(p: {
  tab: Tab;
  store: ConsoleStore;
  index: number;
  dropTarget: boolean;
  setDropAt(i: number): void;
  renaming: boolean;
  setRenaming(key: string): void;
}) {
  const { tab, store } = p;
  useObservable(tab);
  const active = store.active === tab.key;
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const key = e.dataTransfer.getData(DRAG_TYPE);
    p.setDropAt(-1);
    if (key) store.moveTo(key, p.index);
  };
  return (
    <div
      role="tab"
      id={tabId(tab.key)}
      aria-controls={panelId(tab.key)}
      tabIndex={active ? 0 : -1}
      aria-selected={active}
      className={`tab${active ? ' active' : ''}${tab.operator ? '' : ' observer'}${p.dropTarget ? ' drop-target' : ''}`}
      data-testid="tab"
      data-tab-key={tab.key}
      data-terminal-id={tab.terminalId}
      data-mode={tab.operator ? 'operator' : 'observer'}
      draggable={!p.renaming}
      onDragStart={(e) => {
        e.dataTransfer.setData(DRAG_TYPE, tab.key);
        e.dataTransfer.effectAllowed = 'move';
      }}
      onDragOver={(e) => {
        if (!e.dataTransfer.types.includes(DRAG_TYPE)) return;
        e.preventDefault();
        p.setDropAt(p.index);
      }}
      onDragLeave={() => p.setDropAt(-1)}
      onDrop={onDrop}
      onClick={() => {
        store.activate(tab.key);
        // A click on a tab is to type there; the keyboard's arrows stay in the strip (Tab.setVisible).
        tab.focus();
      }}
      onDoubleClick={() => p.setRenaming(tab.key)}
      title={`${tab.machine} ${tab.terminalId}${tab.operator ? '' : ' (watch-only)'}`}
    >
      {!tab.operator && (
        <span className="eye" aria-label="watch-only">
          watching
        </span>
      )}
      {p.renaming ? (
        <RenameInput tab={tab} done={() => p.setRenaming('')} />
      ) : (
        <span className="tab-title" data-testid="tab-title">
          {tab.title}
        </span>
      )}
      <SessionBadge tab={tab} offline={store.conn.status !== 'open'} />
      {tab.operator && !tab.over && (
        <span className="viewers" data-testid="viewer-count" data-count={tab.viewers} title={`${tab.viewers} watching`}>
          {tab.viewers} watching
        </span>
      )}
      <button
        type="button"
        className="tab-close"
        data-testid="tab-close"
        // Not a tab stop of its own: the strip is one (Delete closes the focused tab).
        tabIndex={-1}
        aria-label={tab.operator ? 'Close the tab (the terminal keeps running)' : 'Stop watching'}
        title={tab.operator ? 'Close the tab; the terminal keeps running and can be attached again from Machines' : 'Stop watching'}
        onClick={(e) => {
          e.stopPropagation();
          store.closeTab(tab.key);
        }}
      >
        ×
      </button>
    </div>
  );
}

/**
 * GRACE_PERIOD with its countdown, DISCONNECTED as final, an exit code; a
 * dot when all is well. A live tab's dot is never green while it cannot be
 * true: not while the page is offline, nor while the machine's heartbeat is
 * late. A tab that is over shows no countdown.
 */
export function SessionBadge({ tab, offline = false }: { tab: Tab; offline?: boolean }) {
  let name = tab.exit ? 'EXITED' : tab.endedWhy && tab.state !== SessionState.DISCONNECTED ? 'ENDED' : stateName(tab.state);
  let title = tab.stateReason || tab.endedWhy || name;
  let text: ReactNode = name;
  if (tab.exit) text = `exited ${tab.exit.signal || tab.exit.exitCode}`;
  else if (tab.over) text = name;
  else if (offline) {
    name = 'OFFLINE';
    text = 'offline';
    title = 'this page lost its connection and is reconnecting';
  } else if (tab.state === SessionState.GRACE_PERIOD || tab.state === SessionState.BACKGROUND) {
    text = (
      <>
        {name} <Countdown deadlineMs={tab.deadlineMs} testId="tab-countdown" />
      </>
    );
  } else if (tab.state === SessionState.CONNECTED && tab.machineLate) {
    name = 'NOT_RESPONDING';
    text = 'not responding';
    title = `${tab.machine} has missed its heartbeat`;
  } else if (tab.state === SessionState.CONNECTED) text = '';
  return (
    <span className={`state state-${name.toLowerCase()}`} data-testid="session-state" data-state={name} title={title}>
      {text}
    </span>
  );
}

function RenameInput({ tab, done }: { tab: Tab; done(): void }) {
  const [value, setValue] = useState(tab.title);
  return (
    <input
      className="rename"
      data-testid="tab-rename"
      autoFocus
      value={value}
      onChange={(e) => setValue(e.target.value)}
      onClick={(e) => e.stopPropagation()}
      onKeyDown={(e) => {
        e.stopPropagation();
        // Enter or Escape: the keyboard goes back to the terminal (the input is gone, and with it the focus).
        if (e.key === 'Enter') {
          tab.rename(value);
          done();
          tab.focus();
        } else if (e.key === 'Escape') {
          done();
          tab.focus();
        }
      }}
      // Focus that left for elsewhere (a click) stays there.
      onBlur={() => {
        tab.rename(value);
        done();
      }}
      aria-label="Tab name"
    />
  );
}
