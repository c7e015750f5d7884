// One download (FileRequest{read}): the file's chunks go out while fewer
// than a window's bytes are unacknowledged, then FileDone with the MD5 of
// the whole file. The window and chunk size adapt to the link (ChunkSizer),
// and all downloads together share one cap (SendBudget) because their
// chunks ride the same stream as terminal output: a keystroke's echo never
// waits behind more than about MAX_FILE_WINDOW of file bytes.
//
// Reads are positional into a fresh buffer per chunk, and only happen when
// the window has room, so read-ahead is bounded by the window.
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';
import { FILE_CHUNK_FIELD, encodeFileChunkEnvelope, type FileEntry, type FileRead } from '../../../protocol';
import { ChunkSizer, MAX_FILE_WINDOW, MIN_FILE_CHUNK, SentChunks } from '../../../lib/chunkSizer';
import { FileError, kindOf, precondition, toFileError, changed } from './errors';
import { entryOf } from './ops';
import type { ResolvedPath } from './paths';
import type { TransferContext } from './transfer';

/** Buffer size for hashing what precedes a resumed download's offset. */
const HASH_READ = 1024 * 1024;

/** The agent-wide cap on download bytes in flight, shared fairly between the downloads. */
export class SendBudget {
  private members = new Set<Download>();

  constructor(readonly limit: number = MAX_FILE_WINDOW) {}

  join(d: Download): void {
    this.members.add(d);
  }

  leave(d: Download): void {
    if (!this.members.delete(d)) return;
    // Everyone's share just grew.
    for (const m of this.members) m.pump();
  }

  /** One download's part of the cap. */
  share(): number {
    return Math.floor(this.limit / Math.max(1, this.members.size));
  }
}

export class Download {
  private fh: FileHandle | undefined;
  private size = 0;
  private readonly hash = crypto.createHash('md5');
  /** Next byte to read and send; bytes before `acked` are acknowledged. */
  private sent = 0;
  private acked = 0;
  private readonly sizer = new ChunkSizer();
  private readonly inFlight = new SentChunks();
  private busy = false; // a read (or the prefix hash) is in progress
  private started = false;
  private ended = false;
  private shown = '';
  /** The read buffer, reused: each chunk is copied into its message before the next read. */
  private readBuf: Buffer | undefined;

  constructor(
    readonly requestId: number,
    private readonly ctx: TransferContext,
    private readonly budget: SendBudget,
  ) {}

  /** Checks and opens the file; the entry to reply with. Throws a FileError. */
  async open(p: ResolvedPath, req: FileRead): Promise<FileEntry> {
    try {
      // stat() before open(): opening a FIFO for reading would block a libuv thread until a writer came.
      const st = await fsp.stat(p.real);
      if (st.isDirectory()) throw precondition(`is a directory: ${p.shown} (use -r)`);
      if (!st.isFile()) throw precondition(`not a regular file: ${p.shown} is ${kindOf(st)}`);
      const fh = await fsp.open(p.real, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      this.fh = fh;
      const now = await fh.stat(); // the file actually opened (it may have been replaced since stat)
      if (!now.isFile()) throw precondition(`not a regular file: ${p.shown} is ${kindOf(now)}`);
      const entry = entryOf(req.path, now);
      if (req.offset > 0) {
        if ((req.expectSize && req.expectSize !== now.size) || (req.expectMtimeMs && req.expectMtimeMs !== entry.mtimeMs)) {
          throw changed(
            `${p.shown} changed since the download began (now ${now.size} bytes, modified ${new Date(entry.mtimeMs).toISOString()}): download it again from the start`,
          );
        }
      }
      if (!Number.isSafeInteger(req.offset) || req.offset < 0 || req.offset > now.size) {
        throw new FileError('OUT_OF_RANGE', `offset ${req.offset} is beyond the end of ${p.shown} (${now.size} bytes)`);
      }
      this.size = now.size;
      this.sent = this.acked = req.offset;
      this.shown = p.shown;
      return entry;
    } catch (e) {
      await this.close();
      throw toFileError(e, p.shown, 'reading');
    }
  }

  /** After the reply: hash what precedes the offset (the MD5 covers the whole file), then send. */
  start(): void {
    this.budget.join(this);
    this.busy = true;
    this.hashPrefix().then(
      () => {
        this.busy = false;
        this.started = true;
        this.pump();
      },
      (e) => this.fail(e),
    );
  }

  private async hashPrefix(): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.min(HASH_READ, Math.max(1, this.sent)));
    for (let pos = 0; pos < this.sent && !this.ended; ) {
      const { bytesRead } = await this.fh!.read(buf, 0, Math.min(buf.length, this.sent - pos), pos);
      if (bytesRead === 0) throw this.changed();
      this.hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  }

  /** Sends chunks while the window has room; called again on every ack. */
  pump(): void {
    if (this.busy || !this.started || this.ended) return;
    this.busy = true;
    this.sendWhileRoom().then(
      () => {
        this.busy = false;
      },
      (e) => {
        this.busy = false;
        this.fail(e);
      },
    );
  }

  private async sendWhileRoom(): Promise<void> {
    while (!this.ended) {
      if (this.sent >= this.size) return this.finish();
      const window = Math.min(this.sizer.window, this.budget.share());
      const len = Math.min(this.sizer.size, Math.max(MIN_FILE_CHUNK, Math.floor(window / 2)), this.size - this.sent);
      const unacked = this.sent - this.acked;
      if (unacked > 0 && unacked + len > window) return; // an ack will call pump()
      const buf = (this.readBuf ??= Buffer.allocUnsafe(this.sizer.maxChunk));
      const { bytesRead } = await this.fh!.read(buf, 0, len, this.sent);
      if (this.ended) return;
      if (bytesRead === 0) throw this.changed();
      const data = buf.subarray(0, bytesRead);
      this.hash.update(data);
      const offset = this.sent;
      if (!this.ctx.send(encodeFileChunkEnvelope(FILE_CHUNK_FIELD.agent, this.requestId, offset, data), true)) {
        return this.abort('no stream to send on');
      }
      this.sent += bytesRead;
      this.inFlight.sent(offset, bytesRead, performance.now());
    }
  }

  /** The control plane has every byte before `offset`. */
  ack(offset: number): void {
    if (this.ended) return;
    if (!(offset > this.acked) || offset > this.sent) {
      this.ctx.logger.debug({ requestId: this.requestId, offset, acked: this.acked, sent: this.sent }, 'download ack out of range ignored');
      return;
    }
    this.inFlight.acked(offset, this.sizer, performance.now());
    this.acked = offset;
    this.pump();
  }

  /** FileCancel or a lost stream: stop reading, close the file. Nothing more is sent. */
  abort(reason: string): void {
    if (this.ended) return;
    this.ctx.logger.debug({ requestId: this.requestId, reason }, 'download stopped');
    this.end();
  }

  private async finish(): Promise<void> {
    const md5 = this.hash.digest();
    const s = this.sizer;
    this.ctx.logger.debug(
      { requestId: this.requestId, size: this.size, chunk: s.size, window: s.window, bytesPerMs: Math.round(s.bytesPerMs), rttMs: s.rttMs, minRttMs: s.minRttMs },
      'download sent',
    );
    this.end();
    this.ctx.send({ msg: { $case: 'fileDone', value: { requestId: this.requestId, md5, size: this.size } } }, true); // after its chunks
  }

  private fail(e: unknown): void {
    if (this.ended) return;
    const err = toFileError(e, this.shown, 'reading');
    this.end();
    this.ctx.replyError(this.requestId, err);
  }

  private end(): void {
    this.ended = true;
    this.budget.leave(this);
    this.ctx.ended(this.requestId);
    void this.close();
  }

  private changed(): FileError {
    return changed(`${this.shown} changed while it was being read (it is shorter than ${this.size} bytes now)`);
  }

  private async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    // FileHandle.close() waits for a read in progress.
    await fh?.close().catch(() => {});
  }
}
