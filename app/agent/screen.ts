// The current screen of a PTY terminal, kept by a headless xterm so a late
// joiner sees what is on the screen now (a full-screen program included)
// rather than a replay of bytes that may have scrolled out of any buffer.
// The xterms live in one worker thread shared by all terminals (see
// screenWorker.ts); this side counts the bytes not yet parsed so the
// Parsing is not free (xterm parses roughly 30-70 MB/s of text, far less of
// binary noise), so it gets a budget: output up to PARSE_RATE is parsed whole.
// Past it (a `cat` of a large file) the screen stops following byte by byte
// and is rebuilt from the most recent output at most every
// REBUILD_INTERVAL_MS, instead of slowing the terminal down or eating a core:
// exact for line-oriented output, which is what floods are.
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export type ScreenRequest =
  | { type: 'open'; id: string; cols: number; rows: number }
  | { type: 'write'; id: string; data: Uint8Array }
  | { type: 'reset'; id: string; gen: number; data: Uint8Array }
  | { type: 'resize'; id: string; cols: number; rows: number }
  | { type: 'snapshot'; id: string; req: number }
  | { type: 'close'; id: string };

export type ScreenReply =
  | { type: 'parsed'; id: string; bytes: number; gen: number }
  | { type: 'snapshot'; id: string; req: number; data: string; cols: number; rows: number };

export interface ScreenState {
  data: string;
  cols: number;
  rows: number;
}

/** Unparsed output past which the screen stops following and is rebuilt from the tail. */
const MAX_BACKLOG = 1024 * 1024;
const REBUILD_INTERVAL_MS = 250;
/** Parse budget: bytes per second, and the burst allowed above it. */
const PARSE_RATE = 4 * 1024 * 1024;
const PARSE_BURST = 1024 * 1024;
/** Recent output kept for a rebuild: more than a screen plus its scrollback of typical lines. */
const TAIL_BYTES = 128 * 1024;

let worker: Worker | undefined;
const screens = new Map<string, Screen>();

function shared(): Worker {
  if (!worker) {
    worker = new Worker(path.join(__dirname, 'screenWorker.js'));
    worker.on('message', (m: ScreenReply) => screens.get(m.id)?.onReply(m));
    worker.on('error', (e) => {
      // Without screens, late joiners get the buffered output instead; terminals keep working.
      process.stderr.write(`cmdop agent: screen worker failed: ${e.message}\n`);
      for (const s of screens.values()) s.onWorkerLost();
      worker = undefined;
    });
    // After the listeners: adding a 'message' listener refs the port again.
    worker.unref(); // never keeps the agent alive on its own
  }
  return worker;
}

export class Screen {
  /** Bytes written but not parsed yet. */
  backlog = 0;
  /** How many times output outran the parser and the screen was rebuilt. */
  rebuilds = 0;
  private gen = 0;
  private dirty = false; // output was skipped: a rebuild is due
  private lastRebuildMs = 0;
  private rebuildTimer: NodeJS.Timeout | undefined;
  private tokens = PARSE_BURST;
  private refilledMs = performance.now();
  private tail: Uint8Array[] = [];
  private tailBytes = 0;
  private reqs = 0;
  private waiting = new Map<number, (s: ScreenState | undefined) => void>();


  constructor(
    readonly id: string,
    cols: number,
    rows: number,
  ) {
    screens.set(id, this);
    shared().postMessage({ type: 'open', id, cols, rows } satisfies ScreenRequest);
  }

  write(data: Uint8Array): void {
    this.tail.push(data);
    this.tailBytes += data.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0].length >= TAIL_BYTES) {
      this.tailBytes -= this.tail.shift()!.length;
    }
    const now = performance.now();
    this.tokens = Math.min(PARSE_BURST, this.tokens + ((now - this.refilledMs) * PARSE_RATE) / 1000);
    this.refilledMs = now;
    if (this.dirty || this.backlog + data.length > MAX_BACKLOG || this.tokens < data.length) {
      this.dirty = true;
      this.maybeRebuild();
      return;
    }
    this.tokens -= data.length;
    // A copy into its own ArrayBuffer, transferred: cloning a view would copy
    // the whole (often much larger) buffer behind it.
    const copy = new Uint8Array(data);
    this.backlog += copy.byteLength;
    shared().postMessage({ type: 'write', id: this.id, data: copy } satisfies ScreenRequest, [copy.buffer]);
  }

  /** After the parser has caught up, rebuild from the tail (rate-limited). */
  private maybeRebuild(): void {
    if (!this.dirty || this.backlog > 0 || this.rebuildTimer) return;
    const wait = this.lastRebuildMs + REBUILD_INTERVAL_MS - Date.now();
    if (wait <= 0) this.rebuild();
    else {
      this.rebuildTimer = setTimeout(() => {
        this.rebuildTimer = undefined;
        this.maybeRebuild();
      }, wait);
    }
  }

  private rebuild(): void {
    clearTimeout(this.rebuildTimer);
    this.rebuildTimer = undefined;
    this.dirty = false;
    this.lastRebuildMs = Date.now();
    const all = Buffer.concat(this.tail, this.tailBytes);
    // Start at a line boundary so the rebuilt screen begins with a whole line.
    const nl = all.indexOf(0x0a);
    const from = nl >= 0 && nl < 64 * 1024 ? nl + 1 : 0;
    const data = new Uint8Array(all.subarray(from));
    this.gen++;
    this.rebuilds++;
    this.backlog = data.byteLength;
    shared().postMessage({ type: 'reset', id: this.id, gen: this.gen, data } satisfies ScreenRequest, [data.buffer]);
  }

  resize(cols: number, rows: number): void {
    shared().postMessage({ type: 'resize', id: this.id, cols, rows } satisfies ScreenRequest);
  }

  /** The screen after every byte written so far. */
  snapshot(): Promise<ScreenState | undefined> {
    if (this.dirty) this.rebuild();
    const req = ++this.reqs;
    return new Promise((resolve) => {
      this.waiting.set(req, resolve);
      shared().postMessage({ type: 'snapshot', id: this.id, req } satisfies ScreenRequest);
    });
  }

  dispose(): void {
    clearTimeout(this.rebuildTimer);
    screens.delete(this.id);
    worker?.postMessage({ type: 'close', id: this.id } satisfies ScreenRequest);
    for (const r of this.waiting.values()) r(undefined);
    this.waiting.clear();
  }

  onReply(m: ScreenReply): void {
    if (m.type === 'parsed') {
      if (m.gen !== this.gen) return; // a reply for a screen since rebuilt
      this.backlog -= m.bytes;
      this.maybeRebuild();
    } else {
      this.waiting.get(m.req)?.({ data: m.data, cols: m.cols, rows: m.rows });
      this.waiting.delete(m.req);
    }
  }

  onWorkerLost(): void {
    this.backlog = 0;
    for (const r of this.waiting.values()) r(undefined);
    this.waiting.clear();
  }
}
