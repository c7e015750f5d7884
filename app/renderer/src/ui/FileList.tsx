// A file panel's listing: `..` first, then the entries (directories first),
// each with its size, time and actions.
//
// The keyboard: the rows are one tab stop with a roving focus (the row last
// focused has tabIndex 0, the others -1; the buttons in rows are not tab
// stops). Up/Down/Home/End move between rows; Enter opens (enters a
// directory or a symlink, goes up from `..`, downloads a file); F2 renames in
// place; Delete asks to delete, its answer focused. Wherever a rename or a
// delete ends (done, refused, cancelled with Escape), the focus goes back to
// the row, so the keyboard never lands on the page body.
//
// The columns have fixed widths (table-layout: fixed with a colgroup), so
// the rename box, an error beside a row or a long name never moves them.
import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { FileType, type FileEntry } from '../../../../protocol/generated/cmdop/v1/cmdop';
import type { FilesModel } from '../state/files';
import { formatBytes } from './formatBytes';

const TYPE_NAME: Record<number, string> = {
  [FileType.FILE_TYPE_FILE]: 'file',
  [FileType.FILE_TYPE_DIRECTORY]: 'directory',
  [FileType.FILE_TYPE_SYMLINK]: 'symlink',
};

/** The parent row's name in the roving focus (no entry can be called `..`). */
const PARENT = '..';

/** A symlink may point at a directory: it is entered (an error says if it is not one). */
const enterable = (e: FileEntry) => e.type === FileType.FILE_TYPE_DIRECTORY || e.type === FileType.FILE_TYPE_SYMLINK;
const downloadable = (e: FileEntry) => e.type === FileType.FILE_TYPE_FILE;

export function FileList({ model }: { model: FilesModel }) {
  const [confirming, setConfirming] = useState('');
  /** The entry being renamed in place ('' when none). */
  const [renaming, setRenaming] = useState('');
  /** The row that is the list's tab stop. */
  const [current, setCurrent] = useState(PARENT);
  const body = useRef<HTMLTableSectionElement>(null);
  /** A row to focus as soon as it is on screen: a renamed entry's new row comes with the next listing. */
  const pending = useRef<{ name: string; untilMs: number } | undefined>(undefined);

  const rowEl = (name: string) => body.current?.querySelector<HTMLElement>(`tr[data-row="${CSS.escape(name)}"]`) ?? undefined;
  const focusPending = () => {
    const p = pending.current;
    if (!p) return;
    const el = rowEl(p.name);
    if (el) el.focus();
    if (el || Date.now() > p.untilMs) pending.current = undefined;
  };
  const focusRow = (name: string) => {
    setCurrent(name);
    pending.current = { name, untilMs: Date.now() + 5000 };
    focusPending();
  };
  useEffect(focusPending);

  useEffect(() => {
    setConfirming('');
    setRenaming('');
  }, [model.path]);

  const names = [PARENT, ...model.entries.map((e) => e.name)];
  const stop = names.includes(current) ? current : PARENT;

  const onKeyDown = (k: KeyboardEvent<HTMLTableSectionElement>) => {
    const tr = k.target as HTMLElement;
    // Keys in the rename box or on a button are theirs.
    if (tr.tagName !== 'TR' || k.altKey || k.ctrlKey || k.metaKey) return;
    const i = names.indexOf(tr.dataset.row ?? '');
    if (i < 0) return;
    const moves: Record<string, number> = { ArrowDown: Math.min(i + 1, names.length - 1), ArrowUp: Math.max(i - 1, 0), Home: 0, End: names.length - 1 };
    if (k.key in moves) {
      k.preventDefault();
      focusRow(names[moves[k.key]]);
      return;
    }
    if (k.key !== 'Enter') return;
    k.preventDefault();
    if (i === 0) {
      // Up: the directory just left is focused in its parent's listing.
      focusRow(model.path.split('/').filter(Boolean).pop() ?? PARENT);
      void model.up();
      return;
    }
    const e = model.entries[i - 1];
    if (enterable(e)) {
      focusRow(PARENT);
      void model.enter(e.name);
    } else if (downloadable(e)) void model.download(e);
  };

  return (
    <table className="files-list">
      <colgroup>
        <col />
        <col className="col-size" />
        <col className="col-time" />
        <col className="col-actions" />
      </colgroup>
      <thead>
        <tr>
          <th>Name</th>
          <th className="num">Size</th>
          <th>Modified</th>
          <th />
        </tr>
      </thead>
      <tbody ref={body} onKeyDown={onKeyDown}>
        <tr data-testid="file-parent" data-row={PARENT} tabIndex={stop === PARENT ? 0 : -1} onFocus={() => setCurrent(PARENT)}>
          <td colSpan={4}>
            <button type="button" className="link" tabIndex={-1} onClick={() => void model.up()}>
              ..
            </button>
          </td>
        </tr>
        {model.entries.map((e, i) => (
          <EntryRow
            key={e.name}
            e={e}
            model={model}
            tabStop={stop === e.name}
            confirming={confirming === e.name}
            setConfirming={setConfirming}
            renaming={renaming === e.name}
            setRenaming={setRenaming}
            setCurrent={setCurrent}
            focusRow={focusRow}
            // Where the focus goes when this row is deleted.
            neighbour={names[i + 2] ?? names[i]}
          />
        ))}
      </tbody>
    </table>
  );
}

interface EntryRowProps {
  e: FileEntry;
  model: FilesModel;
  tabStop: boolean;
  confirming: boolean;
  setConfirming(name: string): void;
  renaming: boolean;
  setRenaming(name: string): void;
  setCurrent(name: string): void;
  focusRow(name: string): void;
  neighbour: string;
}

function EntryRow(p: EntryRowProps) {
  const { e, model } = p;
  const type = TYPE_NAME[e.type] ?? 'other';
  const dir = e.type === FileType.FILE_TYPE_DIRECTORY;
  // F2 on the row or a button of it, as in file managers (not inside the rename box itself); Delete on the row.
  const onKeyDown = (k: KeyboardEvent) => {
    if (!model.canWrite || k.altKey || k.ctrlKey || k.metaKey || (k.target as HTMLElement).tagName === 'INPUT') return;
    if (k.key === 'F2') {
      p.setConfirming('');
      p.setRenaming(e.name);
    } else if (k.key === 'Delete' && k.target === k.currentTarget) p.setConfirming(e.name);
    else return;
    k.preventDefault();
  };
  const keep = () => {
    p.setConfirming('');
    p.focusRow(e.name);
  };
  return (
    <tr
      data-testid="file-row"
      data-name={e.name}
      data-row={e.name}
      data-type={type}
      tabIndex={p.tabStop ? 0 : -1}
      onKeyDown={onKeyDown}
      onFocus={() => p.setCurrent(e.name)}
    >
      <td className="file-name">
        {p.renaming ? (
          <RenameForm
            e={e}
            model={model}
            done={(to) => {
              p.setRenaming('');
              p.focusRow(to ?? e.name);
            }}
          />
        ) : enterable(e) ? (
          <button type="button" className="link" data-testid="file-open" tabIndex={-1} onClick={() => void model.enter(e.name)}>
            {e.name}
            {dir ? '/' : ''}
          </button>
        ) : (
          <span>{e.name}</span>
        )}
        {e.linkTarget && !p.renaming && <span className="dim"> → {e.linkTarget}</span>}
      </td>
      <td className="num">{dir ? '' : formatBytes(e.size)}</td>
      <td className="dim">{e.mtimeMs ? new Date(e.mtimeMs).toLocaleString() : ''}</td>
      <td className="file-actions">
        {!dir && type !== 'other' && (
          <button type="button" data-testid="file-download" tabIndex={-1} onClick={() => void model.download(e)}>
            Download
          </button>
        )}
        {model.canWrite &&
          (p.confirming ? (
            // The question has the focus (its answers are tab stops while it is asked); Escape keeps the entry.
            <span
              onKeyDown={(k) => {
                if (k.key !== 'Escape') return;
                k.preventDefault();
                keep();
              }}
            >
              <span className="error">Delete {dir ? 'this folder and everything in it' : 'it'}?</span>{' '}
              <button
                type="button"
                data-testid="file-delete-confirm"
                autoFocus
                onClick={() =>
                  void model.remove(e).then((ok) => {
                    p.setConfirming('');
                    p.focusRow(ok ? p.neighbour : e.name);
                  })
                }
              >
                Delete
              </button>{' '}
              <button type="button" data-testid="file-delete-keep" onClick={keep}>
                Keep
              </button>
            </span>
          ) : (
            <>
              <button type="button" data-testid="file-rename" title="Rename (F2)" tabIndex={-1} onClick={() => p.setRenaming(e.name)}>
                Rename
              </button>{' '}
              <button type="button" data-testid="file-delete" title="Delete (Delete)" tabIndex={-1} onClick={() => p.setConfirming(e.name)}>
                Delete
              </button>
            </>
          ))}
      </td>
    </tr>
  );
}

/**
 * The new name, edited where the old one was: Enter renames, Escape gives
 * up. On failure the box stays open with what was typed and says why beside
 * it (the name is taken, no permission), so it can be corrected.
 */
function RenameForm({ e, model, done }: { e: FileEntry; model: FilesModel; done(renamedTo?: string): void }) {
  const [name, setName] = useState(e.name);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    // Focused with the name less its extension selected, as file managers do: typing replaces the stem.
    const dot = e.name.lastIndexOf('.');
    input.current?.focus();
    input.current?.setSelectionRange(0, dot > 0 ? dot : e.name.length);
  }, [e.name]);
  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    if (busy) return;
    setBusy(true);
    const to = name.trim();
    const why = await model.rename(e, to);
    setBusy(false);
    setError(why);
    if (!why) done(to);
    else input.current?.focus();
  };
  const errorId = `rename-error-${e.name}`;
  return (
    <form className="file-rename" onSubmit={submit}>
      <span className="file-rename-line">
        <input
          data-testid="file-rename-input"
          aria-label={`New name for ${e.name}`}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errorId : undefined}
          value={name}
          spellCheck={false}
          ref={input}
          readOnly={busy}
          onChange={(c) => setName(c.target.value)}
          onKeyDown={(k) => {
            if (k.key === 'Escape') {
              k.preventDefault();
              done();
            }
          }}
        />
        <button type="submit" className="primary" data-testid="file-rename-ok" disabled={busy}>
          Rename
        </button>
        <button type="button" data-testid="file-rename-cancel" onClick={() => done()}>
          Cancel
        </button>
      </span>
      {error && (
        <span className="error file-rename-error" id={errorId} data-testid="file-rename-error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}
