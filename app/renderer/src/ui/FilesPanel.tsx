// A machine's files: a path bar, the listing (directories first; click one
// to enter it, `..` to go up), a download per file, and for an operator
// upload (drop files or folders on the panel, or pick them), new folder, rename (F2 on
// a row, or its button; edited in place) and delete (asked twice). An
// observer is shown none of the writing controls. Transfers show their
// progress under the bar.
import { useEffect, useRef, useState, type DragEvent, type FormEvent, type KeyboardEvent } from 'react';
import { FileType, type FileEntry } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { droppedItems, treesFromPicked } from '../net/localTree';
import type { FilesModel, Transfer } from '../state/files';
import { useObservable } from './hooks';

const TYPE_NAME: Record<number, string> = {
  [FileType.FILE_TYPE_FILE]: 'file',
  [FileType.FILE_TYPE_DIRECTORY]: 'directory',
  [FileType.FILE_TYPE_SYMLINK]: 'symlink',
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function FilesPanel({ model, close }: { model: FilesModel; close(): void }) {
  useObservable(model);
  const [pathInput, setPathInput] = useState(model.path);
  const [dragging, setDragging] = useState(false);
  const [naming, setNaming] = useState<string | undefined>(undefined);
  const [confirming, setConfirming] = useState('');
  /** The entry being renamed in place ('' when none). */
  const [renaming, setRenaming] = useState('');
  const [overwrite, setOverwrite] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const folderPicker = useRef<HTMLInputElement>(null);

  useEffect(() => model.start(), [model]);
  useEffect(() => {
    setPathInput(model.path);
    setConfirming('');
    setRenaming('');
  }, [model.path]);

  const write = model.canWrite;
  const go = (e: FormEvent) => {
    e.preventDefault();
    void model.open(pathInput);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (!write) return;
    const { files, folders } = droppedItems(e.dataTransfer);
    if (files.length) model.upload(files, overwrite);
    if (folders.length) model.uploadDroppedFolders(folders, overwrite);
  };
  const makeDir = async (e: FormEvent) => {
    e.preventDefault();
    if (naming !== undefined && (await model.mkdir(naming.trim()))) setNaming(undefined);
  };

  return (
    <section
      className={`files${dragging ? ' drop-active' : ''}`}
      data-testid="files-panel"
      data-machine={model.machine}
      data-role={model.role}
      data-path={model.path}
      data-loading={model.loading ? '1' : '0'}
      aria-label={`Files on ${model.machine}`}
      onDragOver={(e) => {
        if (!write) return;
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setDragging(true);
      }}
      onDragLeave={(e) => {
        if (!e.currentTarget.contains(e.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={onDrop}
    >
      <div className="files-bar">
        <strong>Files on {model.machine}</strong>
        <button type="button" data-testid="files-up" title="Up one directory" onClick={() => void model.up()}>
          ↑ Up
        </button>
        <form className="files-path" onSubmit={go}>
          <input data-testid="files-path" aria-label="Path" value={pathInput} spellCheck={false} onChange={(e) => setPathInput(e.target.value)} />
          <button type="submit" data-testid="files-go">
            Go
          </button>
        </form>
        <button type="button" data-testid="files-refresh" onClick={() => void model.refresh()}>
          Refresh
        </button>
        {write && (
          <>
            <button type="button" data-testid="files-upload" onClick={() => picker.current?.click()}>
              Upload…
            </button>
            <input
              ref={picker}
              type="file"
              multiple
              hidden
              data-testid="files-input"
              onChange={(e) => {
                const files = [...(e.target.files ?? [])];
                e.target.value = ''; // the same file can be picked again
                if (files.length) model.upload(files, overwrite);
              }}
            />
            <button type="button" data-testid="files-upload-folder" onClick={() => folderPicker.current?.click()}>
              Upload folder…
            </button>
            <input
              // webkitdirectory is not in React's types: set on the element itself.
              ref={(el) => el?.setAttribute('webkitdirectory', '')}
              type="file"
              hidden
              data-testid="files-folder-input"
              onChange={(e) => {
                const { trees, loose } = treesFromPicked([...(e.target.files ?? [])]);
                e.target.value = '';
                if (trees.length) model.uploadFolders(trees, overwrite);
                if (loose.length) model.upload(loose, overwrite);
              }}
            />
            <label className="dim" title="Upload over files of the same name">
              <input type="checkbox" data-testid="files-overwrite" checked={overwrite} onChange={(e) => setOverwrite(e.target.checked)} /> replace
            </label>
            <button type="button" data-testid="files-mkdir" onClick={() => setNaming('')}>
              New folder
            </button>
          </>
        )}
        {model.role === 'observer' && (
          <span className="dim" data-testid="files-readonly">
            you observe this machine: download only
          </span>
        )}
        <span className="spacer" />
        <button type="button" data-testid="files-close" onClick={close}>
          Close
        </button>
      </div>
      {naming !== undefined && (
        <form className="files-mkdir" onSubmit={makeDir}>
          <input data-testid="files-mkdir-name" aria-label="New folder name" value={naming} autoFocus onChange={(e) => setNaming(e.target.value)} />
          <button type="submit" className="primary" data-testid="files-mkdir-ok">
            Create
          </button>
          <button type="button" onClick={() => setNaming(undefined)}>
            Cancel
          </button>
        </form>
      )}
      {model.error && (
        <p className="error" data-testid="files-error" role="alert">
          {model.error}{' '}
          <button type="button" onClick={() => model.dismissError()}>
            dismiss
          </button>
        </p>
      )}
      {model.transfers.length > 0 && <Transfers model={model} />}
      <table className="files-list">
        <thead>
          <tr>
            <th>Name</th>
            <th className="num">Size</th>
            <th>Modified</th>
            <th />
          </tr>
        </thead>
        <tbody>
          <tr data-testid="file-parent">
            <td colSpan={4}>
              <button type="button" className="link" onClick={() => void model.up()}>
                ..
              </button>
            </td>
          </tr>
          {model.entries.map((e) => (
            <EntryRow
              key={e.name}
              e={e}
              model={model}
              confirming={confirming === e.name}
              setConfirming={setConfirming}
              renaming={renaming === e.name}
              setRenaming={setRenaming}
            />
          ))}
        </tbody>
      </table>
      {model.nextPageToken && (
        <button type="button" data-testid="files-more" disabled={model.loading} onClick={() => void model.loadMore()}>
          Load more ({model.entries.length} of {model.totalEntries})
        </button>
      )}
      {model.entries.length === 0 && !model.loading && !model.error && <p className="dim">(empty)</p>}
      {write && <p className="dim drop-hint">Drop files or folders here to upload them to {model.path}</p>}
    </section>
  );
}

interface EntryRowProps {
  e: FileEntry;
  model: FilesModel;
  confirming: boolean;
  setConfirming(name: string): void;
  renaming: boolean;
  setRenaming(name: string): void;
}

function EntryRow(p: EntryRowProps) {
  const { e, model } = p;
  const type = TYPE_NAME[e.type] ?? 'other';
  const dir = e.type === FileType.FILE_TYPE_DIRECTORY;
  // F2 anywhere on the row (it and its buttons take focus), as in file managers; not inside the rename box itself.
  const onKeyDown = (k: KeyboardEvent) => {
    if (k.key !== 'F2' || !model.canWrite || (k.target as HTMLElement).tagName === 'INPUT') return;
    k.preventDefault();
    p.setConfirming('');
    p.setRenaming(e.name);
  };
  return (
    <tr data-testid="file-row" data-name={e.name} data-type={type} tabIndex={0} onKeyDown={onKeyDown}>
      <td className="file-name">
        {p.renaming ? (
          <RenameForm e={e} model={model} done={() => p.setRenaming('')} />
        ) : dir || e.type === FileType.FILE_TYPE_SYMLINK ? (
          // A symlink may point at a directory: try to enter it (an error says if it is not one).
          <button type="button" className="link" data-testid="file-open" onClick={() => void model.enter(e.name)}>
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
          <button type="button" data-testid="file-download" onClick={() => void model.download(e)}>
            Download
          </button>
        )}
        {model.canWrite &&
          (p.confirming ? (
            <>
              <span className="error">Delete {dir ? 'this folder and everything in it' : 'it'}?</span>{' '}
              <button type="button" data-testid="file-delete-confirm" onClick={() => void model.remove(e).then(() => p.setConfirming(''))}>
                Delete
              </button>{' '}
              <button type="button" onClick={() => p.setConfirming('')}>
                Keep
              </button>
            </>
          ) : (
            <>
              <button type="button" data-testid="file-rename" title="Rename (F2)" onClick={() => p.setRenaming(e.name)}>
                Rename
              </button>{' '}
              <button type="button" data-testid="file-delete" onClick={() => p.setConfirming(e.name)}>
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
 * up. On failure the box stays open with what was typed and the panel says
 * why (the name is taken, no permission), so it can be corrected.
 */
function RenameForm({ e, model, done }: { e: FileEntry; model: FilesModel; done(): void }) {
  const [name, setName] = useState(e.name);
  const [busy, setBusy] = useState(false);
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
    const ok = await model.rename(e, name.trim());
    setBusy(false);
    if (ok) done();
  };
  return (
    <form className="file-rename" onSubmit={submit}>
      <input
        data-testid="file-rename-input"
        aria-label={`New name for ${e.name}`}
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
      <button type="button" data-testid="file-rename-cancel" onClick={done}>
        Cancel
      </button>
    </form>
  );
}

function Transfers({ model }: { model: FilesModel }) {
  const finished = model.transfers.some((t) => t.state !== 'queued' && t.state !== 'running');
  return (
    <div className="transfers">
      <ul>
        {model.transfers.map((t) => (
          <TransferRow key={t.id} t={t} model={model} />
        ))}
      </ul>
      {finished && (
        <button type="button" data-testid="files-clear-transfers" onClick={() => model.clearFinished()}>
          Clear finished
        </button>
      )}
    </div>
  );
}

function TransferRow({ t, model }: { t: Transfer; model: FilesModel }) {
  const pct = t.total > 0 ? Math.floor((100 * t.loaded) / t.total) : t.state === 'done' ? 100 : 0;
  const live = t.state === 'queued' || t.state === 'running';
  const f = t.folder;
  const files = f ? `${f.filesDone} of ${f.filesTotal} files, ` : '';
  return (
    <li
      className={`transfer transfer-${t.state}`}
      data-testid="file-transfer"
      data-kind={t.kind}
      data-name={t.name}
      data-state={t.state}
      data-loaded={t.loaded}
      data-total={t.total}
      data-files-done={f?.filesDone}
      data-files-total={f?.filesTotal}
      data-failed={f?.failures.length}
      data-note={t.note}
      data-resumes={t.resumes}
      title={t.path}
    >
      <div className="transfer-line">
        <span className="transfer-name">
          {t.kind === 'download' ? '↓' : '↑'} {t.name}
          {t.kind === 'folder' ? '/' : ''}
        </span>
        <progress data-testid="file-progress" max={Math.max(1, t.total)} value={t.total > 0 ? t.loaded : t.state === 'done' ? 1 : 0} />
        <span className="transfer-status">
          {t.state === 'running' ? `${files}${pct}% of ${formatBytes(t.total)}` : t.state === 'done' && f ? `done: ${files.slice(0, -2)}` : t.state}
          {t.note && (
            <span className="transfer-note" data-testid="file-transfer-note">
              {' '}
              {t.note}
            </span>
          )}
          {t.error && <span className="error"> {t.error}</span>}
        </span>
        {live && (
          <button type="button" data-testid="file-cancel" onClick={() => model.cancel(t)}>
            Cancel
          </button>
        )}
      </div>
      {f && f.failures.length > 0 && (
        // Every file of the folder that did not arrive, by name: nothing is left out silently.
        <ul className="transfer-failures" data-testid="file-transfer-failures">
          {f.failures.map((x) => (
            <li key={x.path} data-path={x.path}>
              <code>{x.path}</code>: {x.message}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}
