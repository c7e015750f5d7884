// `client.files`: files on a machine, through its agent's stream. Transfers
// stream in chunks (never the whole file in memory), report progress, verify
// an MD5 of the whole file computed on both sides, and never leave a partial
// or damaged file under the destination name: a download is written to
// `DEST.cmdop-part` and renamed when verified; an upload is renamed by the
// agent when verified. A connection lost mid-transfer (the machine's grace
// period, a dropped client link) is resumed from what was acknowledged,
// for as long as the client's reconnect timeout allows.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import {
  FileChunk,
  FileDone,
  FileEntry,
  FileType,
  LIST_DEFAULT_PAGE,
  LIST_MAX_PAGE,
  ListFilesRequest,
  MAX_FILE_CHUNK,
  MAX_UPLOAD_IN_FLIGHT,
  UploadMessage,
  FILE_CHUNK_FIELD,
  encodeFileChunkEnvelope,
} from '../protocol';
import { ChunkSizer, SentChunks } from '../lib/chunkSizer';
import { Backoff } from '../protocol/backoff';
import { RETRY_BACKOFF } from './config';
import type { CmdopClient } from './client';
import { CmdopError, DataLossError, FailedPreconditionError, InvalidArgumentError, UnavailableError, fromServiceError } from './errors';

export { FileType } from '../protocol';
export type { FileEntry } from '../protocol';

export interface TransferProgress {
  /** Bytes transferred (acknowledged by the receiver), of `total`. */
  bytes: number;
  total: number;
  /** Bytes per second, averaged over the transfer so far. */
  rateBps: number;
}

export interface TransferOptions {
  machine?: string;
  onProgress?(p: TransferProgress): void;
}

export interface UploadOptions extends TransferOptions {
  /** Replace an existing file (default: refuse with AlreadyExistsError). */
  overwrite?: boolean;
  /** Permission bits of the new file (default: the local file's). */
  mode?: number;
}

export interface TransferResult {
  size: number;
  /** Hex MD5 of the whole file, the same on both sides. */
  md5: string;
  /** How many times the transfer was resumed after a lost connection. */
  resumes: number;
}

/** One page of a directory listing. */
export interface FileListPage {
  entries: FileEntry[];
  /** Pass as `pageToken` for the next page; '' when this is the last. */
  nextPageToken: string;
  /** Entries in the directory when this page was read (it may change meanwhile). */
  totalEntries: number;
}

interface ListOptions {
  machine?: string;
  /** Entries per page: 0 or absent is the server's default (1000); more than 5000 is taken as 5000. */
  pageSize?: number;
  /** The previous page's nextPageToken; '' or absent for the first page. */
  pageToken?: string;
}

/** Asks for one page: at least one of pageSize and pageToken is given. */
export type PageOptions = ListOptions & ({ pageSize: number } | { pageToken: string });

const PART_SUFFIX = '.cmdop-part';

export class FilesApi {
  constructor(private readonly client: CmdopClient) {}

  /**
   * With `pageSize` or `pageToken`: one page of the directory, in bytewise
   * name order, and the token of the next ('' after the last page).
   * Without them: every entry, fetched page by page (as before paging; for a
   * huge directory prefer `listAll`, which does not hold them all).
   */
  list(path: string, o: PageOptions): Promise<FileListPage>;
  list(path: string, o?: { machine?: string }): Promise<FileEntry[]>;
  async list(path: string, o: ListOptions = {}): Promise<FileListPage | FileEntry[]> {
    if (o.pageSize !== undefined || o.pageToken !== undefined) return this.page(path, o);
    const all: FileEntry[] = [];
    for await (const p of this.pages(path, { machine: o.machine, pageSize: LIST_MAX_PAGE })) all.push(...p.entries);
    return all;
  }

  /**
   * The directory's pages in order, each fetched when the previous one has
   * been taken. Entries present throughout come exactly once; entries added
   * or removed meanwhile may or may not.
   */
  async *pages(path: string, o: { machine?: string; pageSize?: number } = {}): AsyncGenerator<FileListPage> {
    let pageToken = '';
    do {
      const p = await this.page(path, { machine: o.machine, pageSize: o.pageSize ?? 0, pageToken });
      yield p;
      pageToken = p.nextPageToken;
    } while (pageToken);
  }

  /** Every entry of the directory, page by page: `for await (const e of client.files.listAll(dir))`. */
  async *listAll(path: string, o: { machine?: string; pageSize?: number } = {}): AsyncGenerator<FileEntry> {
    for await (const p of this.pages(path, o)) yield* p.entries;
  }

  private async page(path: string, o: ListOptions): Promise<FileListPage> {
    const pageSize = o.pageSize ?? 0;
    // Checked here: the wire's uint32 would wrap a negative size into a huge one.
    if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > 0xffffffff) {
      throw new InvalidArgumentError(`pageSize must be a whole number from 0 (the default, ${LIST_DEFAULT_PAGE}) up; more than ${LIST_MAX_PAGE} is taken as ${LIST_MAX_PAGE}`);
    }
    // 0 is sent as the default: on the wire, 0 without a token asks for the whole directory (clients from before paging).
    const req: ListFilesRequest = { machine: this.client.machineOr(o.machine), path, pageSize: pageSize || LIST_DEFAULT_PAGE, pageToken: o.pageToken ?? '' };
    const r = await this.client.unary('listFiles', req);
    return { entries: r.entries, nextPageToken: r.nextPageToken, totalEntries: r.totalEntries };
  }

  stat(path: string, o: { machine?: string } = {}): Promise<FileEntry> {
    return this.client.unary('statFile', { machine: this.client.machineOr(o.machine), path });
  }

  mkdir(path: string, o: { machine?: string; parents?: boolean } = {}): Promise<FileEntry> {
    return this.client.unary('makeDirectory', { machine: this.client.machineOr(o.machine), path, parents: !!o.parents });
  }

  async remove(path: string, o: { machine?: string; recursive?: boolean } = {}): Promise<void> {
    await this.client.unary('removeFile', { machine: this.client.machineOr(o.machine), path, recursive: !!o.recursive });
  }

  rename(from: string, to: string, o: { machine?: string; overwrite?: boolean } = {}): Promise<FileEntry> {
    return this.client.unary('renameFile', { machine: this.client.machineOr(o.machine), from, to, overwrite: !!o.overwrite });
  }

  /** A remote file's bytes, in memory (for small files; use download() for large ones). */
  async read(path: string, o: TransferOptions = {}): Promise<Buffer> {
    const parts: Buffer[] = [];
    await this.receive(path, o, async (c) => void parts.push(Buffer.from(c.data)), async () => void (parts.length = 0));
    return Buffer.concat(parts);
  }

  /** Writes `data` to a remote file. */
  async write(path: string, data: string | Uint8Array, o: UploadOptions = {}): Promise<TransferResult> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return this.send(path, bytes.length, o.mode ?? 0o644, o, async (offset, length) => bytes.subarray(offset, offset + length));
  }

  /** Copies a remote file to `localPath` (written as localPath.cmdop-part, renamed once its MD5 matches). */
  async download(remotePath: string, localPath: string, o: TransferOptions = {}): Promise<TransferResult> {
    const part = localPath + PART_SUFFIX;
    const fh = await fsp.open(part, 'w', 0o600);
    let ok = false;
    try {
      const r = await this.receive(
        remotePath,
        o,
        async (c) => void (await fh.write(c.data, 0, c.data.length, c.offset)),
        async () => void (await fh.truncate(0)),
      );
      await fh.sync();
      await fh.close();
      const mode = r.entry.mode & 0o777;
      if (mode) await fsp.chmod(part, mode);
      await fsp.rename(part, localPath);
      ok = true;
      return r.result;
    } finally {
      if (!ok) {
        await fh.close().catch(() => {});
        await fsp.rm(part, { force: true });
      }
    }
  }

  /** Copies a local file to `remotePath` on the machine. */
  async upload(localPath: string, remotePath: string, o: UploadOptions = {}): Promise<TransferResult> {
    const st = await fsp.stat(localPath);
    if (!st.isFile()) throw new InvalidArgumentError(`${localPath} is ${st.isDirectory() ? 'a directory (copy it with -r)' : 'not a regular file'}`);
    const fh = await fsp.open(localPath, 'r');
    // One read buffer, reused: each chunk is hashed and copied into its message before the next read.
    let scratch: Buffer | undefined;
    try {
      return await this.send(remotePath, st.size, o.mode ?? st.mode & 0o777, o, async (offset, length) => {
        if (!scratch || scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, MAX_FILE_CHUNK));
        const buf = scratch.subarray(0, length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        if (bytesRead !== length) throw new FailedPreconditionError(`${localPath} changed while it was being sent (it is shorter now)`);
        return buf;
      });
    } finally {
      await fh.close();
    }
  }

  // ---- download

  /**
   * Streams a remote file's chunks to `sink` in order, verifying the MD5 and
   * resuming after a lost connection. `restart` is called when a resume is
   * refused because the file changed, before it is read again from byte 0.
   */
  private async receive(
    path: string,
    o: TransferOptions,
    sink: (c: FileChunk) => Promise<void>,
    restart: () => Promise<void>,
  ): Promise<{ entry: FileEntry; result: TransferResult }> {
    const machine = this.client.machineOr(o.machine);
    const started = Date.now();
    let offset = 0;
    let hash = crypto.createHash('md5');
    let entry: FileEntry | undefined;
    const resume = new ResumePolicy(this.client.options.reconnectTimeoutMs);
    for (;;) {
      try {
        const done = await this.downloadOnce({ machine, path, offset, expectMtimeMs: entry?.mtimeMs ?? 0, expectSize: entry?.size ?? 0 }, {
          entry: (e) => {
            if (entry && (e.size !== entry.size || e.mtimeMs !== entry.mtimeMs)) throw new FailedPreconditionError(`${path} changed during the download`);
            entry = e;
          },
          chunk: async (c) => {
            if (c.offset !== offset) throw new CmdopError(`chunk at ${c.offset}, expected ${offset}`, 'INTERNAL');
            hash.update(c.data);
            await sink(c);
            offset += c.data.length;
            resume.progressed();
            o.onProgress?.({ bytes: offset, total: entry?.size ?? 0, rateBps: rate(offset, started) });
          },
        });
        const md5 = hash.digest('hex');
        const theirs = Buffer.from(done.md5).toString('hex');
        if (offset !== done.size) throw new DataLossError(`${path}: received ${offset} bytes of ${done.size}`);
        if (md5 !== theirs) throw new DataLossError(`${path}: MD5 mismatch (machine ${theirs}, received ${md5}); nothing kept`);
        return { entry: entry!, result: { size: offset, md5, resumes: resume.count } };
      } catch (e) {
        if (e instanceof FailedPreconditionError && offset > 0 && e.reason === 'file_changed') {
          // The file changed between attempts: start over rather than splice two versions.
          offset = 0;
          entry = undefined;
          hash = crypto.createHash('md5');
          await restart();
          resume.count++;
          continue;
        }
        await resume.after(e);
      }
    }
  }

  /** One Download call: resolves with `done`, rejects with a typed error. */
  private downloadOnce(
    req: { machine: string; path: string; offset: number; expectMtimeMs: number; expectSize: number },
    on: { entry(e: FileEntry): void; chunk(c: FileChunk): Promise<void> },
  ): Promise<FileDone> {
    return new Promise((resolve, reject) => {
      const call = this.client.serverStream('download', req);
      let writing = 0;
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        call.cancel();
        reject(e);
      };
      let done: FileDone | undefined;
      let chain: Promise<void> = Promise.resolve();
      const finish = () => {
        if (done && writing === 0 && !failed) resolve(done);
      };
      call.on('data', (m) => {
        const msg = m.msg;
        try {
          if (msg?.$case === 'entry') on.entry(msg.value);
          else if (msg?.$case === 'chunk') {
            // Writes go in order; reading pauses while a few are outstanding,
            // so a slow disk slows the transfer instead of filling memory.
            writing++;
            if (writing >= 4) call.pause();
            chain = chain.then(() => on.chunk(msg.value)).then(
              () => {
                writing--;
                if (writing < 4) call.resume();
                finish();
              },
              fail,
            );
          } else if (msg?.$case === 'done') {
            done = msg.value;
            finish();
          }
        } catch (e) {
          fail(e);
        }
      });
      call.on('error', (e) => fail(fromServiceError(e, this.client.options.server)));
      call.on('end', () => {
        if (!done) chain.then(() => fail(new UnavailableError('the download ended before it was complete')));
      });
    });
  }

  // ---- upload

  private async send(
    path: string,
    size: number,
    mode: number,
    o: UploadOptions,
    readAt: (offset: number, length: number) => Promise<Buffer>,
  ): Promise<TransferResult> {
    const machine = this.client.machineOr(o.machine);
    // The same id resumes: the agent keeps the partial file under it.
    const transferId = crypto.randomBytes(12).toString('hex');
    const started = Date.now();
    const resume = new ResumePolicy(this.client.options.reconnectTimeoutMs);
    for (;;) {
      try {
        const r = await this.uploadOnce({ machine, path, size, mode, overwrite: !!o.overwrite, transferId }, readAt, (bytes) => {
          resume.progressed();
          o.onProgress?.({ bytes, total: size, rateBps: rate(bytes, started) });
        });
        return { ...r, resumes: resume.count };
      } catch (e) {
        await resume.after(e);
      }
    }
  }

  private uploadOnce(
    open: Extract<UploadMessage['msg'], { $case: 'open' }>['value'],
    readAt: (offset: number, length: number) => Promise<Buffer>,
    progress: (bytes: number) => void,
  ): Promise<Omit<TransferResult, 'resumes'>> {
    return new Promise((resolve, reject) => {
      const call = this.client.duplex('upload');
      const sizer = new ChunkSizer();
      const chunks = new SentChunks(); // when each chunk left, so acks give the sizer round trips
      let failed = false;
      let acked = 0;
      let sent = 0;
      let md5 = '';
      let wake: (() => void) | undefined;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        call.cancel();
        wake?.();
        reject(e);
      };
      call.on('error', (e) => fail(fromServiceError(e, this.client.options.server)));
      call.on('end', () => fail(new UnavailableError('the upload ended before it was confirmed')));
      call.on('data', (m) => {
        const msg = m.msg;
        if (msg?.$case === 'opened') {
          acked = sent = msg.value.resumeOffset;
          pump(msg.value.resumeOffset).catch(fail);
        } else if (msg?.$case === 'ack') {
          chunks.acked(msg.value.offset, sizer, performance.now());
          acked = msg.value.offset;
          progress(acked);
          wake?.();
        } else if (msg?.$case === 'done') {
          if (failed) return;
          failed = true; // settled
          call.end();
          resolve({ size: msg.value.size, md5 });
        }
      });
      const pump = async (from: number) => {
        // The MD5 covers the whole file: what the agent already has is hashed from the local copy.
        const hash = crypto.createHash('md5');
        for (let off = 0; off < from; off += MAX_FILE_CHUNK) hash.update(await readAt(off, Math.min(MAX_FILE_CHUNK, from - off)));
        while (sent < open.size && !failed) {
          const window = Math.min(MAX_UPLOAD_IN_FLIGHT, sizer.window);
          if (sent > acked && sent - acked + sizer.size > window) {
            await new Promise<void>((r) => (wake = r));
            continue;
          }
          const n = Math.min(sizer.size, open.size - sent);
          const data = await readAt(sent, n);
          if (failed) return;
          hash.update(data);
          call.write(encodeFileChunkEnvelope(FILE_CHUNK_FIELD.upload, 0, sent, data));
          chunks.sent(sent, n, performance.now());
          sent += n;
        }
        if (failed) return;
        md5 = hash.digest('hex');
        call.write({ msg: { $case: 'done', value: { requestId: 0, md5: Buffer.from(md5, 'hex'), size: open.size } } });
      };
      call.write({ msg: { $case: 'open', value: open } });
    });
  }
}

/**
 * When a transfer is tried again: after a lost connection (UnavailableError),
 * with backoff, for as long as the client's reconnect timeout allows since
 * the last byte moved. Anything else is final.
 */
class ResumePolicy {
  count = 0;
  private lostAt = 0;
  private readonly backoff = new Backoff(RETRY_BACKOFF);

  constructor(private readonly timeoutMs: number) {}

  /** Bytes moved: a later loss gets the whole timeout again. */
  progressed(): void {
    this.lostAt = 0;
    this.backoff.reset();
  }

  /** Rethrows `e` unless resuming may help; else waits before the next try. */
  async after(e: unknown): Promise<void> {
    if (!(e instanceof UnavailableError)) throw e;
    this.lostAt ||= Date.now();
    if (Date.now() - this.lostAt > this.timeoutMs) throw e;
    this.count++;
    await new Promise((r) => setTimeout(r, this.backoff.next()));
  }
}

const rate = (bytes: number, startedMs: number) => Math.round(bytes / Math.max(0.001, (Date.now() - startedMs) / 1000));

/** A FileEntry's type as a word ('file', 'directory', ...). */
export function fileTypeName(t: FileType): string {
  return t === FileType.FILE_TYPE_FILE ? 'file' : t === FileType.FILE_TYPE_DIRECTORY ? 'directory' : t === FileType.FILE_TYPE_SYMLINK ? 'symlink' : 'other';
}
