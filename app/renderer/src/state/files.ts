// One machine's file panel: where it is, what is there, what the user may
// do (an observer only downloads), and the transfers with their progress.
// Listing, mkdir, rename and delete are gateway calls; the bytes go over HTTP
// (net/files.ts). The model outlives the panel being closed, so transfers
// carry on and reopening shows them.
import { FileType, type FileEntry } from '../../../../protocol/generated/cmdop/v1/cmdop';
import { LIST_DEFAULT_PAGE } from '../../../../protocol/limits';
import type { ConsoleConnection } from '../net/connection';
import { downloadFile, fileRole, saveBlob, uploadFile, type Role } from '../net/files';
import { readFolder, type FolderTree } from '../net/localTree';
import { uploadFolder, type FolderFailure } from './folderUpload';
import { Observable } from './observable';

export interface Transfer {
  id: number;
  /** A folder is one transfer: its bytes and its files counted together. */
  kind: 'upload' | 'download' | 'folder';
  name: string;
  /** The remote path. */
  path: string;
  loaded: number;
  total: number;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  error: string;
  abort: AbortController;
  /** What a running transfer waits for ('reconnecting…'), or ''. */
  note: string;
  /** Times it went on after a lost connection came back. */
  resumes: number;
  /** A folder's files: how many arrived of how many, and each that did not, with why. */
  folder?: { filesDone: number; filesTotal: number; failures: FolderFailure[] };
}

/** Finished transfers kept on screen. */
const KEEP_FINISHED = 20;

/** `p` without `.`, `x/..` and doubled slashes; `~` (the home directory) and `/` stay where they are. */
export function normalizePath(p: string): string {
  const absolute = p.startsWith('/');
  const parts: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') {
      const last = parts[parts.length - 1];
      // `~` is not known here (the agent resolves it), so `~/..` stays as it is.
      if (last !== undefined && last !== '..' && !(last === '~' && parts.length === 1)) parts.pop();
      else if (!absolute) parts.push('..');
      continue;
    }
    parts.push(s);
  }
  if (absolute) return `/${parts.join('/')}`;
  return parts.join('/') || '.';
}

export const joinPath = (dir: string, name: string) => normalizePath(`${dir}/${name}`);

/** A name for a new entry in the current directory, or why not. */
export function nameProblem(name: string): string | undefined {
  if (!name) return 'give it a name';
  if (name === '.' || name === '..' || name.includes('/')) return `${JSON.stringify(name)} is not a name (no '/', '.' or '..')`;
  return undefined;
}

const byKind = (e: FileEntry) => (e.type === FileType.FILE_TYPE_DIRECTORY ? 0 : 1);
const sortEntries = (es: FileEntry[]) => [...es].sort((a, b) => byKind(a) - byKind(b) || a.name.localeCompare(b.name));

export class FilesModel extends Observable {
  path = '~';
  entries: FileEntry[] = [];
  /** A big directory comes a page at a time: the token of the next page ('' when all are here) and the directory's size. */
  nextPageToken = '';
  totalEntries = 0;
  loading = false;
  error = '';
  role: Role | 'unknown' = 'unknown';
  transfers: Transfer[] = [];
  /** Uploads wait their turn: one file or folder at a time. */
  private queued: { t: Transfer; run(t: Transfer): Promise<void> }[] = [];
  private seq = 0;
  private nextTransfer = 1;
  private uploading = false;
  private started = false;

  constructor(
    private readonly conn: ConsoleConnection,
    readonly machine: string,
  ) {
    super();
  }

  get canWrite(): boolean {
    return this.role === 'operator';
  }

  /** The first time the panel shows: the role and the home directory. */
  start(): void {
    if (this.started) return;
    this.started = true;
    fileRole(this.conn.token, this.machine).then(
      (r) => {
        this.role = r;
        this.changed();
      },
      (e: Error) => this.showError(`cannot tell what you may do on ${this.machine}: ${e.message}`),
    );
    void this.open('~');
  }

  async open(path: string): Promise<void> {
    const want = normalizePath(path.trim() || '~');
    const seq = ++this.seq;
    this.loading = true;
    this.changed();
    try {
      const r = await this.conn.call('listFiles', { machine: this.machine, path: want, pageSize: LIST_DEFAULT_PAGE, pageToken: '' });
      if (seq !== this.seq) return; // a later navigation won
      this.path = want;
      this.entries = sortEntries(r.entries);
      this.nextPageToken = r.nextPageToken;
      this.totalEntries = r.totalEntries;
      this.error = '';
    } catch (e) {
      if (seq === this.seq) this.error = `${want}: ${(e as Error).message}`;
    } finally {
      if (seq === this.seq) this.loading = false;
      this.changed();
    }
  }

  /** The next page of the current directory, added to what is shown. */
  async loadMore(): Promise<void> {
    if (!this.nextPageToken || this.loading) return;
    const seq = ++this.seq;
    const want = this.path;
    this.loading = true;
    this.changed();
    try {
      const r = await this.conn.call('listFiles', { machine: this.machine, path: want, pageSize: LIST_DEFAULT_PAGE, pageToken: this.nextPageToken });
      if (seq !== this.seq) return; // the user went elsewhere meanwhile
      this.entries = sortEntries([...this.entries, ...r.entries]);
      this.nextPageToken = r.nextPageToken;
      this.totalEntries = r.totalEntries;
    } catch (e) {
      if (seq === this.seq) this.error = `${want}: ${(e as Error).message}`;
    } finally {
      if (seq === this.seq) this.loading = false;
      this.changed();
    }
  }

  refresh = (): Promise<void> => this.open(this.path);
  enter = (name: string): Promise<void> => this.open(joinPath(this.path, name));
  up = (): Promise<void> => this.open(joinPath(this.path, '..'));

  async mkdir(name: string): Promise<boolean> {
    const problem = nameProblem(name);
    if (problem) return this.showError(problem);
    try {
      await this.conn.call('makeDirectory', { machine: this.machine, path: joinPath(this.path, name), parents: false });
    } catch (e) {
      return this.showError(`cannot create ${name}: ${(e as Error).message}`);
    }
    await this.refresh();
    return true;
  }

  /** Removes an entry; a directory with everything in it (the panel asks first). */
  async remove(e: FileEntry): Promise<boolean> {
    try {
      await this.conn.call('removeFile', {
        machine: this.machine,
        path: joinPath(this.path, e.name),
        recursive: e.type === FileType.FILE_TYPE_DIRECTORY,
      });
    } catch (err) {
      return this.showError(`cannot delete ${e.name}: ${(err as Error).message}`);
    }
    await this.refresh();
    return true;
  }

  /**
   * Renames an entry within the current directory. Never over an existing
   * name: a clash is refused, not a replacement made silently (the console
   * offers no overwrite for a rename). Resolves to '' when renamed, else
   * why not, for the panel to show beside the row; the listing is left as
   * it was.
   */
  async rename(e: FileEntry, to: string): Promise<string> {
    const problem = nameProblem(to);
    if (problem) return problem;
    if (to === e.name) return '';
    try {
      await this.conn.call('renameFile', {
        machine: this.machine,
        from: joinPath(this.path, e.name),
        to: joinPath(this.path, to),
        overwrite: false,
      });
    } catch (err) {
      // The agent's own words suggest setting overwrite, which an SDK caller can and the console cannot.
      if ((err as { code?: string }).code === 'ALREADY_EXISTS') return `cannot rename ${e.name} to ${to}: ${to} already exists here; choose another name`;
      return `cannot rename ${e.name} to ${to}: ${(err as Error).message}`;
    }
    await this.refresh();
    return '';
  }

  async download(e: FileEntry): Promise<void> {
    const t = this.addTransfer('download', e.name, joinPath(this.path, e.name), e.size);
    t.state = 'running';
    try {
      const blob = await downloadFile(this.conn.token, this.machine, t.path, (loaded, total) => this.progress(t, loaded, total), t.abort.signal);
      saveBlob(blob, e.name);
      t.state = 'done';
    } catch (err) {
      this.finishFailed(t, err);
    }
    this.changed();
  }

  /** Queues files for the current directory; they go one at a time. */
  upload(files: File[], overwrite: boolean): void {
    for (const f of files) {
      const t = this.addTransfer('upload', f.name, joinPath(this.path, f.name), f.size);
      this.queued.push({
        t,
        run: async (t) => {
          const r = await uploadFile(this.conn.token, this.machine, t.path, f, {
            overwrite,
            onProgress: (loaded, total) => this.progress(t, loaded, total),
            onReconnecting: (waiting) => this.reconnecting(t, waiting ? 1 : -1),
            signal: t.abort.signal,
          });
          t.resumes = r.resumes;
        },
      });
    }
    void this.drain();
  }

  /** Queues folders dropped on the panel; each is read from disk when its turn comes. */
  uploadDroppedFolders(folders: FileSystemDirectoryEntry[], overwrite: boolean): void {
    for (const entry of folders) this.queueFolder(entry.name, () => readFolder(entry), overwrite);
  }

  /** Queues folders already read (picked with the folder button). */
  uploadFolders(trees: FolderTree[], overwrite: boolean): void {
    for (const tree of trees) this.queueFolder(tree.name, async () => tree, overwrite);
  }

  private queueFolder(name: string, read: () => Promise<FolderTree>, overwrite: boolean): void {
    const t = this.addTransfer('folder', name, joinPath(this.path, name), 0);
    t.folder = { filesDone: 0, filesTotal: 0, failures: [] };
    this.queued.push({
      t,
      run: async (t) => {
        const tree = await read();
        const steps = {
          mkdir: async (path: string) => {
            await this.conn.call('makeDirectory', { machine: this.machine, path, parents: true });
          },
          upload: async (path: string, file: File, onProgress: (loaded: number) => void, signal: AbortSignal) => {
            // A folder's row says "reconnecting…" while any of its files waits.
            const r = await uploadFile(this.conn.token, this.machine, path, file, {
              overwrite,
              onProgress: (loaded) => onProgress(loaded),
              onReconnecting: (waiting) => this.reconnecting(t, waiting ? 1 : -1),
              signal,
            });
            t.resumes += r.resumes;
          },
        };
        const result = await uploadFolder(steps, t.path, tree, t.abort.signal, (p) => {
          t.folder = { filesDone: p.filesDone, filesTotal: p.filesTotal, failures: p.failures };
          this.progress(t, p.bytesDone, p.bytesTotal);
        });
        const failed = result.failures.length;
        if (failed > 0) {
          const notArrived = result.filesTotal - result.filesDone;
          throw new Error(
            `${result.filesDone} of ${result.filesTotal} files uploaded; ${notArrived ? `${notArrived} not` : 'some entries not'} (${failed} listed below)`,
          );
        }
      },
    });
    void this.drain();
  }

  cancel(t: Transfer): void {
    if (t.state === 'queued') {
      t.state = 'cancelled';
      this.changed();
    }
    t.abort.abort();
  }

  clearFinished(): void {
    this.transfers = this.transfers.filter((t) => t.state === 'queued' || t.state === 'running');
    this.changed();
  }

  dismissError(): void {
    this.error = '';
    this.changed();
  }

  private async drain(): Promise<void> {
    if (this.uploading) return;
    this.uploading = true;
    try {
      for (let next = this.queued.shift(); next; next = this.queued.shift()) {
        const { t, run } = next;
        if (t.state !== 'queued') continue;
        t.state = 'running';
        this.changed();
        try {
          await run(t);
          t.state = 'done';
        } catch (err) {
          this.finishFailed(t, err);
        }
        this.waiting.delete(t);
        t.note = '';
        this.changed();
        // The listing shows it (if the user is still in that directory).
        if (t.path === joinPath(this.path, t.name)) void this.refresh();
      }
    } finally {
      this.uploading = false;
    }
  }

  private addTransfer(kind: Transfer['kind'], name: string, path: string, total: number): Transfer {
    const t: Transfer = {
      id: this.nextTransfer++,
      kind,
      name,
      path,
      loaded: 0,
      total,
      state: 'queued',
      error: '',
      abort: new AbortController(),
      note: '',
      resumes: 0,
    };
    const finished = this.transfers.filter((x) => x.state !== 'queued' && x.state !== 'running');
    const drop = new Set(finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED + 1)));
    this.transfers = [...this.transfers.filter((x) => !drop.has(x)), t];
    this.changed();
    return t;
  }

  /** Uploads of `t` waiting for a connection to come back (a folder has several files going). */
  private waiting = new Map<Transfer, number>();

  private reconnecting(t: Transfer, delta: 1 | -1): void {
    const n = Math.max(0, (this.waiting.get(t) ?? 0) + delta);
    if (n === 0) this.waiting.delete(t);
    else this.waiting.set(t, n);
    t.note = n > 0 ? 'reconnecting…' : '';
    this.changed();
  }

  private progress(t: Transfer, loaded: number, total: number): void {
    t.loaded = loaded;
    if (Number.isFinite(total)) t.total = total;
    this.changed();
  }

  private finishFailed(t: Transfer, err: unknown): void {
    if (t.abort.signal.aborted) {
      t.state = 'cancelled';
      // What a cancelled folder leaves: the files that arrived stay, the rest are not there.
      if (t.folder) t.error = `${t.folder.filesDone} of ${t.folder.filesTotal} files were uploaded before the cancel; the others were not`;
      return;
    }
    t.state = 'failed';
    t.error = (err as Error).message;
  }

  /** Says what went wrong at the top of the panel. */
  showError(message: string): false {
    this.error = message;
    this.changed();
    return false;
  }
}
