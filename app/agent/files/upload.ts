// One upload (FileRequest{write}). The bytes go to a partial file beside the
// destination, `.<name>.cmdop-<transfer id>.part` (mode 0600 while partial),
// which becomes the destination by rename() only once the sender's MD5 of
// the whole file matches ours: nothing damaged or half-written is ever found
// under the destination's name. A cancelled or cut-off upload keeps its
// partial file, and a request with the same transfer id resumes it, taking
// it over from an earlier upload that may still hold it (PartialFiles).
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FileChunk, FileDone, FileWrite } from '../../../protocol';
import type { Logger } from '../../../lib/logger';
import { MAX_FILE_CHUNK } from '../../../lib/chunkSizer';
import { MAX_UPLOAD_IN_FLIGHT } from '../../../protocol/limits';
import { FileError, invalid, kindOf, precondition, toFileError } from './errors';
import { entryOf } from './ops';
import type { ResolvedPath } from './paths';
import type { TransferContext } from './transfer';

/** Transfer ids name a file: letters, digits, '-' and '_' only. */
const TRANSFER_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** What a partial file's name looks like (for the stale-file sweep). */
const PARTIAL_NAME = /^\..+\.cmdop-[A-Za-z0-9_-]{1,64}\.part$/;
/**
 * Chunks received but not yet written. A sender that respects our acks has
 * at most its window (MAX_UPLOAD_IN_FLIGHT, which the control plane enforces too)
 * outstanding; one that does not is refused instead of filling memory.
 */
const MAX_UNWRITTEN = MAX_UPLOAD_IN_FLIGHT;
/** Partial files untouched this long are abandoned uploads, removed when a new upload opens beside them. */
export const STALE_PARTIAL_MS = 24 * 3600 * 1000;
/** A directory is swept for stale partial files at most this often. */
const SWEEP_EVERY_MS = 3600 * 1000;
const HASH_READ = 1024 * 1024;
const DEFAULT_MODE = 0o644;

/** The partial file for `dest` (long names are shortened: the transfer id keeps it unique). */
export function partialPath(dest: string, transferId: string): string {
  let base = path.basename(dest);
  if (Buffer.byteLength(base) > 100) base = crypto.createHash('md5').update(base).digest('hex').slice(0, 16);
  return path.join(path.dirname(dest), `.${base}.cmdop-${transferId}.part`);
}

/** What holds a partial file: told to stop when a newer upload with the same transfer id takes it over. */
export interface PartialHolder {
  supersede(): void;
}

/** One upload's place among the opens of its transfer id (PartialFiles.take). */
export interface PartialHold {
  /** Resolves once every earlier open of this transfer id has let go: stopped, its writes done, its file closed (and removed, if discarded). */
  readonly ready: Promise<void>;
  /** The partial file this upload has open, once it knows it (for the sweep). */
  use(partial: string): void;
  /** Done with the file once `closed` settles. The first call counts; later ones do nothing. */
  release(closed: Promise<unknown>): void;
}

interface HoldEntry {
  holder: PartialHolder;
  partial: string;
  released: Promise<void>;
}

/**
 * Partial files in use, and the order of the uploads that open them.
 *
 * A resumed upload reopens its partial file under the same transfer id, and
 * the upload that wrote it before may still hold it here: cut off while it
 * was still opening (hashing what the file holds), or forgotten by the
 * control plane without this agent hearing of it. The newer one takes the
 * file over: the older is told to stop, and the newer looks at the file
 * only once the older has stopped, its pending writes finished or dropped
 * and the file closed. The order is the order the requests arrived in
 * (taken before anything is awaited, so not the order their paths happen
 * to resolve in): however opens and stops interleave, one upload at a time
 * has the file, and the one the client opened last is the one that goes on.
 * Transfer ids are random per upload, so the queue is per transfer id.
 */
export class PartialFiles {
  /** The latest open of each transfer id, and when it (and every one before it) will have let go. */
  private holds = new Map<string, HoldEntry>();
  /** Every hold not yet let go of, for isLive (a superseded one may still be closing its file). */
  private all = new Set<HoldEntry>();
  private swept = new Map<string, number>();

  take(transferId: string, holder: PartialHolder): PartialHold {
    const prev = this.holds.get(transferId);
    const ready = prev ? prev.released : Promise.resolve();
    let letGo!: (closed: Promise<unknown>) => void;
    const released = new Promise<void>((resolve) => {
      letGo = (closed) => void Promise.all([ready, closed.catch(() => {})]).then(() => resolve());
    });
    const entry: HoldEntry = { holder, partial: '', released };
    this.holds.set(transferId, entry);
    this.all.add(entry);
    void released.then(() => {
      this.all.delete(entry);
      if (this.holds.get(transferId) === entry) this.holds.delete(transferId);
    });
    prev?.holder.supersede();
    let given = false;
    return {
      ready,
      use: (partial) => {
        entry.partial = partial;
      },
      release: (closed) => {
        if (given) return;
        given = true;
        letGo(closed);
      },
    };
  }

  /** Open (or being closed) by an upload: never swept. */
  isLive(p: string): boolean {
    for (const e of this.all) if (e.partial === p) return true;
    return false;
  }

  /** Removes partial files older than STALE_PARTIAL_MS in `dir` (best effort, at most hourly per directory). */
  async sweep(dir: string, logger: Logger, now = Date.now()): Promise<void> {
    if (now - (this.swept.get(dir) ?? -Infinity) < SWEEP_EVERY_MS) return;
    this.swept.set(dir, now);
    if (this.swept.size > 1000) this.swept.clear();
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const n of names) {
      if (!PARTIAL_NAME.test(n)) continue;
      const p = path.join(dir, n);
      if (this.isLive(p)) continue;
      const st = await fsp.lstat(p).catch(() => undefined);
      if (st?.isFile() && now - st.mtimeMs > STALE_PARTIAL_MS) {
        await fsp.unlink(p).then(
          () => logger.info({ path: p }, 'removed an abandoned partial upload'),
          () => {},
        );
      }
    }
  }
}

export class Upload implements PartialHolder {
  private fh: FileHandle | undefined;
  private hold: PartialHold | undefined;
  private transferId = '';
  /** Open: opened and not ended. */
  private isOpen = false;
  /** Why it must stop opening: a newer upload with the same transfer id took the partial file over. */
  private superseded = '';
  private dest: ResolvedPath | undefined;
  private destName = '';
  private partial = '';
  private size = 0;
  private mode = DEFAULT_MODE;
  private overwrite = false;
  private readonly hash = crypto.createHash('md5');
  /** Bytes accepted (in order) and bytes on disk. */
  private received = 0;
  private written = 0;
  private chain: Promise<void> = Promise.resolve();
  private finishing = false;
  private ended = false;

  constructor(
    readonly requestId: number,
    private readonly ctx: TransferContext,
    private readonly partials: PartialFiles,
  ) {}

  /**
   * Checks the destination and opens (or reopens) the partial file; the
   * offset to resume from. Its place among opens of the same transfer id is
   * taken at once, before the path (`resolve`) or anything else is awaited.
   */
  async open(req: FileWrite, resolve: () => Promise<ResolvedPath>): Promise<number> {
    if (!TRANSFER_ID.test(req.transferId)) {
      throw invalid(`transfer id ${JSON.stringify(req.transferId)} must be 1-64 letters, digits, '-' or '_'`);
    }
    if (!Number.isSafeInteger(req.size) || req.size < 0) throw invalid(`bad size ${req.size}`);
    this.destName = req.path;
    this.size = req.size;
    this.overwrite = req.overwrite;
    this.transferId = req.transferId;
    // An earlier upload under this transfer id is stopped, and has let go
    // of the partial file, before anything here is checked or read.
    const hold = this.partials.take(req.transferId, this);
    this.hold = hold;
    let shown = req.path;
    try {
      await hold.ready;
      this.goOn();
      const p = await resolve();
      shown = p.shown;
      this.dest = p;
      this.partial = partialPath(p.real, req.transferId);
      hold.use(this.partial);
      const existing = await fsp.lstat(p.real).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (existing) {
        if (existing.isDirectory()) throw precondition(`is a directory: ${p.shown}`);
        if (!existing.isFile() && !existing.isSymbolicLink()) throw precondition(`not a regular file: ${p.shown} is ${kindOf(existing)}`);
        if (!req.overwrite) throw new FileError('ALREADY_EXISTS', `already exists: ${p.shown} (set overwrite to replace it)`);
      }
      // An overwrite without a mode keeps the file's mode; a new file gets 0644.
      // Permission bits only: setuid/setgid/sticky are not set over the wire.
      this.mode = req.mode & 0o777 || (existing?.isFile() ? existing.mode & 0o777 : DEFAULT_MODE);
      const dir = path.dirname(p.real);
      const dirSt = await fsp.stat(dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw new FileError('NOT_FOUND', `no such directory: ${path.dirname(p.shown)}`);
        throw e;
      });
      if (!dirSt.isDirectory()) throw precondition(`not a directory: ${path.dirname(p.shown)}`);
      this.goOn();
      // O_NOFOLLOW: a symlink planted under the partial file's name is refused, not written through.
      this.fh = await fsp.open(this.partial, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
      const st = await this.fh.stat();
      if (!st.isFile()) throw precondition(`not a regular file: ${this.partial} is ${kindOf(st)}`);
      let have = st.size;
      if (have > req.size) {
        // Left by a different upload under the same id: start over.
        await this.fh.truncate(0);
        have = 0;
      }
      await this.hashExisting(have);
      this.goOn();
      this.received = this.written = have;
      this.isOpen = true;
      void this.partials.sweep(dir, this.ctx.logger).catch(() => {});
      return have;
    } catch (e) {
      this.ended = true;
      hold.release(this.close());
      throw toFileError(e, shown, 'writing');
    }
  }

  /** Throws if a newer upload with the same transfer id has taken the partial file over while this one opened. */
  private goOn(): void {
    if (this.superseded) throw precondition(this.superseded);
  }

  /** A newer upload with the same transfer id takes the partial file over: this one stops (told so, if its client still listens). */
  supersede(): void {
    if (this.ended) return;
    const why = `a newer upload with transfer id ${this.transferId} took over ${this.dest?.shown ?? this.destName}`;
    if (this.isOpen) this.fail(precondition(why));
    else this.superseded = why; // open() stops at its next step
  }

  /** A resumed upload's MD5 covers the whole file: hash what the partial file already holds. */
  private async hashExisting(bytes: number): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.min(HASH_READ, Math.max(1, bytes)));
    for (let pos = 0; pos < bytes; ) {
      const { bytesRead } = await this.fh!.read(buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (bytesRead === 0) throw precondition(`${this.partial} shrank while it was being read`);
      this.goOn();
      this.hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  }

  chunk(c: FileChunk): void {
    if (this.ended) return;
    const len = c.data.length;
    if (this.finishing) return this.fail(invalid(`chunk at offset ${c.offset} after done`));
    if (c.offset !== this.received) {
      return this.fail(invalid(`chunk at offset ${c.offset}, expected ${this.received}: chunks must come in order`));
    }
    if (len === 0) return;
    if (len > MAX_FILE_CHUNK) return this.fail(invalid(`a chunk of ${len} bytes is larger than ${MAX_FILE_CHUNK}`));
    if (c.offset + len > this.size) {
      return this.fail(invalid(`chunk at offset ${c.offset} of ${len} bytes goes past the announced size ${this.size}`));
    }
    if (this.received + len - this.written > MAX_UNWRITTEN) {
      return this.fail(new FileError('RESOURCE_EXHAUSTED', `more than ${MAX_UNWRITTEN} bytes sent ahead of what was acknowledged: wait for acks`));
    }
    this.received += len;
    this.chain = this.chain.then(() => this.write(c.offset, c.data));
  }

  private async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.ended) return;
    try {
      for (let done = 0; done < data.length; ) {
        const { bytesWritten } = await this.fh!.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
    } catch (e) {
      return this.failIo(e);
    }
    if (this.ended) return;
    this.hash.update(data);
    this.written += data.length;
    // Acked once on disk: the sender's window is bounded by our disk, not our memory.
    this.ctx.send({ msg: { $case: 'fileAck', value: { requestId: this.requestId, offset: this.written } } });
  }

  done(d: FileDone): void {
    if (this.ended) return;
    if (this.finishing) return this.fail(invalid('done sent twice'));
    this.finishing = true;
    this.chain = this.chain.then(() => this.finish(d));
  }

  private async finish(d: FileDone): Promise<void> {
    if (this.ended) return;
    if (d.size !== this.size) return this.fail(invalid(`done says ${d.size} bytes, the upload announced ${this.size}`));
    if (this.written !== this.size) return this.fail(invalid(`done after ${this.written} of ${this.size} bytes`));
    const mine = this.hash.digest();
    const theirs = Buffer.from(d.md5);
    if (!mine.equals(theirs)) {
      const message = `MD5 mismatch: sent ${theirs.toString('hex') || '(none)'}, received ${mine.toString('hex')}; nothing written to ${this.dest!.shown}`;
      return this.fail(new FileError('DATA_LOSS', message), true);
    }
    try {
      const fh = this.fh!;
      await fh.sync();
      await fh.chmod(this.mode);
      // Stopped meanwhile (a lost stream): the verified partial file stays; a
      // resume gets resume_offset = size and only has to send done again.
      if (this.ended) return;
      this.fh = undefined;
      await fh.close();
      if (!this.overwrite) {
        // Created by someone else while we were receiving.
        const now = await fsp.lstat(this.dest!.real).catch(() => undefined);
        if (now) {
          return this.fail(new FileError('ALREADY_EXISTS', `already exists: ${this.dest!.shown} (created during the upload; nothing written)`), true);
        }
      }
      if (this.ended) return;
      await fsp.rename(this.partial, this.dest!.real);
      const st = await fsp.stat(this.dest!.real);
      if (this.ended) return; // taken over while renaming: the newer upload finds the file there
      this.end();
      this.ctx.reply(this.requestId, { md5: mine, entry: entryOf(this.destName, st) });
    } catch (e) {
      this.failIo(e);
    }
  }

  /** FileCancel with `discard`: the client will not resume; stop and remove the partial file. */
  discard(reason: string): void {
    if (this.ended) return;
    this.ctx.logger.debug({ requestId: this.requestId, reason }, 'upload cancelled; partial file removed');
    void this.end(true);
  }

  /** FileCancel or a lost stream: stop, keep the partial file for a resume. */
  abort(reason: string): void {
    if (this.ended) return;
    this.ctx.logger.debug({ requestId: this.requestId, reason, written: this.written }, 'upload stopped; partial file kept');
    this.end();
  }

  /**
   * Ends the upload with an error reply. `discard` deletes the partial file
   * (a damaged transfer, a full disk); otherwise it is kept (a protocol slip
   * such as a chunk out of order, a failed rename), so the client can resume.
   */
  private fail(e: FileError, discard = false): void {
    if (this.ended) return;
    const closed = this.end(discard);
    // A discarded partial file is gone before the error is told: "nothing left behind" holds when the client hears it.
    if (discard) void closed.then(() => this.ctx.replyError(this.requestId, e));
    else this.ctx.replyError(this.requestId, e);
  }

  /** A write, sync or rename failed: a full disk discards the partial file (it cannot be finished). */
  private failIo(e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code;
    this.fail(toFileError(e, this.dest!.shown, 'writing'), code === 'ENOSPC' || code === 'EDQUOT');
  }

  private end(discard = false): Promise<void> {
    this.ended = true;
    this.isOpen = false;
    this.ctx.ended(this.requestId);
    const partial = this.partial;
    // Closing waits for a write in progress; writes queued after it see `ended` and do nothing.
    const closed = this.close().then(async () => {
      if (discard) await fsp.rm(partial, { force: true }).catch(() => {});
    });
    // Let go of the partial file once it is closed (or removed) and nothing queued (a write, the verify and rename) still runs.
    this.hold?.release(Promise.all([closed, this.chain]));
    return closed;
  }

  private async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => {});
  }
}
