// Find in the active terminal's scrollback (the search addon). It searches
// as the user types, highlights every match and counts them ("3 of 17",
// from the addon's onDidChangeResults, which fires only with decorations
// on); case, regex and whole-word toggles; Enter next, Shift+Enter
// previous, Esc or × closes and clears the highlights.
import { useEffect, useRef, useState } from 'react';
import type { ISearchOptions } from '@xterm/addon-search';
import type { Tab } from '../state/tab';
import type { ThemeName } from '../term/themes';
import { SEARCH_LIMIT } from '../term/xterm';

type Toggles = Pick<ISearchOptions, 'caseSensitive' | 'regex' | 'wholeWord'>;

// The addon wants #RRGGBB backgrounds; one pair per theme so matches stand out on either.
const DECORATIONS: Record<ThemeName, NonNullable<ISearchOptions['decorations']>> = {
  dark: { matchBackground: '#5c4813', activeMatchBackground: '#b5651d', matchOverviewRuler: '#c9a227', activeMatchColorOverviewRuler: '#ff9632' },
  light: { matchBackground: '#fde68a', activeMatchBackground: '#f59e0b', matchOverviewRuler: '#d4a200', activeMatchColorOverviewRuler: '#e07000' },
};

const TOGGLES: { key: keyof Toggles; label: string; title: string; testId: string }[] = [
  { key: 'caseSensitive', label: 'Aa', title: 'Match case', testId: 'search-case' },
  { key: 'wholeWord', label: 'ab', title: 'Whole word', testId: 'search-word' },
  { key: 'regex', label: '.*', title: 'Regular expression', testId: 'search-regex' },
];

function regexError(q: string): string {
  try {
    new RegExp(q);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

export function SearchBar({ tab, close }: { tab: Tab; close(): void }) {
  const { search, term } = tab.xterm;
  const [q, setQ] = useState('');
  const [toggles, setToggles] = useState<Toggles>({ caseSensitive: false, wholeWord: false, regex: false });
  const [result, setResult] = useState<{ index: number; count: number } | undefined>(undefined);
  const input = useRef<HTMLInputElement>(null);
  const invalid = toggles.regex && q ? regexError(q) : '';

  useEffect(() => {
    const sub = search.onDidChangeResults((r) => setResult({ index: r.resultIndex, count: r.resultCount }));
    return () => sub.dispose();
  }, [search]);

  const options = (incremental: boolean): ISearchOptions => ({ ...toggles, incremental, decorations: DECORATIONS[tab.theme] });
  const find = (back: boolean) => {
    if (!q || invalid) return;
    if (back) search.findPrevious(q, options(false));
    else search.findNext(q, options(false));
  };

  // As the user types (or flips a toggle): incremental keeps the match in place while it still matches.
  const searched = useRef<Toggles | undefined>(undefined);
  useEffect(() => {
    if (!q || invalid) {
      search.clearDecorations();
      term.clearSelection();
      setResult(undefined);
      searched.current = undefined;
      return;
    }
    // The addon (0.16) records the new options before comparing them with the
    // last, so a toggle alone would not redo the highlights and the count:
    // forget the last search when the toggles change.
    if (searched.current && searched.current !== toggles) search.clearDecorations();
    searched.current = toggles;
    search.findNext(q, { ...toggles, incremental: true, decorations: DECORATIONS[tab.theme] });
  }, [q, toggles, invalid, search, term, tab.theme]);

  const dismiss = () => {
    search.clearDecorations();
    term.clearSelection();
    close();
    term.focus();
  };

  let status: string;
  if (invalid) status = 'invalid regular expression';
  else if (!q || !result) status = 'Enter: next · Shift+Enter: previous · Esc: close';
  else if (result.count === 0) status = 'no matches';
  else if (result.count >= SEARCH_LIMIT && result.index < 0) status = `${SEARCH_LIMIT}+ matches`;
  else status = `${result.index + 1} of ${result.count}`;

  return (
    <div className="searchbar" data-testid="search-bar" role="search">
      <input
        ref={input}
        autoFocus
        data-testid="search-input"
        placeholder={`Search ${tab.title}`}
        value={q}
        aria-invalid={invalid !== ''}
        title={invalid || undefined}
        onChange={(e) => setQ(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') find(e.shiftKey);
          else if (e.key === 'Escape') dismiss();
        }}
        aria-label="Search text"
      />
      {TOGGLES.map((t) => (
        <button
          key={t.key}
          type="button"
          className="toggle"
          data-testid={t.testId}
          aria-pressed={!!toggles[t.key]}
          title={t.title}
          aria-label={t.title}
          onClick={() => {
            setToggles((x) => ({ ...x, [t.key]: !x[t.key] }));
            input.current?.focus();
          }}
        >
          {t.label}
        </button>
      ))}
      <span className={invalid ? 'error' : 'dim'} data-testid="search-result" aria-live="polite">
        {status}
      </span>
      <span className="spacer" />
      <button type="button" className="search-close" data-testid="search-close" aria-label="Close search" title="Close (Esc)" onClick={dismiss}>
        ×
      </button>
    </div>
  );
}
