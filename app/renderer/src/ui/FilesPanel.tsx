// A machine's files: a path bar, the listing (FileList.tsx: directories
// first; click one to enter it, `..` to go up; a download per file; rename
// in place and delete), and for an operator upload (drop files or folders on
// the panel, or pick them) and new folder. An observer is shown none of the
// writing controls. Transfers show their progress under the bar.
import { useEffect, useRef, useState, type DragEvent, type FormEvent } from 'react';
import { droppedItems, treesFromPicked } from '../net/localTree';
import type { FilesModel, Transfer } from '../state/files';
import { FileList } from './FileList';
import { formatBytes } from './formatBytes';
import { useObservable } from './hooks';

export function FilesPanel({ model, close }: { model: FilesModel; close(): void }) {
  useObservable(model);
  const [pathInput, setPathInput] = useState(model.path);
  const [dragging, setDragging] = useState(false);
  const [naming, setNaming] = useState<string | undefined>(undefined);
  const [overwrite, setOverwrite] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const folderPicker = useRef<HTMLInputElement>(null);

  useEffect(() => model.start(), [model]);
  useEffect(() => setPathInput(model.path), [model.path]);

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
      <FileList model={model} />
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
