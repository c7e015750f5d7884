// Uploads from the console, in parts. One HTTP request per file would be
// simpler, but the web port gives every request 30 s to arrive in full
// (oauth/web.ts: requestTimeout, against slow-body clients), and reverse
// proxies cap bodies and request times too; a file of any size on any link
// instead goes as a series of PUTs the page sizes to a few seconds each.
//
//   POST /files/upload?machine&path&size&overwrite   opens it on the agent
//        (rights, the destination, ALREADY_EXISTS: all before any byte)
//   PUT  /files/upload/ID?offset=X   bytes X.. of the file; answered once
//        they are with the agent ({offset}), the last one once the agent
//        has verified and renamed the file ({offset, entry, md5})
//   DELETE /files/upload/ID          give up
//
// The control plane cuts each part into FileChunks (ChunkSizer, as the SDK
// does), hashes them for FileDone's MD5 (it sees every byte), and reads the
// request only while the agent's window has room: a paused request is TCP
// backpressure to the browser, and no more than a chunk and a socket read of
// a file is ever held here. An upload that fails or is given up leaves
// nothing: the agent keeps a cancelled upload's partial file for a resume,
// which the console never asks for, so the partial file is removed.
import crypto from 'node:crypto';
import type http from 'node:http';
import type { Metadata } from '@grpc/grpc-js';
import { AttachMode, MAX_UPLOAD_IN_FLIGHT, type FileEntry, type UploadMessage, type UploadReply } from '../../protocol';
import { ChunkSizer, SentChunks } from '../../lib/chunkSizer';
// How the agent names a partial upload (the one place it is defined).
import type { Access, Principal } from '../auth/access';
import { ApiError } from '../errors';
import { BASE_HEADERS, HandlerCall, HttpError, byteParam, flagParam, httpErrorOf, machineParam, metadataOf, peerOf, sendError, sendJson } from './fileHttp';

/** ClientService's streaming handler (fileService.ts), called with a HandlerCall as the gateway calls it with its streams. */
export type StreamHandler = (call: any) => void;

/** An open upload with no part arriving is given up after this long (the page went away). */
export const UPLOAD_IDLE_MS = 60_000;
/** Uploads one user may have open at once (each holds a file open on an agent). */
export const MAX_UPLOADS_PER_USER = 16;

interface Part {
  pump(): void;
  fail(e: HttpError): void;
  finish(entry: FileEntry): void;
}

class UploadSession {
  readonly id = crypto.randomBytes(18).toString('base64url');
  /** Names the agent's partial file. Fresh per upload: the console does not resume across pages. */
  private readonly transferId = crypto.randomBytes(12).toString('hex');
  private readonly call: HandlerCall<undefined, UploadReply>;
  private readonly hash = crypto.createHash('md5');
  private md5 = '';
  private readonly sizer = new ChunkSizer();
  private readonly inFlight = new SentChunks();
  /** Bytes handed to the agent, and bytes it has written. */
  sent = 0;
  private acked = 0;
  state: 'opening' | 'open' | 'finishing' | 'ended' = 'opening';
  /** Why it ended, for a part that comes after (kept until the idle timer forgets it). */
  failure: HttpError | undefined;
  private waiter: { resolve(): void; reject(e: HttpError): void } | undefined;
  readonly whenOpen: Promise<void>;
  private part: Part | undefined;
  private idle: NodeJS.Timeout | undefined;

  constructor(
    readonly userId: string,
    readonly machine: string,
    readonly path: string,
    readonly size: number,
    overwrite: boolean,
    md: Metadata,
    peer: string,
    handler: StreamHandler,
    private readonly forget: (s: UploadSession) => void,
  ) {
    this.whenOpen = new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
    this.call = new HandlerCall<undefined, UploadReply>(undefined, md, peer, { write: (m) => this.onReply(m), end: () => {} });
    this.call.on('error', (st: unknown) => this.fail(httpErrorOf(st)));
    handler(this.call);
    this.send({ $case: 'open', value: { machine, path, size, mode: 0, overwrite, transferId: this.transferId } });
  }

  private send(msg: NonNullable<UploadMessage['msg']>): void {
    this.call.emit('data', { msg } satisfies UploadMessage);
  }

  private onReply(m: UploadReply): boolean {
    const msg = m.msg;
    if (this.state === 'ended') {
      // Given up while the handler was still authenticating: its cancel found
      // nothing to cancel then, so cancel what it has opened since.
      if (msg?.$case === 'opened') this.call.emit('cancelled', { discard: true });
      return true;
    }
    if (msg?.$case === 'opened') {
      if (msg.value.resumeOffset !== 0) {
        this.fail(new HttpError(500, 'INTERNAL', `the agent offered to resume a fresh upload at byte ${msg.value.resumeOffset}`));
        return true;
      }
      this.state = 'open';
      this.waiter?.resolve();
      this.waiter = undefined;
      this.armIdle();
    } else if (msg?.$case === 'ack') {
      this.inFlight.acked(msg.value.offset, this.sizer, performance.now());
      this.acked = msg.value.offset;
      this.part?.pump();
    } else if (msg?.$case === 'done') {
      const part = this.part;
      this.part = undefined;
      this.state = 'ended';
      clearTimeout(this.idle);
      this.forget(this);
      part?.finish(msg.value);
    }
    return true;
  }

  /** Ends the upload: the agent's side is cancelled, its partial file removed, whoever waits is told. */
  fail(e: HttpError): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.failure = e;
    clearTimeout(this.idle);
    // The handler sends FileCancel with discard (nothing, if the agent ended it): the console never resumes.
    this.call.emit('cancelled', { discard: true });
    const told = this.waiter !== undefined || this.part !== undefined;
    this.waiter?.reject(e);
    this.waiter = undefined;
    this.part?.fail(e);
    this.part = undefined;
    if (told) this.forget(this);
    else {
      // Between parts: the next part (or DELETE) is told why, or the timer forgets it.
      this.idle = setTimeout(() => this.forget(this), UPLOAD_IDLE_MS);
      this.idle.unref();
    }
  }

  private armIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(
      () => this.fail(new HttpError(408, 'DEADLINE_EXCEEDED', `no part came for ${UPLOAD_IDLE_MS / 1000} s: the upload was given up`)),
      UPLOAD_IDLE_MS,
    );
    this.idle.unref();
  }

  /** One PUT: the bytes from `offset` on, forwarded as the agent's window allows. */
  receive(req: http.IncomingMessage, res: http.ServerResponse, offset: number): void {
    if (this.state === 'ended') throw this.failure ?? new HttpError(410, 'CANCELLED', 'the upload has ended');
    if (this.state !== 'open') throw new HttpError(412, 'FAILED_PRECONDITION', `the upload is ${this.state === 'opening' ? 'not open yet' : 'finishing'}`);
    if (this.part) throw new HttpError(412, 'FAILED_PRECONDITION', 'another part of this upload is being sent', { offset: this.sent });
    if (offset !== this.sent) {
      throw new HttpError(412, 'FAILED_PRECONDITION', `the upload is at byte ${this.sent}, not ${offset}`, { offset: this.sent });
    }
    clearTimeout(this.idle);
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let ended = false;
    let over = false;
    const take = (n: number): Buffer => {
      pendingBytes -= n;
      if (pending[0].length >= n) {
        const head = pending[0];
        if (head.length === n) pending.shift();
        else pending[0] = head.subarray(n);
        return head.subarray(0, n);
      }
      const out = Buffer.allocUnsafe(n);
      for (let filled = 0; filled < n; ) {
        const head = pending[0];
        const k = Math.min(head.length, n - filled);
        head.copy(out, filled, 0, k);
        filled += k;
        if (k === head.length) pending.shift();
        else pending[0] = head.subarray(k);
      }
      return out;
    };
    const endOfPart = () => {
      if (this.sent < this.size) {
        over = true;
        this.part = undefined;
        this.armIdle();
        sendJson(res, 200, { offset: this.sent, size: this.size });
        return;
      }
      this.state = 'finishing';
      this.md5 = this.hash.digest('hex');
      // The agent's reply (done, or an error) answers this request.
      this.send({ $case: 'done', value: { requestId: 0, md5: Buffer.from(this.md5, 'hex'), size: this.size } });
    };
    const part: Part = {
      pump: () => {
        if (over || this.state !== 'open' || this.part !== part) return;
        while (pendingBytes > 0 && (ended || pendingBytes >= this.sizer.size)) {
          const n = Math.min(this.sizer.size, pendingBytes);
          const window = Math.min(MAX_UPLOAD_IN_FLIGHT, this.sizer.window);
          if (this.sent > this.acked && this.sent - this.acked + n > window) break; // an ack pumps again
          const data = take(n);
          this.hash.update(data);
          const at = this.sent;
          this.sent += n;
          this.inFlight.sent(at, n, performance.now());
          this.send({ $case: 'chunk', value: { requestId: 0, offset: at, data } });
          if (this.state !== 'open') return; // refused, and the upload failed
        }
        if (ended && pendingBytes === 0) return endOfPart();
        // Read on only while less than a chunk waits: a full window holds the browser back.
        if (pendingBytes >= this.sizer.size) req.pause();
        else req.resume();
      },
      fail: (e) => {
        if (over) return;
        over = true;
        req.resume(); // let the rest of the body drain, so the answer can be read
        sendError(res, e);
      },
      finish: (entry) => {
        if (over) return;
        over = true;
        sendJson(res, 200, { offset: this.size, size: this.size, entry, md5: this.md5 });
      },
    };
    this.part = part;
    const announced = Number(req.headers['content-length'] ?? 0);
    if (this.sent + announced > this.size) {
      return this.fail(new HttpError(400, 'INVALID_ARGUMENT', `${this.sent + announced} bytes sent of a file announced as ${this.size}: nothing is kept`));
    }
    req.on('data', (buf: Buffer) => {
      if (over) return;
      if (this.sent + pendingBytes + buf.length > this.size) {
        return this.fail(new HttpError(400, 'INVALID_ARGUMENT', `more bytes than the announced size of ${this.size}: nothing is kept`));
      }
      pending.push(buf);
      pendingBytes += buf.length;
      part.pump();
    });
    req.on('end', () => {
      ended = true;
      part.pump();
    });
    res.on('close', () => {
      if (over) return;
      // The page went away mid-part (or the web port cut a part that took
      // too long). What reached the agent stays; a new part may go on from
      // `sent`, or the page cancels, or the idle timer gives up.
      over = true;
      if (this.part === part) this.part = undefined;
      if (this.state === 'open') this.armIdle();
    });
  }
}

export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>();

  constructor(
    private readonly access: Access,
    private readonly handler: StreamHandler,
  ) {}

  async open(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): Promise<void> {
    const machine = machineParam(q);
    const size = byteParam(q, 'size');
    const overwrite = flagParam(q, 'overwrite');
    const md = metadataOf(req);
    const peer = peerOf(req);
    // Listened for before anything is awaited: a page gone while its token
    // is checked would otherwise leave an upload open on the agent (and its
    // partial file) until the idle timer.
    let gone = false;
    let session: UploadSession | undefined;
    res.on('close', () => {
      if (res.writableFinished) return;
      gone = true;
      session?.fail(new HttpError(410, 'CANCELLED', 'the page went away while the upload opened'));
    });
    // Who it is, to hold the upload for them; the handler checks what they may do (and audits it).
    const p = await this.authenticate(md, machine, peer);
    if (gone) return;
    let open = 0;
    for (const s of this.sessions.values()) if (s.userId === p.user.id && s.state !== 'ended') open++;
    if (open >= MAX_UPLOADS_PER_USER) {
      throw new HttpError(429, 'RESOURCE_EXHAUSTED', `${open} uploads are open already: finish or cancel one first`);
    }
    const s = new UploadSession(p.user.id, machine, q.get('path') ?? '', size, overwrite, md, peer, this.handler, (x) => {
      if (this.sessions.get(x.id) === x) this.sessions.delete(x.id);
    });
    this.sessions.set(s.id, s);
    session = s;
    await s.whenOpen;
    sendJson(res, 200, { id: s.id, offset: s.sent, size });
  }

  async part(req: http.IncomingMessage, res: http.ServerResponse, id: string, q: URLSearchParams): Promise<void> {
    const offset = byteParam(q, 'offset');
    const s = await this.owned(req, id);
    if (s.state === 'ended') this.sessions.delete(s.id); // a failed upload is told once
    s.receive(req, res, offset);
  }

  async cancel(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    const s = await this.owned(req, id);
    s.fail(new HttpError(410, 'CANCELLED', 'the upload was cancelled'));
    this.sessions.delete(s.id);
    res.writeHead(204, BASE_HEADERS);
    res.end();
  }

  close(): void {
    for (const s of this.sessions.values()) s.fail(new HttpError(503, 'UNAVAILABLE', 'the control plane is stopping'));
    this.sessions.clear();
  }

  /** The upload, if it is the caller's and they may still write to its machine. */
  private async owned(req: http.IncomingMessage, id: string): Promise<UploadSession> {
    const s = this.sessions.get(id);
    const peer = peerOf(req);
    const p = await this.authenticate(metadataOf(req), s?.machine ?? '', peer);
    if (!s || s.userId !== p.user.id) {
      throw new HttpError(404, 'NOT_FOUND', `no upload ${id}: it finished, was cancelled, or was given up after ${UPLOAD_IDLE_MS / 1000} s without a part`);
    }
    try {
      // A grant taken away mid-upload stops it.
      this.access.require(p, s.machine, AttachMode.OPERATOR);
    } catch (e) {
      this.refused(p, s.machine, e, peer);
      const err = httpErrorOf(e);
      s.fail(err);
      throw err;
    }
    return s;
  }

  private async authenticate(md: Metadata, machine: string, peer: string): Promise<Principal> {
    try {
      return await this.access.authenticate(md);
    } catch (e) {
      this.refused(undefined, machine, e, peer);
      throw e;
    }
  }

  /** Refusals are audited as fileService.ts audits them. */
  private refused(p: Principal | undefined, machine: string, e: unknown, peer: string): void {
    if (e instanceof ApiError && (e.code === 'PERMISSION_DENIED' || e.code === 'UNAUTHENTICATED')) {
      this.access.audit(p, { action: 'file-write', machine, detail: e.message, peer, ok: false });
    }
  }
}
