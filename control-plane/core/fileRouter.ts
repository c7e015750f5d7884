// File operations between clients and one agent, over the agent's stream.
// The control plane only routes: it numbers each operation, forwards chunks
// and acknowledgements, and fails whatever is in flight when the agent's
// stream drops (the client resumes: a download from its offset, an upload by
// its transfer id). It holds no file data beyond what is in flight: a
// download's chunks are acknowledged to the agent only as the client's
// stream accepts them, so a slow client slows the agent, never fills memory.
import {
  ControlMessage,
  FileChunk,
  FileChunkAck,
  FileDone,
  FileEntry,
  FileReply,
  FileRequest,
  AgentMessage,
  Encoded,
  FILE_CHUNK_FIELD,
  encodeFileChunkEnvelope,
} from '../../protocol';
import { ApiError, type ErrorCode, unavailable } from './errors';
import { UNREAD_COUNTERS, type Counters } from './counters';

/** How long a unary file operation may take on the agent (a huge directory listing, a slow disk). */
export const FILE_OP_TIMEOUT_MS = 60_000;

type Op = NonNullable<FileRequest['op']>;

/** What a download's client stream takes. `chunk` returns false when the client's buffer is full: call `resume` on its drain. */
export interface DownloadSink {
  entry(e: FileEntry): void;
  chunk(c: FileChunk): boolean;
  done(d: FileDone): void;
  fail(e: ApiError): void;
}

/** What an upload's client stream hears back. */
export interface UploadSink {
  opened(resumeOffset: number): void;
  ack(a: FileChunkAck): void;
  done(e: FileEntry): void;
  fail(e: ApiError): void;
}

export interface DownloadHandle {
  /** The client's stream drained: acknowledge what it has taken. */
  resume(): void;
  cancel(reason: string): void;
}

export interface UploadHandle {
  chunk(c: Omit<FileChunk, 'requestId'>): void;
  done(d: Omit<FileDone, 'requestId'>): void;
  /** `discard`: the client will not resume, so the agent removes the partial file. */
  cancel(reason: string, discard?: boolean): void;
}

type Pending =
  | { kind: 'unary'; resolve(r: FileReply): void; reject(e: ApiError): void; timer: NodeJS.Timeout }
  | { kind: 'download'; sink: DownloadSink; opened: boolean; received: number; acked: number; blocked: boolean }
  | { kind: 'upload'; sink: UploadSink; opened: boolean; finishing: boolean };

const CODES = new Set<ErrorCode>([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'FAILED_PRECONDITION',
  'OUT_OF_RANGE',
  'RESOURCE_EXHAUSTED',
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'DATA_LOSS',
]);

/** The agent's error as the client will see it (an unexpected code becomes FAILED_PRECONDITION, message kept). */
function replyError(r: FileReply): ApiError {
  return new ApiError(CODES.has(r.code as ErrorCode) ? (r.code as ErrorCode) : 'FAILED_PRECONDITION', r.message || r.code, r.reason === 'file_changed' ? 'file_changed' : '');
}

export class FileRouter {
  private nextId = 1;
  private pending = new Map<number, Pending>();

  constructor(
    private readonly machine: string,
    /** Sends to the agent; false when it has no stream now. */
    /** `bulk`: upload chunks and the FileDone after them (lib/prioritySender.ts). */
    private readonly send: (m: ControlMessage | Encoded, bulk?: boolean) => boolean,
    /** The control plane's file byte totals (read by /metrics). */
    private readonly counters: Counters = UNREAD_COUNTERS,
  ) {}

  /** A unary operation (list, stat, mkdir, remove, rename). */
  request(op: Exclude<Op, { $case: 'read' | 'write' }>): Promise<FileReply> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError('DEADLINE_EXCEEDED', `machine ${this.machine} did not answer the file operation within ${FILE_OP_TIMEOUT_MS / 1000} s`));
      }, FILE_OP_TIMEOUT_MS);
      this.pending.set(id, { kind: 'unary', resolve, reject, timer });
      if (!this.sendRequest(id, op)) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(this.offline());
      }
    });
  }

  download(read: Extract<Op, { $case: 'read' }>['value'], sink: DownloadSink): DownloadHandle {
    const id = this.nextId++;
    const p: Pending = { kind: 'download', sink, opened: false, received: 0, acked: 0, blocked: false };
    this.pending.set(id, p);
    if (!this.sendRequest(id, { $case: 'read', value: read })) {
      this.pending.delete(id);
      sink.fail(this.offline());
    }
    return {
      resume: () => {
        if (this.pending.get(id) !== p || !p.blocked) return;
        p.blocked = false;
        this.ackDownload(id, p);
      },
      cancel: (reason) => this.cancel(id, reason),
    };
  }

  upload(write: Extract<Op, { $case: 'write' }>['value'], sink: UploadSink): UploadHandle {
    const id = this.nextId++;
    const p: Pending = { kind: 'upload', sink, opened: false, finishing: false };
    this.pending.set(id, p);
    if (!this.sendRequest(id, { $case: 'write', value: write })) {
      this.pending.delete(id);
      sink.fail(this.offline());
    }
    const live = () => this.pending.get(id) === p;
    return {
      chunk: (c) => {
        if (!live()) return;
        if (!p.opened) return this.failUpload(id, p, new ApiError('FAILED_PRECONDITION', 'wait for `opened` before sending chunks'));
        if (!this.send(encodeFileChunkEnvelope(FILE_CHUNK_FIELD.control, id, c.offset, c.data), true)) return this.failUpload(id, p, this.offline());
        this.counters.fileUpload += c.data.length;
      },
      done: (d) => {
        if (!live()) return;
        p.finishing = true;
        if (!this.send({ msg: { $case: 'fileDone', value: { ...d, requestId: id } } }, true)) this.failUpload(id, p, this.offline());
      },
      cancel: (reason, discard) => this.cancel(id, reason, discard),
    };
  }

  /** Messages from the agent about files. */
  onAgentMessage(msg: Extract<NonNullable<AgentMessage['msg']>, { $case: 'fileReply' | 'fileChunk' | 'fileAck' | 'fileDone' }>): void {
    const id = msg.value.requestId;
    const p = this.pending.get(id);
    if (!p) return; // cancelled or failed already: late messages are dropped
    switch (msg.$case) {
      case 'fileReply': {
        const r = msg.value;
        if (p.kind === 'unary') {
          clearTimeout(p.timer);
          this.pending.delete(id);
          if (r.code) p.reject(replyError(r));
          else p.resolve(r);
        } else if (p.kind === 'download') {
          if (r.code) {
            this.pending.delete(id);
            p.sink.fail(replyError(r));
          } else if (!p.opened) {
            p.opened = true;
            p.sink.entry(r.entry!);
          }
        } else if (r.code) {
          this.pending.delete(id);
          p.sink.fail(replyError(r));
        } else if (!p.opened) {
          p.opened = true;
          p.sink.opened(r.resumeOffset);
        } else {
          this.pending.delete(id);
          p.sink.done(r.entry!);
        }
        return;
      }
      case 'fileChunk':
        if (p.kind !== 'download') return;
        p.received = msg.value.offset + msg.value.data.length;
        this.counters.fileDownload += msg.value.data.length;
        if (!p.sink.chunk(msg.value)) p.blocked = true;
        if (!p.blocked) this.ackDownload(id, p);
        return;
      case 'fileDone':
        if (p.kind !== 'download') return;
        this.pending.delete(id);
        p.sink.done(msg.value);
        return;
      case 'fileAck':
        if (p.kind === 'upload') p.sink.ack(msg.value);
        return;
    }
  }

  /** The agent's stream dropped (or the session ended): nothing in flight can finish. */
  failAll(reason: string): void {
    const err = unavailable(`the connection to machine ${this.machine} dropped (${reason}); resume the transfer once it is back`);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      if (p.kind === 'unary') {
        clearTimeout(p.timer);
        p.reject(err);
      } else p.sink.fail(err);
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  private sendRequest(id: number, op: Op): boolean {
    return this.send({ msg: { $case: 'fileRequest', value: { requestId: id, op } } });
  }

  private ackDownload(id: number, p: Extract<Pending, { kind: 'download' }>): void {
    if (p.received <= p.acked) return;
    p.acked = p.received;
    this.send({ msg: { $case: 'fileAck', value: { requestId: id, offset: p.acked } } });
  }

  private cancel(id: number, reason: string, discard = false): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.kind === 'unary') clearTimeout(p.timer);
    this.send({ msg: { $case: 'fileCancel', value: { requestId: id, reason, discard } } });
  }

  private failUpload(id: number, p: Extract<Pending, { kind: 'upload' }>, e: ApiError): void {
    this.cancel(id, e.message);
    p.sink.fail(e);
  }

  private offline(): ApiError {
    return unavailable(`machine ${this.machine} is not connected right now: retry once it is back`);
  }
}
