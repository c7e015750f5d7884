import { useState } from 'react';
import type { Tab } from '../state/tab';

/** Find in the active terminal's scrollback (search addon): Enter next, Shift+Enter previous, Esc closes. */
export function SearchBar({ tab, close }: { tab: Tab; close(): void }) {
  const [q, setQ] = useState('');
  const [found, setFound] = useState<boolean | undefined>(undefined);
  const find = (back: boolean) => {
    if (!q) return;
    const opts = { caseSensitive: false, incremental: false };
    setFound(back ? tab.xterm.search.findPrevious(q, opts) : tab.xterm.search.findNext(q, opts));
  };
  return (
    <div className="searchbar" data-testid="search-bar" role="search">
      <input
        autoFocus
        data-testid="search-input"
        placeholder={`Search ${tab.title}`}
        value={q}
        onChange={(e) => {
          setQ(e.target.value);
          setFound(undefined);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter') find(e.shiftKey);
          else if (e.key === 'Escape') {
            tab.xterm.search.clearDecorations();
            tab.xterm.term.clearSelection();
            close();
            tab.xterm.term.focus();
          }
        }}
        aria-label="Search text"
      />
      <span className="dim" data-testid="search-result">
        {found === undefined ? 'Enter: next · Shift+Enter: previous · Esc: close' : found ? 'found' : 'not found'}
      </span>
    </div>
  );
}
