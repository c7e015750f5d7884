// The agent's file service, driven directly with the control plane's
// messages on a real file system (a temp dir), acking as a control plane
// would: unary operations, bad input, downloads and uploads (byte-exact,
// MD5-checked, resumed, corrupted), flow control, and the chunk sizer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentMessage, Encoded, FileDone, FileReply, FileRequest, FileType, MAX_CLIENT_MESSAGE } from '../protocol';
import { createLogger } from '../lib/logger';
import { ChunkSizer, MAX_FILE_CHUNK, MAX_FILE_WINDOW, MIN_FILE_CHUNK, SentChunks } from '../lib/chunkSizer';
import { FileService, FileServiceOptions } from '../app/agent/files/service';
import { PartialFiles, STALE_PARTIAL_MS, partialPath } from '../app/agent/files/upload';

type FileMsg = Extract<NonNullable<AgentMessage['msg']>, { $case: 'fileReply' | 'fileChunk' | 'fileAck' | 'fileDone' }>;
type Op = NonNullable<FileRequest['op']>;

/** A list request for the first page of the default size, or as given. */
const listOp = (p: string, pageSize = 0, pageToken = ''): Op => ({ $case: 'list', value: { path: p, pageSize, pageToken } });
const md5 = (b: Uint8Array) => crypto.createHash('md5').update(b).digest();
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

/** Waits (polling) until `ok()` holds; fails with `what` after `timeoutMs`. */
async function eventually(ok: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const end = Date.now() + timeoutMs; !ok(); await tick(10)) {
    if (Date.now() > end) assert.fail(`not in ${timeoutMs} ms: ${what}`);
  }
}

/** What the agent sent for one request, in order, with a way to wait for the next. */
class Mailbox {
  private q: FileMsg[] = [];
  private waiters: ((m: FileMsg) => void)[] = [];
  all: FileMsg[] = [];

  push(m: FileMsg): void {
    this.all.push(m);
    const w = this.waiters.shift();
    if (w) w(m);
    else this.q.push(m);
  }

  next(timeoutMs = 5000): Promise<FileMsg> {
    const m = this.q.shift();
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message from the agent in time')), timeoutMs);
      this.waiters.push((x) => {
        clearTimeout(t);
        resolve(x);
      });
    });
  }

  get pending(): number {
    return this.q.length;
  }
}

/** A FileService with a fake control plane around it. */
class Harness {
  readonly svc: FileService;
  connected = true;
  private boxes = new Map<number, Mailbox>();
  private nextId = 1;
  /** Messages for request ids nobody asked about. */
  stray: FileMsg[] = [];

  constructor(opts: Partial<FileServiceOptions> = {}) {
    this.svc = new FileService({
      send: (m) => {
        if (!this.connected) return false;
        // File chunks come pre-encoded (protocol/fastEncode.ts): decode them as the control plane would.
        const msg = (m instanceof Encoded ? AgentMessage.decode(m.bytes) : m).msg as FileMsg;
        const box = this.boxes.get(msg.value.requestId);
        if (box) box.push(msg);
        else this.stray.push(msg);
        return true;
      },
      logger: createLogger('test', 'silent'),
      ...opts,
    });
  }

  /** What the agent sent for request `id` so far. */
  mailbox(id: number): Mailbox {
    const box = this.boxes.get(id);
    assert.ok(box, `no request ${id}`);
    return box;
  }

  request(op: Op | undefined, id = this.nextId++): { id: number; box: Mailbox } {
    const box = this.boxes.get(id) ?? new Mailbox();
    this.boxes.set(id, box);
    this.svc.onMessage({ $case: 'fileRequest', value: { requestId: id, op } });
    return { id, box };
  }

  async unary(op: Op): Promise<FileReply> {
    const { box } = this.request(op);
    const m = await box.next();
    assert.equal(m.$case, 'fileReply');
    return m.value as FileReply;
  }

  /** Downloads `p`, acking each chunk (after `ackDelayMs`) like the control plane. */
  async download(
    p: string,
    o: { offset?: number; expectMtimeMs?: number; expectSize?: number; ackDelayMs?: number } = {},
  ): Promise<{ reply: FileReply; data: Buffer; done?: FileDone; maxInFlight: number; chunks: number[] }> {
    const offset = o.offset ?? 0;
    const { id, box } = this.request({
      $case: 'read',
      value: { path: p, offset, expectMtimeMs: o.expectMtimeMs ?? 0, expectSize: o.expectSize ?? 0 },
    });
    const first = await box.next();
    assert.equal(first.$case, 'fileReply');
    const reply = first.value as FileReply;
    const parts: Buffer[] = [];
    const chunks: number[] = [];
    if (reply.code) return { reply, data: Buffer.alloc(0), maxInFlight: 0, chunks };
    let next = offset;
    let acked = offset;
    let maxInFlight = 0;
    for (;;) {
      const m = await box.next();
      if (m.$case === 'fileDone') return { reply, data: Buffer.concat(parts), done: m.value, maxInFlight, chunks };
      if (m.$case === 'fileReply') return { reply: m.value, data: Buffer.concat(parts), maxInFlight, chunks };
      assert.equal(m.$case, 'fileChunk');
      const c = m.value as { offset: number; data: Uint8Array };
      assert.equal(c.offset, next, 'chunks arrive in order, without gaps');
      parts.push(Buffer.from(c.data));
      chunks.push(c.data.length);
      next += c.data.length;
      maxInFlight = Math.max(maxInFlight, next - acked);
      const end = next;
      setTimeout(() => {
        acked = Math.max(acked, end);
        this.svc.onMessage({ $case: 'fileAck', value: { requestId: id, offset: end } });
      }, o.ackDelayMs ?? 0);
    }
  }

  /**
   * Uploads `data` to `p` as a client would: chunks in order from the
   * reply's resume offset, at most `window` bytes unacknowledged, then done
   * with the MD5. `corrupt` may damage a chunk in transit; `stopAt` stops
   * (without done) once that many bytes are acknowledged.
   */
  async upload(
    p: string,
    data: Buffer,
    o: {
      transferId?: string;
      overwrite?: boolean;
      mode?: number;
      chunk?: number;
      corrupt?: (offset: number, chunk: Buffer) => Buffer;
      stopAt?: number;
    } = {},
  ): Promise<{ id: number; opened: FileReply; final?: FileReply; acked: number }> {
    const { id, box } = this.request({
      $case: 'write',
      value: { path: p, size: data.length, mode: o.mode ?? 0, overwrite: !!o.overwrite, transferId: o.transferId ?? 'T1' },
    });
    const first = await box.next();
    assert.equal(first.$case, 'fileReply');
    const opened = first.value as FileReply;
    if (opened.code) return { id, opened, acked: 0 };
    const chunk = o.chunk ?? 192 * 1024;
    const window = 1024 * 1024;
    let sent = opened.resumeOffset;
    let acked = opened.resumeOffset;
    const stopAt = o.stopAt ?? Infinity;
    const waitAck = async (): Promise<FileReply | undefined> => {
      const m = await box.next();
      if (m.$case === 'fileReply') return m.value as FileReply;
      assert.equal(m.$case, 'fileAck');
      acked = (m.value as { offset: number }).offset;
      return undefined;
    };
    while (sent < data.length && sent < stopAt) {
      while (sent - acked >= window) {
        const r = await waitAck();
        if (r) return { id, opened, final: r, acked };
      }
      const n = Math.min(chunk, data.length - sent, stopAt - sent);
      let piece: Buffer = Buffer.from(data.subarray(sent, sent + n));
      if (o.corrupt) piece = o.corrupt(sent, piece);
      this.svc.onMessage({ $case: 'fileChunk', value: { requestId: id, offset: sent, data: piece } });
      sent += n;
    }
    if (sent < data.length) {
      while (acked < sent) {
        const r = await waitAck();
        if (r) return { id, opened, final: r, acked };
      }
      return { id, opened, acked };
    }
    this.svc.onMessage({ $case: 'fileDone', value: { requestId: id, md5: md5(data), size: data.length } });
    for (;;) {
      const r = await waitAck();
      if (r) return { id, opened, final: r, acked };
    }
  }
}

let tmp: string;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-files-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh directory under the temp dir. */
function dir(name: string): string {
  const d = path.join(tmp, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function randomBytes(n: number): Buffer {
  return crypto.randomBytes(n);
}

describe('ChunkSizer', () => {
  /** Feeds a sizer acks from a simple link: `rate` bytes/ms, round trip `rtt` ms, one chunk per ack. */
  function drive(s: ChunkSizer, rate: number, rtt: number, acks: number, start = 0): number {
    let now = start;
    for (let i = 0; i < acks; i++) {
      now += s.size / rate;
      s.acked(s.size, rtt, now);
    }
    return now;
  }

  it('starts at the smallest chunk with a two-chunk window', () => {
    const s = new ChunkSizer({ now: () => 0 });
    assert.equal(s.size, MIN_FILE_CHUNK);
    assert.equal(s.window, 2 * MIN_FILE_CHUNK);
  });

  it('grows under fast acks toward ~15 ms of data, gradually, within 64 KiB-2 MiB', () => {
    const s = new ChunkSizer({ now: () => 0 });
    // 40 MB/s, 2 ms round trip: 15 ms of data is ~600 KB.
    let now = 0;
    let prev = s.size;
    for (let i = 0; i < 40; i++) {
      now += s.size / 40_000;
      s.acked(s.size, 2, now);
      assert.ok(s.size <= 2 * prev, 'at most doubles per ack');
      prev = s.size;
    }
    assert.ok(s.size > 400_000 && s.size < 800_000, `chunk ${s.size}`);
    assert.ok(s.window >= 2 * s.size && s.window <= MAX_FILE_WINDOW, `window ${s.window}`);

    // A very fast link: capped at 2 MiB and the window cap.
    const fast = new ChunkSizer();
    drive(fast, 500_000, 1, 200);
    assert.equal(fast.size, MAX_FILE_CHUNK);
    assert.equal(fast.window, MAX_FILE_WINDOW);
    // A crawling link: never below 64 KiB, window two chunks.
    const slow = new ChunkSizer();
    drive(slow, 10, 80, 20);
    assert.equal(slow.size, MIN_FILE_CHUNK);
    assert.equal(slow.window, 2 * MIN_FILE_CHUNK);
    // Nonsense is ignored.
    slow.acked(-5, 1, 1e9);
    slow.acked(100, NaN, 1e9);
    slow.acked(100, 1, Infinity);
    assert.equal(slow.size, MIN_FILE_CHUNK);
  });

  it('halves the chunk when the round trip rises (a congested link) and recovers after', () => {
    const s = new ChunkSizer();
    let now = drive(s, 100_000, 1, 40);
    const big = s.size;
    assert.ok(big >= 1024 * 1024, `grew to ${big}`);
    // Same throughput, but round trips of 300 ms: someone else's traffic fills the queue.
    const sizes: number[] = [];
    const cuts: number[] = [];
    for (let i = 0; i < 150; i++) {
      now += 20;
      const before = s.size;
      s.acked(s.size, 300, now);
      if (s.size < before) cuts.push(now);
      sizes.push(s.size);
    }
    assert.equal(s.size, MIN_FILE_CHUNK, `shrank to the minimum: ${sizes.join(',')}`);
    assert.ok(sizes[0] <= big / 2, 'the first congested ack already cuts');
    for (let i = 2; i < cuts.length; i++) assert.ok(cuts[i] - cuts[i - 1] >= 200, 'at most one cut per round trip');
    // Congestion gone: it grows again.
    now = drive(s, 100_000, 1, 40, now);
    assert.ok(s.size >= 1024 * 1024, `recovered to ${s.size}`);
  });

  it('on a simulated link it fills the pipe and keeps the standing queue small', () => {
    // 10 MB/s, 40 ms base round trip: one chunk at a time through a FIFO link.
    const rate = 10_000; // bytes per ms
    const baseRtt = 40;
    const s = new ChunkSizer();
    const log = new SentChunks();
    let now = 0;
    let sent = 0;
    let acked = 0;
    let linkFree = 0; // when the link finishes what is queued on it
    const acks: { at: number; offset: number }[] = [];
    let maxQueueMs = 0;
    let ackedAt10s = 0;
    while (now < 20_000) {
      while (sent - acked + s.size <= s.window || sent === acked) {
        const n = s.size;
        const start = Math.max(now, linkFree);
        maxQueueMs = Math.max(maxQueueMs, start - now);
        linkFree = start + n / rate;
        log.sent(sent, n, now);
        sent += n;
        acks.push({ at: linkFree + baseRtt, offset: sent });
      }
      const a = acks.shift()!;
      now = a.at;
      log.acked(a.offset, s, now);
      acked = a.offset;
      if (!ackedAt10s && now >= 10_000) ackedAt10s = acked;
    }
    const throughput = (acked - ackedAt10s) / (now - 10_000);
    assert.ok(throughput > 0.9 * rate, `throughput ${throughput.toFixed(0)} B/ms of ${rate}`);
    // The queue ahead of a keystroke: about one round trip plus QUEUE_MS, far below the cap's 400 ms.
    assert.ok(maxQueueMs < 2 * baseRtt + 60, `standing queue ${maxQueueMs.toFixed(0)} ms`);
    assert.ok(s.size >= 100_000 && s.size <= 200_000, `chunk ${s.size} (~15 ms of data)`);
  });
});

describe('file service: unary operations', () => {
  let h: Harness;
  let d: string;
  before(() => {
    d = dir('unary');
    fs.writeFileSync(path.join(d, 'b.txt'), 'hello');
    fs.mkdirSync(path.join(d, 'a-dir'));
    fs.symlinkSync('b.txt', path.join(d, 'c-link'));
    h = new Harness({ home: d });
  });

  it('list: sorted entries with type, size, mode, mtime and symlink targets', async () => {
    const r = await h.unary(listOp(d));
    assert.equal(r.code, '');
    assert.deepEqual(
      r.entries.map((e) => [e.name, e.type, e.linkTarget]),
      [
        ['a-dir', FileType.FILE_TYPE_DIRECTORY, ''],
        ['b.txt', FileType.FILE_TYPE_FILE, ''],
        ['c-link', FileType.FILE_TYPE_SYMLINK, 'b.txt'],
      ],
    );
    const b = r.entries[1];
    assert.equal(b.size, 5);
    assert.equal(b.mode, fs.statSync(path.join(d, 'b.txt')).mode & 0o7777);
    assert.ok(Math.abs(b.mtimeMs - Date.now()) < 60_000);
    const f = await h.unary(listOp(path.join(d, 'b.txt')));
    assert.equal(f.code, 'FAILED_PRECONDITION');
    assert.match(f.message, /not a directory: .*b\.txt/);
    const m = await h.unary(listOp(path.join(d, 'nope')));
    assert.equal(m.code, 'NOT_FOUND');
    assert.match(m.message, /nope/);
  });

  it('stat: lstat, named as asked; relative paths and ~ are under home', async () => {
    const r = await h.unary({ $case: 'stat', value: { path: 'c-link' } });
    assert.equal(r.code, '');
    assert.equal(r.entry!.name, 'c-link');
    assert.equal(r.entry!.type, FileType.FILE_TYPE_SYMLINK);
    assert.equal(r.entry!.linkTarget, 'b.txt');
    const t = await h.unary({ $case: 'stat', value: { path: '~/b.txt' } });
    assert.equal(t.entry!.size, 5);
    const home = await h.unary({ $case: 'stat', value: { path: '~' } });
    assert.equal(home.entry!.type, FileType.FILE_TYPE_DIRECTORY);
    const m = await h.unary({ $case: 'stat', value: { path: 'x/y' } });
    assert.equal(m.code, 'NOT_FOUND');
    assert.ok(m.message.includes(path.join(d, 'x/y')), m.message);
  });

  it('mkdir: plain, existing, with and without parents', async () => {
    const r = await h.unary({ $case: 'mkdir', value: { path: path.join(d, 'm1'), parents: false } });
    assert.equal(r.code, '');
    assert.equal(r.entry!.type, FileType.FILE_TYPE_DIRECTORY);
    assert.ok(fs.statSync(path.join(d, 'm1')).isDirectory());
    const again = await h.unary({ $case: 'mkdir', value: { path: path.join(d, 'm1'), parents: false } });
    assert.equal(again.code, 'ALREADY_EXISTS');
    const p = await h.unary({ $case: 'mkdir', value: { path: path.join(d, 'm1'), parents: true } });
    assert.equal(p.code, '', 'mkdir -p of an existing directory is fine');
    const noParent = await h.unary({ $case: 'mkdir', value: { path: path.join(d, 'm2/x/y'), parents: false } });
    assert.equal(noParent.code, 'NOT_FOUND');
    assert.match(noParent.message, /no such directory: .*m2\/x/);
    const deep = await h.unary({ $case: 'mkdir', value: { path: path.join(d, 'm2/x/y'), parents: true } });
    assert.equal(deep.code, '');
    assert.ok(fs.statSync(path.join(d, 'm2/x/y')).isDirectory());
    const overFile = await h.unary({ $case: 'mkdir', value: { path: path.join(d, 'b.txt'), parents: true } });
    assert.equal(overFile.code, 'ALREADY_EXISTS');
  });

  it('remove: files, empty directories, non-empty only with recursive, never following symlinks', async () => {
    const r = dir('unary-rm');
    fs.writeFileSync(path.join(r, 'f'), 'x');
    fs.mkdirSync(path.join(r, 'empty'));
    fs.mkdirSync(path.join(r, 'full/sub'), { recursive: true });
    fs.writeFileSync(path.join(r, 'full/sub/g'), 'y');
    const outside = dir('unary-rm-outside');
    fs.writeFileSync(path.join(outside, 'precious'), 'keep me');
    fs.symlinkSync(outside, path.join(r, 'full/link-out'));

    assert.equal((await h.unary({ $case: 'remove', value: { path: path.join(r, 'f'), recursive: false } })).code, '');
    assert.ok(!fs.existsSync(path.join(r, 'f')));
    assert.equal((await h.unary({ $case: 'remove', value: { path: path.join(r, 'empty'), recursive: false } })).code, '');
    const nr = await h.unary({ $case: 'remove', value: { path: path.join(r, 'full'), recursive: false } });
    assert.equal(nr.code, 'FAILED_PRECONDITION');
    assert.match(nr.message, /directory not empty: .*full \(use -r\)/);
    assert.ok(fs.existsSync(path.join(r, 'full/sub/g')), 'nothing removed');
    const rr = await h.unary({ $case: 'remove', value: { path: path.join(r, 'full'), recursive: true } });
    assert.equal(rr.code, '');
    assert.ok(!fs.existsSync(path.join(r, 'full')));
    assert.equal(fs.readFileSync(path.join(outside, 'precious'), 'utf8'), 'keep me', 'the symlink was removed, not followed');
    const m = await h.unary({ $case: 'remove', value: { path: path.join(r, 'gone'), recursive: true } });
    assert.equal(m.code, 'NOT_FOUND');
    const slash = await h.unary({ $case: 'remove', value: { path: '/', recursive: true } });
    assert.equal(slash.code, 'FAILED_PRECONDITION');
  });

  it('rename: overwrite only when asked', async () => {
    const r = dir('unary-mv');
    fs.writeFileSync(path.join(r, 'a'), 'A');
    fs.writeFileSync(path.join(r, 'b'), 'B');
    const refused = await h.unary({ $case: 'rename', value: { from: path.join(r, 'a'), to: path.join(r, 'b'), overwrite: false } });
    assert.equal(refused.code, 'ALREADY_EXISTS');
    assert.match(refused.message, /already exists: .*\/b/);
    assert.equal(fs.readFileSync(path.join(r, 'b'), 'utf8'), 'B');
    const ok = await h.unary({ $case: 'rename', value: { from: path.join(r, 'a'), to: path.join(r, 'c'), overwrite: false } });
    assert.equal(ok.code, '');
    assert.equal(ok.entry!.name, path.join(r, 'c'));
    const over = await h.unary({ $case: 'rename', value: { from: path.join(r, 'c'), to: path.join(r, 'b'), overwrite: true } });
    assert.equal(over.code, '');
    assert.equal(fs.readFileSync(path.join(r, 'b'), 'utf8'), 'A');
    const missing = await h.unary({ $case: 'rename', value: { from: path.join(r, 'zz'), to: path.join(r, 'y'), overwrite: false } });
    assert.equal(missing.code, 'NOT_FOUND');
    assert.match(missing.message, /zz/);
  });

  it('empty paths and NUL bytes are INVALID_ARGUMENT', async () => {
    for (const p of ['', 'a\0b']) {
      for (const op of [
        { $case: 'stat', value: { path: p } },
        listOp(p),
        { $case: 'read', value: { path: p, offset: 0, expectMtimeMs: 0, expectSize: 0 } },
        { $case: 'write', value: { path: p, size: 1, mode: 0, overwrite: false, transferId: 'x' } },
      ] as Op[]) {
        const { box } = h.request(op);
        const r = (await box.next()).value as FileReply;
        assert.equal(r.code, 'INVALID_ARGUMENT', `${op.$case} ${JSON.stringify(p)}`);
      }
    }
  });
});

describe('file service: paging a directory', () => {
  let h: Harness;
  before(() => {
    h = new Harness();
  });

  /** Makes `names` as empty files in a new directory. */
  function populated(name: string, names: string[]): string {
    const d = dir(name);
    for (const n of names) fs.closeSync(fs.openSync(path.join(d, n), 'w'));
    return d;
  }
  const numbered = (n: number, prefix = 'f') => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, '0')}`);

  /** Every page of `d`, `size` entries asked for each; the replies as they came. */
  async function pagesOf(d: string, size: number, between?: (page: number) => void | Promise<void>): Promise<FileReply[]> {
    const out: FileReply[] = [];
    let token = '';
    do {
      const r = await h.unary(listOp(d, size, token));
      assert.equal(r.code, '', r.message);
      out.push(r);
      token = r.nextPageToken;
      await between?.(out.length);
      assert.ok(out.length < 10_000, 'paging never ends');
    } while (token);
    return out;
  }
  const namesOf = (rs: FileReply[]) => rs.flatMap((r) => r.entries.map((e) => e.name));

  it('pages cover the directory once, in bytewise (UTF-8) order, with its total on every page', async () => {
    // UTF-16 order (JavaScript's default sort) would put the emoji before U+E000; UTF-8 bytes put it last.
    const odd = ['B', 'a', 'é', '\uE000x', '😀', '.dot', 'a b', 'Z'];
    const names = [...numbered(20), ...odd];
    const d = populated('paging-order', names);
    fs.mkdirSync(path.join(d, 'sub'));
    names.push('sub');
    const bytewise = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    const rs = await pagesOf(d, 3);
    assert.deepEqual(namesOf(rs), bytewise);
    assert.equal(rs.length, Math.ceil(names.length / 3));
    assert.deepEqual(rs.map((r) => r.entries.length), [...Array(rs.length - 1).fill(3), names.length - 3 * (rs.length - 1)]);
    assert.ok(rs.every((r) => r.totalEntries === names.length));
    assert.ok(rs.slice(0, -1).every((r) => r.nextPageToken !== ''), 'every page but the last has a token');
    assert.equal(rs.find((r) => r.entries.some((e) => e.name === 'sub'))!.entries.find((e) => e.name === 'sub')!.type, FileType.FILE_TYPE_DIRECTORY);
  });

  it('page_size: 0 is the whole directory without a token (a client from before paging) and 1000 with one, more than 5000 is 5000, 1 is 1; an empty directory is one empty last page', async () => {
    const names = numbered(6001);
    const d = populated('paging-sizes', names);
    const size = async (asked: number) => {
      const r = await h.unary(listOp(d, asked));
      assert.equal(r.code, '', r.message);
      assert.equal(r.totalEntries, 6001);
      assert.deepEqual(r.entries.map((e) => e.name), names.slice(0, r.entries.length), 'the first names, in order');
      return r.entries.length;
    };
    assert.equal(await size(0), 6001);
    const afterOne = await h.unary(listOp(d, 1));
    const withToken = await h.unary(listOp(d, 0, afterOne.nextPageToken));
    assert.deepEqual(withToken.entries.map((e) => e.name), names.slice(1, 1001));
    assert.equal(await size(1), 1);
    assert.equal(await size(5000), 5000);
    assert.equal(await size(5001), 5000);
    assert.equal(await size(0xffffffff), 5000);
    const all = await pagesOf(d, 1000);
    assert.equal(all.length, 7);
    assert.deepEqual(namesOf(all), names);
    const empty = await h.unary(listOp(dir('paging-empty')));
    assert.deepEqual([empty.code, empty.entries.length, empty.nextPageToken, empty.totalEntries], ['', 0, '', 0]);
  });

  it('entries added and removed between pages: those there throughout come exactly once, the removed never', async () => {
    const names = numbered(100, 'n');
    const d = populated('paging-changes', names);
    const gone = new Set(['n00010', 'n00029', 'n00050', 'n00099']); // listed already; the first page's last name; ahead; the very last
    const rs = await pagesOf(d, 30, async (page) => {
      if (page !== 1) return;
      // Past a coarse clock tick, so the directory's mtime shows the change (the agent then reads it again).
      await tick(20);
      for (const n of gone) fs.rmSync(path.join(d, n));
      for (const n of ['a-new', 'n00029x', 'n00060x', 'z-new']) fs.closeSync(fs.openSync(path.join(d, n), 'w'));
    });
    const listed = namesOf(rs);
    assert.equal(new Set(listed).size, listed.length, 'no name twice');
    for (const n of names) {
      const expected = n <= 'n00029' ? 1 : gone.has(n) ? 0 : 1;
      assert.equal(listed.filter((x) => x === n).length, expected, n);
    }
    assert.ok(!listed.includes('a-new'), 'an entry added behind the cursor cannot be listed');
    for (const n of ['n00029x', 'n00060x', 'z-new']) assert.ok(listed.includes(n), `${n}, added ahead of the cursor, is listed`);
    assert.deepEqual(listed, [...listed].sort(), 'still in order');
  });

  it('a bad page token is INVALID_ARGUMENT with a clear message and changes nothing', async () => {
    const d = populated('paging-tokens', numbered(50));
    const other = populated('paging-tokens-other', numbered(50));
    const first = await h.unary(listOp(d, 10));
    const good = first.nextPageToken;
    const second = await h.unary(listOp(d, 10, good));
    assert.deepEqual(second.entries.map((e) => e.name), numbered(20).slice(10));
    const flipped = good.slice(0, 5) + (good[5] === 'A' ? 'B' : 'A') + good.slice(6);
    // The same token continuing after another name (f00000 instead of f00009): only its MAC can tell.
    const raw = Buffer.from(good, 'base64url');
    const at = raw.indexOf('f00009');
    assert.ok(at > 0, 'the token carries the last name');
    raw.write('f00000', at);
    const renamed = raw.toString('base64url');
    const restarted = new Harness(); // another agent process: another key
    const fromElsewhere = (await restarted.unary(listOp(d, 10))).nextPageToken;
    const cases: [string, string, RegExp][] = [
      ['not base64url', '!!not a token!!', /not a page token/],
      ['too short', 'AAAA', /not a page token/],
      ['forged (random bytes)', crypto.randomBytes(40).toString('base64url'), /not a page token|not issued by this agent/],
      ['altered', flipped, /not a page token|not issued by this agent/],
      ['pointing at another name', renamed, /not issued by this agent/],
      ['from another agent process', fromElsewhere, /not issued by this agent/],
      ['too long', 'A'.repeat(5000), /not a page token/],
    ];
    for (const [what, token, re] of cases) {
      const r = await h.unary(listOp(d, 10, token));
      assert.equal(r.code, 'INVALID_ARGUMENT', what);
      assert.match(r.message, /invalid page token for .*paging-tokens/, what);
      assert.match(r.message, re, `${what}: ${r.message}`);
      assert.match(r.message, /list again without a token/, what);
      assert.equal(r.entries.length, 0, what);
    }
    const misplaced = await h.unary(listOp(other, 10, good));
    assert.equal(misplaced.code, 'INVALID_ARGUMENT');
    assert.match(misplaced.message, /another directory/);
    // Nothing changed: the good token still continues where it did.
    const again = await h.unary(listOp(d, 10, good));
    assert.deepEqual(again.entries, second.entries);
    assert.equal(again.nextPageToken, second.nextPageToken);
  });

  it('a page ends early when its reply would outgrow a message; the next continues after it', async () => {
    // 1200 symlinks with 4000-byte targets: ~4.8 MB of entries, more than one client message holds.
    const d = dir('paging-budget');
    const target = 't'.repeat(4000);
    const names = numbered(1200, 'l');
    for (const n of names) fs.symlinkSync(target, path.join(d, n));
    const rs = await pagesOf(d, 5000);
    assert.ok(rs.length >= 2, `${rs.length} page(s)`);
    assert.ok(rs[0].entries.length > 100 && rs[0].entries.length < 1200, `first page: ${rs[0].entries.length} entries`);
    for (const r of rs) assert.ok(FileReply.encode(r).finish().length < MAX_CLIENT_MESSAGE, 'each page fits a client message');
    assert.deepEqual(namesOf(rs), names);
    assert.ok(rs.every((r) => r.entries.every((e) => e.linkTarget === target)));
  });
});

describe('file service: the file root', () => {
  let h: Harness;
  let root: string;
  let outside: string;
  before(() => {
    const base = dir('rooted');
    root = path.join(base, 'root');
    outside = path.join(base, 'outside');
    fs.mkdirSync(path.join(root, 'in'), { recursive: true });
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'secret'), 'no');
    fs.writeFileSync(path.join(root, 'in/ok'), 'yes');
    fs.symlinkSync(outside, path.join(root, 'escape'));
    fs.symlinkSync(path.join(root, 'in'), path.join(root, 'inner-link'));
    h = new Harness({ home: root, root });
  });

  it('paths inside the root work, including through symlinks that stay inside', async () => {
    assert.equal((await h.unary({ $case: 'stat', value: { path: path.join(root, 'in/ok') } })).code, '');
    assert.equal((await h.unary({ $case: 'stat', value: { path: 'in/ok' } })).code, '');
    assert.equal((await h.unary(listOp(path.join(root, 'inner-link')))).code, '');
    const dl = await h.download(path.join(root, 'inner-link/ok'));
    assert.equal(dl.data.toString(), 'yes');
    // The link itself may be removed: it is inside the root even if its target were not.
    assert.equal((await h.unary({ $case: 'stat', value: { path: path.join(root, 'escape') } })).code, '');
  });

  it('anything resolving outside is OUT_OF_RANGE: absolute, via .., via a symlink', async () => {
    const cases: Op[] = [
      { $case: 'stat', value: { path: path.join(outside, 'secret') } },
      { $case: 'stat', value: { path: '../outside/secret' } },
      listOp(path.join(root, 'in/../../outside')),
      { $case: 'read', value: { path: path.join(root, 'escape/secret'), offset: 0, expectMtimeMs: 0, expectSize: 0 } },
      listOp(path.join(root, 'escape')),
      { $case: 'write', value: { path: path.join(root, 'escape/new'), size: 1, mode: 0, overwrite: false, transferId: 'x' } },
      { $case: 'mkdir', value: { path: path.join(root, 'escape/newdir/x'), parents: true } },
      { $case: 'remove', value: { path: path.join(root, 'escape/secret'), recursive: false } },
      { $case: 'rename', value: { from: path.join(root, 'in/ok'), to: path.join(root, 'escape/stolen'), overwrite: false } },
      { $case: 'stat', value: { path: '/' } },
    ];
    for (const op of cases) {
      const { box } = h.request(op);
      const r = (await box.next()).value as FileReply;
      assert.equal(r.code, 'OUT_OF_RANGE', `${JSON.stringify(op)}: ${r.code} ${r.message}`);
      assert.match(r.message, /outside the agent's file root/);
    }
    assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'no');
    assert.deepEqual(fs.readdirSync(outside), ['secret'], 'nothing created outside');
    const rm = await h.unary({ $case: 'remove', value: { path: root, recursive: true } });
    assert.equal(rm.code, 'FAILED_PRECONDITION', 'the root itself is never removed');
  });
});

describe('file service: special files and permissions', () => {
  it('a device or a directory is refused for read and write', async () => {
    const h = new Harness();
    const d = dir('special');
    const r = await h.download('/dev/null');
    assert.equal(r.reply.code, 'FAILED_PRECONDITION');
    assert.match(r.reply.message, /not a regular file: \/dev\/null is a character device/);
    const w = await h.upload('/dev/null', Buffer.from('x'), { overwrite: true });
    assert.equal(w.opened.code, 'FAILED_PRECONDITION');
    assert.match(w.opened.message, /not a regular file: \/dev\/null is a character device/);
    const rd = await h.download(d);
    assert.equal(rd.reply.code, 'FAILED_PRECONDITION');
    assert.match(rd.reply.message, /is a directory/);
    const wd = await h.upload(d, Buffer.from('x'), { overwrite: true });
    assert.equal(wd.opened.code, 'FAILED_PRECONDITION');
    assert.match(wd.opened.message, /is a directory/);
    const nodir = await h.upload(path.join(d, 'no/such/file'), Buffer.from('x'));
    assert.equal(nodir.opened.code, 'NOT_FOUND');
    assert.match(nodir.opened.message, /no such directory/);
  });

  // Root bypasses permission bits, and these tests run as root here: the
  // service then runs in a child process as `nobody`, so the checks are real.
  it('permission denied is PERMISSION_DENIED naming the path', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-perm-'));
    try {
      fs.chmodSync(base, 0o755);
      const locked = path.join(base, 'locked');
      const readonly = path.join(base, 'readonly');
      fs.mkdirSync(locked);
      fs.mkdirSync(readonly);
      fs.writeFileSync(path.join(locked, 'f'), 'x');
      fs.writeFileSync(path.join(readonly, 'unreadable'), 'x');
      fs.chmodSync(path.join(readonly, 'unreadable'), 0o000);
      fs.chmodSync(locked, 0o000);
      fs.chmodSync(readonly, 0o555);
      const ops: Op[] = [
        listOp(locked),
        { $case: 'read', value: { path: path.join(locked, 'f'), offset: 0, expectMtimeMs: 0, expectSize: 0 } },
        { $case: 'read', value: { path: path.join(readonly, 'unreadable'), offset: 0, expectMtimeMs: 0, expectSize: 0 } },
        { $case: 'write', value: { path: path.join(readonly, 'new'), size: 1, mode: 0, overwrite: false, transferId: 'p1' } },
        { $case: 'mkdir', value: { path: path.join(readonly, 'sub'), parents: false } },
        { $case: 'remove', value: { path: path.join(readonly, 'unreadable'), recursive: false } },
      ];
      const dist = path.resolve(__dirname, '..');
      const script = `
        const { FileService } = require(${JSON.stringify(path.join(dist, 'app/agent/files/service.js'))});
        const { createLogger } = require(${JSON.stringify(path.join(dist, 'lib/logger.js'))});
        const ops = ${JSON.stringify(ops)};
        const replies = [];
        const svc = new FileService({ logger: createLogger('t', 'silent'), send: (m) => {
          if (m.msg?.$case === 'fileReply') replies.push(m.msg.value); // file chunks come as Encoded (no .msg)
          if (replies.length === ops.length) { console.log(JSON.stringify(replies)); process.exit(0); }
          return true;
        } });
        ops.forEach((op, i) => svc.onMessage({ $case: 'fileRequest', value: { requestId: i + 1, op } }));
        setTimeout(() => { console.error('timed out'); process.exit(1); }, 5000);
      `;
      const asRoot = process.getuid?.() === 0;
      const child = spawn(process.execPath, ['-e', script], asRoot ? { uid: 65534, gid: 65534, cwd: '/' } : {});
      let out = '';
      let err = '';
      child.stdout.on('data', (b) => (out += b));
      child.stderr.on('data', (b) => (err += b));
      const code = await new Promise((r) => child.on('exit', r));
      assert.equal(code, 0, err);
      const replies = (JSON.parse(out) as FileReply[]).sort((a, b) => a.requestId - b.requestId);
      for (const [i, r] of replies.entries()) {
        assert.equal(r.code, 'PERMISSION_DENIED', `${ops[i].$case}: ${r.code} ${r.message}`);
        assert.match(r.message, /^permission denied: \//);
      }
      assert.deepEqual(fs.readdirSync(readonly).sort(), ['unreadable'], 'nothing created, nothing removed');
    } finally {
      fs.chmodSync(path.join(base, 'locked'), 0o755);
      fs.chmodSync(path.join(base, 'readonly'), 0o755);
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});

describe('file service: bad input changes nothing else', () => {
  it('chunk, ack, done and cancel for unknown ids are ignored; a reused live id is refused', async () => {
    const h = new Harness();
    const d = dir('bad');
    const f = path.join(d, 'big');
    fs.writeFileSync(f, randomBytes(2 * 1024 * 1024));
    h.svc.onMessage({ $case: 'fileChunk', value: { requestId: 999, offset: 0, data: Buffer.from('x') } });
    h.svc.onMessage({ $case: 'fileAck', value: { requestId: 999, offset: 10 } });
    h.svc.onMessage({ $case: 'fileDone', value: { requestId: 999, md5: Buffer.alloc(16), size: 1 } });
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: 999, reason: 'x', discard: false } });
    await tick(20);
    assert.deepEqual(h.stray, [], 'nothing answered');

    // A download nobody acks, then a second request with its id.
    const { id, box } = h.request({ $case: 'read', value: { path: f, offset: 0, expectMtimeMs: 0, expectSize: 0 } });
    assert.equal(((await box.next()).value as FileReply).code, '');
    const dup = h.request({ $case: 'stat', value: { path: f } }, id);
    const r = (await dup.box.next()).value as FileReply;
    assert.equal(r.code, 'INVALID_ARGUMENT');
    assert.match(r.message, /already in use/);
    const noOp = h.request(undefined);
    assert.equal(((await noOp.box.next()).value as FileReply).code, 'INVALID_ARGUMENT');
    // An ack beyond what was sent is ignored; the transfer still completes.
    h.svc.onMessage({ $case: 'fileAck', value: { requestId: id, offset: 1e12 } });
    assert.equal(h.svc.liveTransfers, 1);
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: id, reason: 'test', discard: false } });
    assert.equal(h.svc.liveTransfers, 0);
  });

  it('at most maxTransfers at once: RESOURCE_EXHAUSTED, and a slot frees when one ends', async () => {
    const h = new Harness({ maxTransfers: 2 });
    const d = dir('limit');
    const f = path.join(d, 'f');
    fs.writeFileSync(f, randomBytes(1024 * 1024));
    const read = { $case: 'read', value: { path: f, offset: 0, expectMtimeMs: 0, expectSize: 0 } } as Op;
    const a = h.request(read);
    const b = h.request(read);
    const c = h.request(read);
    const refused = (await c.box.next()).value as FileReply;
    assert.equal(refused.code, 'RESOURCE_EXHAUSTED');
    assert.match(refused.message, /too many transfers/);
    await a.box.next();
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: a.id, reason: 'done with it', discard: false } });
    const r = await h.download(f);
    assert.equal(r.reply.code, '');
    assert.equal(r.data.length, 1024 * 1024);
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: b.id, reason: 'done with it', discard: false } });
  });

  it('a bad transfer id or a chunk at the wrong offset is INVALID_ARGUMENT; the partial file is kept', async () => {
    const h = new Harness();
    const d = dir('bad-upload');
    const bad = await h.upload(path.join(d, 'x'), Buffer.from('abc'), { transferId: '../../etc' });
    assert.equal(bad.opened.code, 'INVALID_ARGUMENT');
    const data = randomBytes(300_000);
    const dest = path.join(d, 'y');
    const skip = await h.upload(dest, data, { chunk: 100_000, corrupt: (off, c) => (off === 100_000 ? Buffer.alloc(0) : c), transferId: 'skip' });
    // An empty chunk is harmless; the next one lands at the wrong offset.
    assert.equal(skip.final?.code, 'INVALID_ARGUMENT');
    assert.match(skip.final!.message, /chunk at offset 200000, expected 100000/);
    assert.ok(!fs.existsSync(dest));
    // Writes queued behind the bad chunk are dropped; what reached the disk is kept for a resume.
    const kept = fs.statSync(partialPath(dest, 'skip')).size;
    assert.ok(kept >= skip.acked && kept <= 100_000, `partial kept: ${kept} bytes`);
    const resumed = await h.upload(dest, data, { chunk: 100_000, transferId: 'skip' });
    assert.equal(resumed.opened.resumeOffset, kept);
    assert.equal(resumed.final?.code, '');
    assert.ok(fs.readFileSync(dest).equals(data));
  });
});

describe('file service: downloads', () => {
  let h: Harness;
  let d: string;
  before(() => {
    h = new Harness();
    d = dir('download');
  });

  for (const [name, size] of [
    ['empty', 0],
    ['one byte', 1],
    ['3 MiB + 17', 3 * 1024 * 1024 + 17],
  ] as const) {
    it(`byte-exact with the whole file's MD5: ${name}`, async () => {
      const data = randomBytes(size);
      const f = path.join(d, `f-${size}`);
      fs.writeFileSync(f, data);
      const r = await h.download(f);
      assert.equal(r.reply.code, '');
      assert.equal(r.reply.entry!.size, size);
      assert.equal(r.reply.entry!.type, FileType.FILE_TYPE_FILE);
      assert.ok(r.data.equals(data), 'same bytes');
      assert.equal(r.done!.size, size);
      assert.deepEqual(Buffer.from(r.done!.md5), md5(data));
      for (const c of r.chunks) assert.ok(c <= MAX_FILE_CHUNK);
      assert.equal(h.svc.liveTransfers, 0);
    });
  }

  it('chunks grow past 64 KiB on a fast link, and the window is respected', async () => {
    const data = randomBytes(24 * 1024 * 1024);
    const f = path.join(d, 'big');
    fs.writeFileSync(f, data);
    const r = await h.download(f, { ackDelayMs: 1 });
    assert.ok(r.data.equals(data));
    assert.equal(r.chunks[0], MIN_FILE_CHUNK, 'starts at 64 KiB');
    assert.ok(Math.max(...r.chunks) > MIN_FILE_CHUNK, `grew: ${Math.max(...r.chunks)}`);
    assert.ok(r.maxInFlight <= MAX_FILE_WINDOW, `in flight ${r.maxInFlight}`);
  });

  it('without acks it stops after one window; acks let it go on; cancel stops it', async () => {
    const data = randomBytes(8 * 1024 * 1024);
    const f = path.join(d, 'unacked');
    fs.writeFileSync(f, data);
    const { id, box } = h.request({ $case: 'read', value: { path: f, offset: 0, expectMtimeMs: 0, expectSize: 0 } });
    assert.equal(((await box.next()).value as FileReply).code, '');
    await tick(100);
    assert.equal(box.pending, 2, 'two 64 KiB chunks: the initial window');
    h.svc.onMessage({ $case: 'fileAck', value: { requestId: id, offset: 2 * MIN_FILE_CHUNK } });
    await tick(50);
    assert.ok(box.pending > 2, 'more after the ack');
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: id, reason: 'client left', discard: false } });
    const n = box.pending;
    h.svc.onMessage({ $case: 'fileAck', value: { requestId: id, offset: 4 * MIN_FILE_CHUNK } });
    await tick(50);
    assert.equal(box.pending, n, 'nothing after the cancel');
    assert.ok(!box.all.some((m) => m.$case === 'fileDone'));
  });

  it('all downloads together stay within one window, and all stop when the stream drops', async () => {
    const f = path.join(d, 'shared');
    fs.writeFileSync(f, randomBytes(4 * 1024 * 1024));
    const boxes = Array.from({ length: 6 }, () => h.request({ $case: 'read', value: { path: f, offset: 0, expectMtimeMs: 0, expectSize: 0 } }));
    // Ack everything as it comes, for a while, watching the total in flight.
    let maxTotal = 0;
    const sent = new Map<number, number>();
    const acked = new Map<number, number>();
    for (let round = 0; round < 30; round++) {
      await tick(2);
      for (const { id, box } of boxes) {
        while (box.pending) {
          const m = await box.next();
          if (m.$case === 'fileChunk') sent.set(id, m.value.offset + m.value.data.length);
        }
      }
      const total = boxes.reduce((t, { id }) => t + (sent.get(id) ?? 0) - (acked.get(id) ?? 0), 0);
      maxTotal = Math.max(maxTotal, total);
      for (const { id } of boxes) {
        acked.set(id, sent.get(id) ?? 0);
        if (sent.get(id)) h.svc.onMessage({ $case: 'fileAck', value: { requestId: id, offset: sent.get(id)! } });
      }
    }
    assert.ok(maxTotal <= MAX_FILE_WINDOW, `total in flight ${maxTotal}`);
    h.connected = false;
    h.svc.abortAll('stream lost');
    assert.equal(h.svc.liveTransfers, 0);
    h.connected = true;
    for (const { id } of boxes) h.svc.onMessage({ $case: 'fileAck', value: { requestId: id, offset: 1 } });
    await tick(20);
    for (const { box } of boxes) assert.equal(box.pending, 0, 'nothing sent after the stream dropped');
  });

  it('resumes from an offset; the MD5 still covers the whole file', async () => {
    const data = randomBytes(1024 * 1024 + 333);
    const f = path.join(d, 'resume');
    fs.writeFileSync(f, data);
    const st = fs.statSync(f);
    const offset = 700_001;
    const r = await h.download(f, { offset, expectSize: st.size, expectMtimeMs: Math.trunc(st.mtimeMs) });
    assert.equal(r.reply.code, '');
    assert.ok(r.data.equals(data.subarray(offset)));
    assert.deepEqual(Buffer.from(r.done!.md5), md5(data));
    const end = await h.download(f, { offset: data.length });
    assert.equal(end.data.length, 0);
    assert.deepEqual(Buffer.from(end.done!.md5), md5(data));
    const beyond = await h.download(f, { offset: data.length + 1 });
    assert.equal(beyond.reply.code, 'OUT_OF_RANGE');
  });

  it('a resume is refused when the file changed', async () => {
    const f = path.join(d, 'changing');
    fs.writeFileSync(f, randomBytes(100_000));
    const st = fs.statSync(f);
    const size = await h.download(f, { offset: 10, expectSize: st.size + 1, expectMtimeMs: Math.trunc(st.mtimeMs) });
    assert.equal(size.reply.code, 'FAILED_PRECONDITION');
    assert.match(size.reply.message, /changed/);
    const mtime = await h.download(f, { offset: 10, expectSize: st.size, expectMtimeMs: Math.trunc(st.mtimeMs) - 5000 });
    assert.equal(mtime.reply.code, 'FAILED_PRECONDITION');
    const fresh = await h.download(f, { offset: 0, expectSize: st.size + 1 });
    assert.equal(fresh.reply.code, '', 'from 0 it is a new download: expectations do not apply');
  });
});

describe('file service: uploads', () => {
  let h: Harness;
  let d: string;
  before(() => {
    h = new Harness();
    d = dir('upload');
  });

  it('round trip byte-exact, mode applied, no partial file left', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const dest = path.join(d, 'up.bin');
    const r = await h.upload(dest, data, { mode: 0o640, transferId: 'rt' });
    assert.equal(r.opened.code, '');
    assert.equal(r.opened.resumeOffset, 0);
    assert.equal(r.final!.code, '', r.final!.message);
    assert.deepEqual(Buffer.from(r.final!.md5), md5(data));
    assert.equal(r.final!.entry!.size, data.length);
    assert.ok(fs.readFileSync(dest).equals(data));
    assert.equal(fs.statSync(dest).mode & 0o777, 0o640);
    assert.deepEqual(fs.readdirSync(d), ['up.bin']);
    const again = await h.upload(dest, Buffer.from('x'), { transferId: 'rt2' });
    assert.equal(again.opened.code, 'ALREADY_EXISTS');
    const over = await h.upload(dest, Buffer.from('new'), { transferId: 'rt3', overwrite: true });
    assert.equal(over.final!.code, '');
    assert.equal(fs.readFileSync(dest, 'utf8'), 'new');
    assert.equal(fs.statSync(dest).mode & 0o777, 0o640, 'an overwrite without a mode keeps the mode');
    const empty = await h.upload(path.join(d, 'empty'), Buffer.alloc(0), { transferId: 'e' });
    assert.equal(empty.final!.code, '');
    assert.equal(fs.statSync(path.join(d, 'empty')).size, 0);
    assert.equal(fs.statSync(path.join(d, 'empty')).mode & 0o777, 0o644);
  });

  it('a corrupted chunk is DATA_LOSS: nothing under the destination, no partial left', async () => {
    const data = randomBytes(1024 * 1024 + 5);
    const dest = path.join(d, 'corrupt.bin');
    const r = await h.upload(dest, data, {
      transferId: 'bad',
      corrupt: (off, c) => {
        if (off === 192 * 1024) c[1000] ^= 0xff;
        return c;
      },
    });
    assert.equal(r.final!.code, 'DATA_LOSS');
    assert.match(r.final!.message, new RegExp(`^MD5 mismatch: sent ${md5(data).toString('hex')}, received [0-9a-f]{32}; nothing written to ${dest}$`));
    await tick(20);
    assert.ok(!fs.existsSync(dest));
    assert.ok(!fs.existsSync(partialPath(dest, 'bad')));
  });

  it('resumes after a cancel: partial kept, resumeOffset reported, final file byte-exact', async () => {
    const data = randomBytes(2 * 1024 * 1024 + 99);
    const dest = path.join(d, 'resumed.bin');
    const first = await h.upload(dest, data, { transferId: 'res', stopAt: 1_000_000 });
    assert.equal(first.acked, 1_000_000);
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: first.id, reason: 'client went away', discard: false } });
    const part = partialPath(dest, 'res');
    assert.equal(fs.statSync(part).size, 1_000_000);
    assert.equal(fs.statSync(part).mode & 0o777, 0o600, 'partial files are private');
    assert.ok(!fs.existsSync(dest));

    // A second cut, this time by the stream dropping.
    const second = await h.upload(dest, data, { transferId: 'res', stopAt: 1_500_000 });
    assert.equal(second.opened.resumeOffset, 1_000_000);
    h.svc.abortAll('stream lost');

    const third = await h.upload(dest, data, { transferId: 'res' });
    assert.equal(third.opened.resumeOffset, 1_500_000);
    assert.equal(third.final!.code, '', third.final!.message);
    assert.deepEqual(Buffer.from(third.final!.md5), md5(data));
    assert.ok(fs.readFileSync(dest).equals(data));
    assert.ok(!fs.existsSync(part));
  });

  it('a cancel with discard (a client that will not resume) removes the partial file', async () => {
    const data = randomBytes(1_500_000);
    const dest = path.join(d, 'discarded.bin');
    const up = await h.upload(dest, data, { transferId: 'disc', stopAt: 1_000_000 });
    const part = partialPath(dest, 'disc');
    assert.ok(fs.existsSync(part));
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: up.id, reason: 'the page gave up', discard: true } });
    await tick(100);
    assert.ok(!fs.existsSync(part), 'the partial file is gone');
    assert.ok(!fs.existsSync(dest));

    // Cancelled with discard while it still opens (a reopen the client gave up at once): removed too, once open.
    fs.writeFileSync(part, data.subarray(0, 500_000), { mode: 0o600 });
    const opening = h.request({ $case: 'write', value: { path: dest, size: data.length, mode: 0, overwrite: false, transferId: 'disc' } });
    h.svc.onMessage({ $case: 'fileCancel', value: { requestId: opening.id, reason: 'the page gave up', discard: true } });
    await eventually(() => !fs.existsSync(part), 2000, 'the partial file of an upload discarded while opening is gone');
    assert.equal(opening.box.all.length, 0, 'a cancelled open is not answered');
    assert.equal(h.svc.liveTransfers, 0);
  });

  // A resumed upload reopens its partial file under the same transfer id.
  // The upload that wrote it before may still hold it on this agent: cut off
  // while it was still opening (reading the partial file to hash it), or
  // forgotten by the control plane (which failed it when the file traffic
  // moved to the Bulk stream) before the agent heard of it. The newer one
  // takes the file over; the older stops, its writes finished or dropped,
  // before the newer one reads how much the file holds.

  it('a resume takes over its partial file from an upload still writing it: the older is told, the newer goes on from what is on disk, byte for byte', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 11);
    const dest = path.join(d, 'takeover.bin');
    const write: Op = { $case: 'write', value: { path: dest, size: data.length, mode: 0, overwrite: false, transferId: 'tk' } };
    const older = h.request(write);
    assert.equal(((await older.box.next()).value as FileReply).code, '');
    const MiB = 1024 * 1024;
    for (let off = 0; off < MiB; off += 256 * 1024) {
      h.svc.onMessage({ $case: 'fileChunk', value: { requestId: older.id, offset: off, data: data.subarray(off, off + 256 * 1024) } });
    }
    for (let acked = 0; acked < MiB; ) acked = ((await older.box.next()).value as { offset: number }).offset;
    // Two more chunks, not yet on disk, when the resumed transfer opens the same partial file.
    h.svc.onMessage({ $case: 'fileChunk', value: { requestId: older.id, offset: MiB, data: data.subarray(MiB, MiB + 256 * 1024) } });
    h.svc.onMessage({ $case: 'fileChunk', value: { requestId: older.id, offset: MiB + 256 * 1024, data: data.subarray(MiB + 256 * 1024, MiB + 512 * 1024) } });
    const newer = await h.upload(dest, data, { transferId: 'tk' });
    assert.equal(newer.opened.code, '', newer.opened.message);
    assert.ok(newer.opened.resumeOffset >= MiB && newer.opened.resumeOffset <= MiB + 512 * 1024, `resumed from ${newer.opened.resumeOffset}`);
    assert.equal(newer.final!.code, '', newer.final!.message);
    assert.ok(fs.readFileSync(dest).equals(data), 'byte for byte');
    const told = older.box.all.filter((m) => m.$case === 'fileReply').map((m) => m.value as FileReply).slice(1);
    assert.equal(told.length, 1, 'after `opened`, the older upload gets one answer');
    assert.equal(told[0].code, 'FAILED_PRECONDITION');
    assert.match(told[0].message, /a newer upload with transfer id tk took over/);
    h.svc.onMessage({ $case: 'fileChunk', value: { requestId: older.id, offset: MiB + 512 * 1024, data: Buffer.alloc(10) } });
    await tick(50);
    assert.ok(fs.readFileSync(dest).equals(data), 'a late chunk for the older one changes nothing');
    assert.deepEqual(fs.readdirSync(d).filter((n) => n.includes('takeover')), ['takeover.bin'], 'no partial file left');
    assert.equal(h.svc.liveTransfers, 0);
  });

  it('a resume right after the stream was lost, while the cut-off open still reads the partial file, is not refused as “already writing”', async () => {
    const partials = new PartialFiles();
    const h2 = new Harness({ partials });
    const data = randomBytes(40 * 1024 * 1024 + 3);
    const dest = path.join(d, 'reopen.bin');
    const part = partialPath(dest, 'ro');
    const kept = 32 * 1024 * 1024;
    fs.writeFileSync(part, data.subarray(0, kept), { mode: 0o600 });
    // The first reopen reaches the agent, holds the partial file and hashes what it keeps (32 MiB) ...
    const cut = h2.request({ $case: 'write', value: { path: dest, size: data.length, mode: 0, overwrite: false, transferId: 'ro' } });
    while (!partials.isLive(part)) await new Promise((r) => setImmediate(r));
    // ... when its stream goes (the file traffic moved to the Bulk stream, or the link dropped), and the client reopens at once.
    h2.svc.abortAll('the file connection moved');
    const resumed = await h2.upload(dest, data, { transferId: 'ro' });
    assert.equal(resumed.opened.code, '', resumed.opened.message);
    assert.equal(resumed.opened.resumeOffset, kept);
    assert.equal(resumed.final!.code, '', resumed.final!.message);
    assert.ok(fs.readFileSync(dest).equals(data), 'byte for byte');
    assert.ok(!fs.existsSync(part), 'no partial file left');
    assert.equal(cut.box.all.length, 0, 'the cut-off open says nothing on the new stream');
    await tick(50);
    assert.ok(!partials.isLive(part));
    assert.equal(h2.svc.liveTransfers, 0);
  });

  it('opens of one partial file in quick succession queue up: the last goes on from what the file holds, each earlier one is told', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 1);
    const dest = path.join(d, 'queue.bin');
    const part = partialPath(dest, 'q');
    const kept = 4 * 1024 * 1024;
    fs.writeFileSync(part, data.subarray(0, kept), { mode: 0o600 });
    const write: Op = { $case: 'write', value: { path: dest, size: data.length, mode: 0, overwrite: false, transferId: 'q' } };
    const first = h.request(write);
    const second = h.request(write);
    const last = await h.upload(dest, data, { transferId: 'q' });
    assert.equal(last.opened.code, '', last.opened.message);
    assert.equal(last.opened.resumeOffset, kept);
    assert.equal(last.final!.code, '', last.final!.message);
    assert.ok(fs.readFileSync(dest).equals(data), 'byte for byte');
    for (const [what, box] of [['the first', first.box], ['the second', second.box]] as const) {
      const replies = box.all.map((m) => m.value as FileReply);
      assert.equal(replies.length, 1, `${what} gets one answer`);
      assert.equal(replies[0].code, 'FAILED_PRECONDITION', what);
      assert.match(replies[0].message, /a newer upload with transfer id q took over/);
    }
    assert.ok(!fs.existsSync(part), 'no partial file left');
    assert.equal(h.svc.liveTransfers, 0);
  });

  it('transfers stopped while the stream stays up (file traffic moving to the Bulk stream) each get an UNAVAILABLE answer; a resume goes on', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const dest = path.join(d, 'moved.bin');
    const src = path.join(d, 'moved-src.bin');
    fs.writeFileSync(src, randomBytes(3 * 1024 * 1024));
    const up = await h.upload(dest, data, { transferId: 'mv', stopAt: 1024 * 1024 });
    const dest2 = path.join(d, 'moved2.bin');
    const opening = h.request({ $case: 'write', value: { path: dest2, size: 5, mode: 0, overwrite: false, transferId: 'mv2' } });
    const down = h.request({ $case: 'read', value: { path: src, offset: 0, expectMtimeMs: 0, expectSize: 0 } });
    assert.equal(((await down.box.next()).value as FileReply).code, '', 'the download is open');
    h.svc.abortAll('file transfers moved to their own connection', { answer: true });
    for (const [what, box] of [['an open upload', h.mailbox(up.id)], ['an upload still opening', opening.box], ['a download', down.box]] as const) {
      const errors = box.all.filter((m) => m.$case === 'fileReply' && (m.value as FileReply).code !== '').map((m) => m.value as FileReply);
      assert.equal(errors.length, 1, `${what} is answered once, at once`);
      assert.equal(errors[0].code, 'UNAVAILABLE', what);
      assert.match(errors[0].message, /file transfers moved to their own connection/);
    }
    await tick(50);
    assert.equal(h.svc.liveTransfers, 0);
    assert.ok(opening.box.all.every((m) => m.$case === 'fileReply' && (m.value as FileReply).code === 'UNAVAILABLE'), 'the open finished later says nothing more');
    // Both uploads resume under their transfer ids.
    const resumed = await h.upload(dest, data, { transferId: 'mv' });
    assert.equal(resumed.opened.resumeOffset, 1024 * 1024);
    assert.equal(resumed.final!.code, '', resumed.final!.message);
    assert.ok(fs.readFileSync(dest).equals(data));
    const second = await h.upload(dest2, Buffer.from('hello'), { transferId: 'mv2' });
    assert.equal(second.final!.code, '', second.final!.message);
    for (const [p, id] of [[dest, 'mv'], [dest2, 'mv2']]) assert.ok(!fs.existsSync(partialPath(p, id)), `no partial file of ${p}`);
  });

  it('partial files abandoned for over a day are swept when an upload opens beside them', async () => {
    const sd = dir('sweep');
    const old = path.join(sd, '.x.cmdop-old.part');
    const recent = path.join(sd, '.y.cmdop-recent.part');
    const other = path.join(sd, '.z.part');
    for (const p of [old, recent, other]) fs.writeFileSync(p, 'x');
    const past = (Date.now() - STALE_PARTIAL_MS - 3600_000) / 1000;
    fs.utimesSync(old, past, past);
    fs.utimesSync(other, past, past);
    const r = await h.upload(path.join(sd, 'new'), Buffer.from('hi'), { transferId: 'sw' });
    assert.equal(r.final!.code, '');
    await tick(50);
    assert.deepEqual(fs.readdirSync(sd).sort(), ['.y.cmdop-recent.part', '.z.part', 'new']);
  });
});
