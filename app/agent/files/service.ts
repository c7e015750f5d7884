// The agent's file service: takes the control plane's file messages, runs
// the unary operations, owns the live transfers (downloads and uploads) by
// request id, and stops them all when the stream is lost: the client resumes
// later (a download by offset, an upload by transfer id, whose partial file
// is kept).
//
// Bad input changes nothing else: a chunk, ack, done or cancel for an
// unknown request id is ignored (logged at debug); a request reusing a live
// id, or over the limits, gets an error reply of its own.
import type { AgentMessage, ControlMessage, Encoded, FileReply, FileRequest } from '../../../protocol';
import { createLogger, type Logger } from '../../../lib/logger';
import { MAX_FILE_WINDOW } from '../../../lib/chunkSizer';
import { Download, SendBudget } from './download';
import { FileError, invalid, toFileError } from './errors';
import { Listings } from './listing';
import * as ops from './ops';
import { PathResolver } from './paths';
import type { ReplyFields, TransferContext } from './transfer';
import { PartialFiles, Upload } from './upload';

/** The ControlMessage cases this service handles. */
export type FileControlMessage = Extract<
  NonNullable<ControlMessage['msg']>,
  { $case: 'fileRequest' | 'fileChunk' | 'fileAck' | 'fileDone' | 'fileCancel' }
>;

/** Live transfers (downloads + uploads) at once; more are refused. */
export const MAX_TRANSFERS = 16;
/** Unary operations in progress at once (a flood of stat()s must not take every libuv thread). */
export const MAX_UNARY = 64;

export interface FileServiceOptions {
  /**
   * Sends on the agent's stream; false when there is none. `bulk` (file chunks
   * and the FileDone after them) waits behind terminal traffic (lib/prioritySender.ts).
   */
  send(msg: AgentMessage | Encoded, bulk?: boolean): boolean;
  /** When set, every path must resolve inside this directory. */
  root?: string;
  /** Where relative paths and `~` point (default: the user's home). */
  home?: string;
  logger?: Logger;
  maxTransfers?: number;
  /** Download bytes in flight, all downloads together (default MAX_FILE_WINDOW). */
  maxWindow?: number;
  /** The partial files in use (tests pass their own to see which are held). */
  partials?: PartialFiles;
}

interface Live {
  /** Still checking/opening: messages for it are not expected yet. */
  opening: boolean;
  /** A cancel (or lost stream) arrived while opening. */
  cancelled: boolean;
  /** That cancel said discard: an upload's partial file is removed once it is open. */
  discard: boolean;
  t: Download | Upload;
}

export class FileService {
  private readonly paths: PathResolver;
  /** Page tokens and the kept names of directories being paged. */
  private readonly listings = new Listings();
  private readonly logger: Logger;
  private readonly transfers = new Map<number, Live>();
  private readonly unary = new Set<number>();
  private readonly budget: SendBudget;
  private readonly partials: PartialFiles;
  private readonly maxTransfers: number;
  /** Bumped when the stream is lost: work started before then must not answer on a new stream. */
  private epoch = 0;

  constructor(private readonly opts: FileServiceOptions) {
    this.paths = new PathResolver(opts.home, opts.root);
    this.logger = opts.logger ?? createLogger('agent-files');
    this.budget = new SendBudget(opts.maxWindow ?? MAX_FILE_WINDOW);
    this.maxTransfers = opts.maxTransfers ?? MAX_TRANSFERS;
    this.partials = opts.partials ?? new PartialFiles();
  }

  /** Transfers in progress (for tests and status). */
  get liveTransfers(): number {
    return this.transfers.size;
  }

  onMessage(m: FileControlMessage): void {
    switch (m.$case) {
      case 'fileRequest':
        return this.request(m.value);
      case 'fileChunk': {
        const l = this.live(m.value.requestId, 'chunk');
        if (l?.t instanceof Upload) l.t.chunk(m.value);
        else if (l) this.logger.debug({ requestId: m.value.requestId }, 'file chunk for a download ignored');
        return;
      }
      case 'fileAck': {
        const l = this.live(m.value.requestId, 'ack');
        if (l?.t instanceof Download) l.t.ack(m.value.offset);
        else if (l) this.logger.debug({ requestId: m.value.requestId }, 'file ack for an upload ignored');
        return;
      }
      case 'fileDone': {
        const l = this.live(m.value.requestId, 'done');
        if (l?.t instanceof Upload) l.t.done(m.value);
        else if (l) this.logger.debug({ requestId: m.value.requestId }, 'file done for a download ignored');
        return;
      }
      case 'fileCancel': {
        const l = this.transfers.get(m.value.requestId);
        if (!l) return this.logger.debug({ requestId: m.value.requestId }, 'file cancel for no live transfer ignored');
        if (l.opening) {
          l.cancelled = true;
          l.discard ||= m.value.discard;
        } else if (m.value.discard && l.t instanceof Upload) l.t.discard(`cancelled: ${m.value.reason}`);
        else l.t.abort(`cancelled: ${m.value.reason}`);
        return;
      }
    }
  }

  /** Transfers or unary operations in flight. */
  get busy(): boolean {
    return this.transfers.size > 0 || this.unary.size > 0;
  }

  /**
   * The stream is gone (or the agent stops): stop every transfer, keeping
   * uploads' partial files, and drop the answers of operations in progress
   * (their request ids mean nothing on the next stream).
   *
   * `answer`: the stream stays up, and file messages move to the Bulk stream.
   * The control plane failed what it had in flight when it bound that stream,
   * but a request it sent after that, on the main stream, can arrive here
   * before bulkReady does on the other: it is stopped too, and without an
   * answer its client would wait for ever. So every request stopped is
   * answered UNAVAILABLE (the control plane drops answers to requests it
   * failed already), and the client resumes or retries.
   */
  abortAll(reason: string, o: { answer?: boolean } = {}): void {
    this.epoch++;
    const stopped = [...this.transfers.keys(), ...this.unary];
    this.unary.clear();
    for (const l of [...this.transfers.values()]) {
      if (l.opening) l.cancelled = true;
      else l.t.abort(reason);
    }
    this.transfers.clear();
    if (o.answer) {
      for (const id of stopped) this.replyError(id, new FileError('UNAVAILABLE', `${reason}: the request was stopped; retry it (a transfer resumes where it was)`));
    }
  }

  // ---- requests

  private request(req: FileRequest): void {
    const id = req.requestId;
    const op = req.op;
    if (this.transfers.has(id) || this.unary.has(id)) {
      return this.sendReply(id, { code: 'INVALID_ARGUMENT', message: `request id ${id} is already in use by an operation in progress` });
    }
    if (!op) return this.replyError(id, invalid('a file request without an operation'));
    switch (op.$case) {
      case 'read':
      case 'write':
        return this.startTransfer(req.requestId, op);
      case 'list':
        return this.runUnary(id, () => ops.list(this.paths, this.listings, op.value));
      case 'stat':
        return this.runUnary(id, () => ops.stat(this.paths, op.value));
      case 'mkdir':
        return this.runUnary(id, () => ops.mkdir(this.paths, op.value));
      case 'remove':
        return this.runUnary(id, () => ops.remove(this.paths, op.value));
      case 'rename':
        return this.runUnary(id, () => ops.rename(this.paths, op.value));
    }
  }

  private runUnary(id: number, run: () => Promise<ops.UnaryResult>): void {
    if (this.unary.size >= MAX_UNARY) {
      return this.replyError(id, new FileError('RESOURCE_EXHAUSTED', `too many file operations at once (at most ${MAX_UNARY})`));
    }
    const epoch = this.epoch;
    this.unary.add(id);
    run().then(
      (r) => {
        if (epoch !== this.epoch) return;
        this.unary.delete(id);
        this.sendReply(id, r);
      },
      (e) => {
        if (epoch !== this.epoch) return;
        this.unary.delete(id);
        this.replyError(id, toFileError(e, '?'));
      },
    );
  }

  private startTransfer(id: number, op: Extract<NonNullable<FileRequest['op']>, { $case: 'read' | 'write' }>): void {
    if (this.transfers.size >= this.maxTransfers) {
      return this.replyError(id, new FileError('RESOURCE_EXHAUSTED', `too many transfers: at most ${this.maxTransfers} at once`));
    }
    const epoch = this.epoch;
    const ctx = this.context(epoch);
    let t: Download | Upload;
    let opened: Promise<ReplyFields>;
    if (op.$case === 'read') {
      const d = new Download(id, ctx, this.budget);
      const read = op.value;
      opened = this.paths.resolve(read.path, true).then((p) => d.open(p, read)).then((entry) => ({ entry }));
      t = d;
    } else {
      const u = new Upload(id, ctx, this.partials);
      const write = op.value;
      // Called now, not once the path resolves: opens of one transfer id take their turns in the order they arrive (upload.ts).
      opened = u.open(write, () => this.paths.resolve(write.path, true)).then((resumeOffset) => ({ resumeOffset }));
      t = u;
    }
    const live: Live = { opening: true, cancelled: false, discard: false, t };
    this.transfers.set(id, live);
    opened.then(
      (reply) => {
        live.opening = false;
        if (live.cancelled || epoch !== this.epoch) {
          if (live.discard && t instanceof Upload) t.discard('cancelled with discard while opening');
          else t.abort('cancelled while opening');
          return;
        }
        this.sendReply(id, reply);
        if (t instanceof Download) t.start();
      },
      (e) => {
        live.opening = false;
        if (this.transfers.get(id) === live) this.transfers.delete(id);
        if (live.cancelled || epoch !== this.epoch) return;
        this.replyError(id, toFileError(e, op.value.path));
      },
    );
  }

  /** What a transfer started in `epoch` may do: nothing on a later stream. */
  private context(epoch: number): TransferContext {
    return {
      send: (msg, bulk) => epoch === this.epoch && this.opts.send(msg, bulk),
      reply: (id, r) => {
        if (epoch === this.epoch) this.sendReply(id, r);
      },
      replyError: (id, e) => {
        if (epoch === this.epoch) this.replyError(id, e);
      },
      ended: (id) => {
        if (epoch === this.epoch) this.transfers.delete(id);
      },
      logger: this.logger,
    };
  }

  private live(id: number, what: string): Live | undefined {
    const l = this.transfers.get(id);
    if (!l) this.logger.debug({ requestId: id }, `file ${what} for no live transfer ignored`);
    else if (l.opening) {
      this.logger.debug({ requestId: id }, `file ${what} before the transfer was open ignored`);
      return undefined;
    }
    return l;
  }

  private replyError(id: number, e: FileError): void {
    this.sendReply(id, { code: e.code, message: e.message, reason: e.reason });
  }

  private sendReply(id: number, r: ReplyFields): void {
    const value: FileReply = {
      requestId: id,
      code: r.code ?? '',
      message: r.message ?? '',
      entry: r.entry,
      entries: r.entries ?? [],
      resumeOffset: r.resumeOffset ?? 0,
      md5: r.md5 ?? new Uint8Array(0),
      nextPageToken: r.nextPageToken ?? '',
      totalEntries: r.totalEntries ?? 0,
      reason: r.reason ?? '',
    };
    this.opts.send({ msg: { $case: 'fileReply', value } });
  }
}
