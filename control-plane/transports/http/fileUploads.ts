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
//   GET  /files/upload/ID            where it is ({offset}): after a part
//        failed, the page asks here and goes on from that offset
//   DELETE /files/upload/ID          give up
//
// The control plane cuts each part into FileChunks (ChunkSizer, as the SDK
// does), hashes them for FileDone's MD5 (it sees every byte), and reads the
// request only while the agent's window has room: a paused request is TCP
// backpressure to the browser.
//
// Resume. When the machine's connection drops (its grace period, a lost
// link, an agent restart) the agent keeps the partial file, and the upload
// here waits for it, up to the resume window (60 s), instead of failing:
// the part in progress is answered 503 {reconnecting: true}, and the page
// polls GET /files/upload/ID, which reopens the upload on the agent under
// the same transfer id. The agent answers with what its partial file holds
// (resumeOffset), and the page sends on from there. The MD5 sent with
// FileDone must still be of the whole file, so the bytes the agent has not
// acknowledged are kept (at most MAX_UPLOAD_IN_FLIGHT per upload) and hashed
// only as they are acknowledged, or, on a resume, up to resumeOffset. A
// drop while the agent verifies the finished file is not resumed (whether
// it arrived cannot be told from here) and says so.
//
// Refusals answer the request and change nothing else. Only its owner (the
// person whose token opened it) sees an upload: a share link, which carries
// the user who made it, is refused (403) before the upload is looked at;
// another user is told there is no such upload (404); the owner's own
// malformed part (a wrong offset, more bytes than are left) is refused alone
// and says where the upload stands. The one refusal that ends an upload is
// its owner's, once their right to write to the machine has been taken away.
//
// An upload that fails or is given up leaves nothing: the partial file is
// removed (FileCancel.discard). The exception is an upload given up while
// its machine is away: nothing can reach the agent then, and the partial
// file (hidden, 0600) goes with the agent's sweep of stale partial files.
import crypto from 'node:crypto';
import type http from 'node:http';
import { AttachMode, MAX_UPLOAD_IN_FLIGHT, type FileEntry, type UploadMessage, type UploadReply } from '../../../protocol';
import { ChunkSizer, SentChunks } from '../../../lib/chunkSizer';
// How the agent names a partial upload (the one place it is defined).
import type { Access, Principal } from '../../core/access';
import { ApiError } from '../../core/errors';
import type { ClientCalls } from '../../core/clientCalls';
import type { CallContext, Inbound } from '../../core/ports';
import { BASE_HEADERS, HttpCall, HttpError, byteParam, contextOf, flagParam, httpErrorOf, machineParam, peerOf, sendError, sendJson } from './fileHttp';

/** One open of the upload on the agent through the core (a new one after each reconnect). */
interface AgentCall {
  stream: HttpCall<UploadReply>;
  inbound: Inbound<UploadMessage>;
}

/** An open upload with no part arriving is given up after this long (the page went away). */
export const UPLOAD_IDLE_MS = 60_000;
/** How long an upload waits for its machine to come back (the clients' reconnect window). */
export const UPLOAD_RESUME_MS = 60_000;
/** How long one GET /files/upload/ID waits for the reopen on the agent before saying "still reconnecting". */
const STATUS_WAIT_MS = 15_000;
/** A finished upload's result, for a page whose last part's answer was lost. */
const KEEP_RESULT_MS = 60_000;
/** Uploads one user may have open at once (each holds a file open on an agent). */
export const MAX_UPLOADS_PER_USER = 16;

interface Part {
  pump(): void;
  fail(e: HttpError): void;
  finish(entry: FileEntry): void;
}

/** What a finished upload answers (the last part, or GET /files/upload/ID after it). */
interface Result {
  offset: number;
  size: number;
  entry: FileEntry;
  md5: string;
}

class UploadSession {
  readonly id = crypto.randomBytes(18).toString('base64url');
  /** Names the agent's partial file: the same id reopens it after a drop. */
  private readonly transferId = crypto.randomBytes(12).toString('hex');
  /** The agent upload now open (a new one after each reconnect). */
  private call!: AgentCall;
  /** MD5 of the bytes the agent has acknowledged (bytes 0..acked). */
  private readonly hash = crypto.createHash('md5');
  private md5 = '';
  private sizer = new ChunkSizer();
  private inFlight = new SentChunks();
  /** Sent and not acknowledged yet, in order from `acked`: hashed as acks come, rewound to on a resume. */
  private unacked: Buffer[] = [];
  /** Bytes handed to the agent, and bytes it has written. */
  sent = 0;
  private acked = 0;
  /** `lost`: the machine's connection dropped; waiting (up to the resume window) for it to come back. */
  state: 'opening' | 'open' | 'lost' | 'finishing' | 'ended' = 'opening';
  /** Why it ended, for a part that comes after (kept until the idle timer forgets it). */
  failure: HttpError | undefined;
  /** How it ended well, for a page that lost the answer to its last part. */
  result: Result | undefined;
  /** Times the upload went on after its machine came back. */
  resumes = 0;
  private waiter: { resolve(): void; reject(e: HttpError): void } | undefined;
  readonly whenOpen: Promise<void>;
  private part: Part | undefined;
  private idle: NodeJS.Timeout | undefined;
  /** While lost: the reopen under way (shared by every status request). */
  private reopening: { done: Promise<void>; settle(): void } | undefined;
  /** The resume window closed while a reopen was under way: its answer decides. */
  private expired = false;
  /** The agent call now open was cut off (UNAVAILABLE): the agent may keep a partial file nobody told it to discard. */
  private cutOff = false;

  constructor(
    readonly userId: string,
    readonly machine: string,
    readonly path: string,
    readonly size: number,
    private readonly overwrite: boolean,
    /** The caller a reopen presents: the latest request's (a page refreshes its token). */
    private ctx: CallContext,
    private readonly calls: ClientCalls,
    private readonly resumeMs: number,
    private readonly forget: (s: UploadSession) => void,
  ) {
    this.whenOpen = new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
    this.openOnAgent();
  }

  /** Opens (or, after a drop, reopens) the upload on the agent through the core, as a client stream would. */
  private openOnAgent(): void {
    const stream: HttpCall<UploadReply> = new HttpCall<UploadReply>(
      (m) => this.onReply(call, m),
      (e) => this.onCallError(call, e),
    );
    const call: AgentCall = { stream, inbound: this.calls.upload(this.ctx, stream) };
    this.call = call;
    this.cutOff = false;
    this.send({ $case: 'open', value: { machine: this.machine, path: this.path, size: this.size, mode: 0, overwrite: this.overwrite, transferId: this.transferId } });
  }

  private send(msg: NonNullable<UploadMessage['msg']>): void {
    this.call.inbound.message({ msg } satisfies UploadMessage);
  }

  private onCallError(call: AgentCall, e: HttpError): void {
    if (call !== this.call) return; // a call given up already
    if (e.code === 'UNAVAILABLE') this.cutOff = true;
    // The machine went away (UNAVAILABLE: its stream dropped, or it is not connected): wait for it, with what the agent kept.
    if (e.code === 'UNAVAILABLE' && (this.state === 'open' || this.state === 'lost')) return this.lose(e);
    if (e.code === 'UNAVAILABLE' && this.state === 'finishing') {
      return this.fail(
        new HttpError(
          503,
          'UNAVAILABLE',
          `the connection to machine ${this.machine} dropped while it verified the uploaded file, so whether ${this.path} arrived is not known: look before uploading it again`,
        ),
      );
    }
    this.fail(e);
  }

  private onReply(call: AgentCall, m: UploadReply): boolean {
    const msg = m.msg;
    if (this.state === 'ended' || call !== this.call) {
      // Given up while it was opening: its cancel found nothing to cancel
      // then, so cancel what it has opened since.
      if (msg?.$case === 'opened') call.inbound.gone('the upload was given up while it opened', this.state === 'ended');
      return true;
    }
    if (msg?.$case === 'opened') {
      const at = msg.value.resumeOffset;
      if (this.state === 'opening') {
        if (at !== 0) {
          this.fail(new HttpError(500, 'INTERNAL', `the agent offered to resume a fresh upload at byte ${at}`));
          return true;
        }
        this.state = 'open';
        this.waiter?.resolve();
        this.waiter = undefined;
      } else if (this.state === 'lost') {
        if (!this.resumeAt(at)) return true;
      }
      this.armIdle();
    } else if (msg?.$case === 'ack') {
      this.inFlight.acked(msg.value.offset, this.sizer, performance.now());
      this.hashTo(msg.value.offset);
      this.part?.pump();
    } else if (msg?.$case === 'done') {
      const part = this.part;
      this.part = undefined;
      this.state = 'ended';
      this.result = { offset: this.size, size: this.size, entry: msg.value, md5: this.md5 };
      clearTimeout(this.idle);
      // Kept a while for GET /files/upload/ID: a page that lost this answer learns the file arrived.
      this.idle = setTimeout(() => this.forget(this), KEEP_RESULT_MS);
      this.idle.unref();
      part?.finish(msg.value);
    }
    return true;
  }

  /** Hashes the acknowledged bytes up to `offset`, dropping them from `unacked`. */
  private hashTo(offset: number): void {
    while (this.acked < offset && this.unacked.length > 0) {
      const head = this.unacked[0];
      const n = Math.min(head.length, offset - this.acked);
      this.hash.update(n === head.length ? head : head.subarray(0, n));
      if (n === head.length) this.unacked.shift();
      else this.unacked[0] = head.subarray(n);
      this.acked += n;
    }
  }

  /** The machine's connection dropped: the part in progress is told so; the upload waits up to the resume window. */
  private lose(e: HttpError): void {
    const first = this.state !== 'lost';
    this.state = 'lost';
    this.settleReopen(); // a reopen that failed: the machine is still away
    const giveUp = () =>
      this.fail(
        new HttpError(
          503,
          'UNAVAILABLE',
          `machine ${this.machine} did not come back within ${Math.round(this.resumeMs / 1000)} s: the upload of ${this.path} was given up at byte ${this.acked} of ${this.size}`,
        ),
      );
    if (this.expired) return giveUp();
    if (first) {
      clearTimeout(this.idle);
      this.expired = false;
      this.idle = setTimeout(() => {
        // A reopen under way means the machine is back: let it finish (it ends here again if it fails).
        if (this.reopening) this.expired = true;
        else giveUp();
      }, this.resumeMs);
      this.idle.unref();
    }
    const part = this.part;
    this.part = undefined;
    part?.fail(this.reconnecting(e.message));
  }

  private reconnecting(why: string): HttpError {
    return new HttpError(503, 'UNAVAILABLE', why, { reconnecting: true, offset: this.acked, size: this.size });
  }

  /** The agent reopened the partial file holding `at` bytes: go on from there (false: it cannot be, and the upload failed). */
  private resumeAt(at: number): boolean {
    // It holds at least what it acknowledged, and never more than was sent.
    if (at < this.acked || at > this.sent) {
      this.fail(
        new HttpError(
          422,
          'DATA_LOSS',
          `machine ${this.machine} kept ${at} bytes of ${this.path}, not the ${this.acked} to ${this.sent} it was sent: upload the file again`,
        ),
      );
      return false;
    }
    this.hashTo(at);
    this.unacked = [];
    this.sent = this.acked = at;
    // Fresh measurements: the link may not be the one it was.
    this.sizer = new ChunkSizer();
    this.inFlight = new SentChunks();
    this.state = 'open';
    this.expired = false;
    this.resumes++;
    this.settleReopen();
    return true;
  }

  private settleReopen(): void {
    const r = this.reopening;
    this.reopening = undefined;
    r?.settle();
  }

  /**
   * Where the upload is, for a page whose part failed. While the machine is
   * away this reopens the upload on the agent (once for all who ask) and
   * waits a while for the answer.
   */
  async status(ctx: CallContext): Promise<Record<string, unknown>> {
    if (this.state === 'ended') {
      if (this.result) return { ...this.result, resumes: this.resumes };
      throw this.failure ?? new HttpError(410, 'CANCELLED', 'the upload has ended');
    }
    if (this.state === 'lost') {
      if (!this.reopening) {
        this.ctx = ctx;
        // Settled when the agent answers: opened (resumeAt), still away (lose), or refused (fail).
        let settle!: () => void;
        const done = new Promise<void>((r) => (settle = r));
        this.reopening = { done, settle };
        this.openOnAgent();
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.reopening?.done, new Promise((r) => (timer = setTimeout(r, STATUS_WAIT_MS)))]);
      clearTimeout(timer);
      if (this.state === 'lost') throw this.reconnecting(`machine ${this.machine} is not back yet`);
      return this.status(ctx);
    }
    if (this.state === 'finishing') {
      // The last part's answer is what was lost: the page asks again until the machine has verified the file (or not).
      throw new HttpError(503, 'UNAVAILABLE', `machine ${this.machine} is verifying ${this.path}`, { reconnecting: true, offset: this.sent, size: this.size });
    }
    return { offset: this.sent, size: this.size, state: this.state, resumes: this.resumes };
  }

  /** Ends the upload: the agent's side is cancelled, its partial file removed, whoever waits is told. */
  fail(e: HttpError): void {
    if (this.state === 'ended') return;
    const cutOff = this.cutOff;
    this.state = 'ended';
    this.failure = e;
    this.unacked = [];
    this.settleReopen();
    clearTimeout(this.idle);
    // The core sends FileCancel with discard (nothing, if the agent ended it or is away): it will not be resumed.
    this.call.inbound.gone(e.message, true);
    // Its agent call was cut off (the machine went away, or its file traffic
    // moved to another connection while the upload opened or was verified):
    // the cancel above reaches nothing. If the machine is there, open the
    // upload once more only to discard its partial file (the agent hands the
    // file to the newest open under a transfer id; onReply cancels an upload
    // that opens after the end). Still away: the agent's sweep of stale
    // partial files is left to remove it.
    if (cutOff) this.openOnAgent();
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

  /**
   * One PUT: the bytes from `offset` on, forwarded as the agent's window allows.
   * A malformed part (a wrong offset, more bytes than the file has left) is
   * refused on its own: the upload stays where it was, for a good part to go on.
   */
  receive(req: http.IncomingMessage, res: http.ServerResponse, offset: number): void {
    if (this.state === 'ended') throw this.failure ?? new HttpError(410, 'CANCELLED', 'the upload has ended');
    if (this.state === 'lost') throw this.reconnecting(`machine ${this.machine} is not back yet`);
    if (this.state !== 'open') throw new HttpError(412, 'FAILED_PRECONDITION', `the upload is ${this.state === 'opening' ? 'not open yet' : 'finishing'}`);
    if (this.part) throw new HttpError(412, 'FAILED_PRECONDITION', 'another part of this upload is being sent', { offset: this.sent });
    if (offset !== this.sent) {
      throw new HttpError(412, 'FAILED_PRECONDITION', `the upload is at byte ${this.sent}, not ${offset}`, { offset: this.sent });
    }
    const announced = Number(req.headers['content-length'] ?? 0);
    if (this.sent + announced > this.size) {
      throw new HttpError(
        400,
        'INVALID_ARGUMENT',
        `a part of ${announced} bytes from byte ${this.sent} goes past the announced size of ${this.size}: refused, the upload is still at byte ${this.sent}`,
        { offset: this.sent, size: this.size },
      );
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
      // Hashed so far: what the agent acknowledged; the rest is still in `unacked`. A copy: the session keeps its own.
      const whole = this.hash.copy();
      for (const b of this.unacked) whole.update(b);
      this.md5 = whole.digest('hex');
      // The agent's reply (done, or an error) answers this request.
      this.send({ $case: 'done', value: { requestId: 0, md5: Buffer.from(this.md5, 'hex'), size: this.size } });
    };
    /** Refuses this part alone: what reached the agent stays (as with a part cut short), the upload waits for the next. */
    const refuse = (e: HttpError) => {
      if (over) return;
      over = true;
      if (this.part === part) this.part = undefined;
      if (this.state === 'open') this.armIdle();
      req.resume(); // let the rest of the body drain, so the answer can be read
      sendError(res, e);
    };
    const part: Part = {
      pump: () => {
        if (over || this.state !== 'open' || this.part !== part) return;
        while (pendingBytes > 0 && (ended || pendingBytes >= this.sizer.size)) {
          const n = Math.min(this.sizer.size, pendingBytes);
          const window = Math.min(MAX_UPLOAD_IN_FLIGHT, this.sizer.window);
          if (this.sent > this.acked && this.sent - this.acked + n > window) break; // an ack pumps again
          const data = take(n);
          this.unacked.push(data);
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
    req.on('data', (buf: Buffer) => {
      if (over) return;
      if (this.sent + pendingBytes + buf.length > this.size) {
        // Found out as it streams (no Content-Length): the bytes still here are dropped.
        return refuse(
          new HttpError(400, 'INVALID_ARGUMENT', `more bytes than the announced size of ${this.size}: the part was refused at byte ${this.sent}`, {
            offset: this.sent,
            size: this.size,
          }),
        );
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
    private readonly calls: ClientCalls,
    /** How long an upload waits for its machine to come back. */
    private readonly resumeMs = UPLOAD_RESUME_MS,
  ) {}

  async open(req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): Promise<void> {
    const machine = machineParam(q);
    const size = byteParam(q, 'size');
    const overwrite = flagParam(q, 'overwrite');
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
    const ctx = await this.authenticate(req, machine);
    const p = ctx.principal;
    if (gone) return;
    // Before counting: a share link must not take (or be refused for) its maker's upload slots.
    this.personOnly(p, machine, peer);
    let open = 0;
    for (const s of this.sessions.values()) if (s.userId === p.user.id && s.state !== 'ended') open++;
    if (open >= MAX_UPLOADS_PER_USER) {
      throw new HttpError(429, 'RESOURCE_EXHAUSTED', `${open} uploads are open already: finish or cancel one first`);
    }
    const s = new UploadSession(p.user.id, machine, q.get('path') ?? '', size, overwrite, ctx, this.calls, this.resumeMs, (x) => {
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
    if (s.result) throw this.gone(id); // finished: it takes no more parts
    if (s.state === 'ended') this.sessions.delete(s.id); // a failed upload is told once
    s.receive(req, res, offset);
  }

  /** GET /files/upload/ID: where the upload is (see UploadSession.status). */
  async status(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    const s = await this.owned(req, id);
    try {
      sendJson(res, 200, await s.status(await this.authenticate(req, s.machine)));
    } finally {
      if (s.state === 'ended' && !s.result) this.sessions.delete(s.id); // a failed upload is told once
    }
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

  /**
   * The upload, if it is the caller's and they may still write to its machine.
   * A refusal answers this request only: the upload is its owner's, and
   * nobody else's request ends or changes it. A share link carries the user
   * who made it, but it is not that user: it is refused before the upload is
   * looked at. Only the owner, asking after their right to write was taken
   * away, ends it.
   */
  private async owned(req: http.IncomingMessage, id: string): Promise<UploadSession> {
    const s = this.sessions.get(id);
    const peer = peerOf(req);
    const p = (await this.authenticate(req, s?.machine ?? '')).principal;
    this.personOnly(p, s?.machine ?? '', peer);
    if (!s || s.userId !== p.user.id) throw this.gone(id);
    try {
      await this.access.require(p, s.machine, AttachMode.OPERATOR);
    } catch (e) {
      // The owner's grant was taken away mid-upload: that stops it.
      this.refused(p, s.machine, e, peer);
      const err = httpErrorOf(e);
      s.fail(err);
      throw err;
    }
    return s;
  }

  /** Uploads are held by a person's own token: a share link (or an agent's credential) is refused, and audited. */
  private personOnly(p: Principal, machine: string, peer: string): void {
    try {
      this.access.requireUser(p, 'upload files');
    } catch (e) {
      this.refused(p, machine, e, peer);
      throw e;
    }
  }

  private gone(id: string): HttpError {
    return new HttpError(404, 'NOT_FOUND', `no upload ${id}: it finished, was cancelled, or was given up after ${UPLOAD_IDLE_MS / 1000} s without a part`);
  }

  private async authenticate(req: http.IncomingMessage, machine: string): Promise<CallContext> {
    try {
      return await contextOf(this.access, req);
    } catch (e) {
      this.refused(undefined, machine, e, peerOf(req));
      throw e;
    }
  }

  /** Refusals are audited as the core's file calls audit them. */
  private refused(p: Principal | undefined, machine: string, e: unknown, peer: string): void {
    if (e instanceof ApiError && (e.code === 'PERMISSION_DENIED' || e.code === 'UNAUTHENTICATED')) {
      this.access.audit(p, { action: 'file-write', machine, detail: e.message, peer, ok: false });
    }
  }
}
