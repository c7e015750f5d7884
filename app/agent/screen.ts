// The current screen of a PTY terminal, kept by a headless xterm so a late
// joiner sees exactly what the operator sees (a full-screen program
// included: modes, scroll region, charsets, the alternate screen) rather
// than a replay of bytes that may have scrolled out of any buffer.
// The xterms live in one worker thread shared by all terminals (see
// screenWorker.ts), beside the output path rather than in front of it.
//
// Every byte is parsed: a screen rebuilt from a tail of the output loses
// whatever that tail does not redraw (the header of a full-screen program,
// its modes). The parser (~40 MB/s here) is slower than a PTY can flood, so
// the bytes written but not yet parsed are bounded instead: above
// MAX_BACKLOG the terminal stops reading its PTY (TerminalHost's flow
// control, as for unacknowledged output) until the parser is below
// RESUME_BACKLOG. Nothing is skipped and memory stays bounded; the cost is
// that a flood runs at the parser's pace (README, "Measured").
import path from 'node:path';
import { Worker } from 'node:worker_threads';

export type ScreenRequest =
  | { type: 'open'; id: string; cols: number; rows: number }
  | { type: 'write'; id: string; data: Uint8Array }
  | { type: 'resize'; id: string; cols: number; rows: number }
  | { type: 'snapshot'; id: string; req: number }
  | { type: 'close'; id: string };

export type ScreenReply =
  | { type: 'parsed'; id: string; bytes: number }
  | { type: 'snapshot'; id: string; req: number; data: Uint8Array; cols: number; rows: number };

export interface ScreenState {
  data: Uint8Array;
  cols: number;
  rows: number;
}

/** Unparsed output above which the PTY is not read (the parser's queue, per terminal). */
export const MAX_BACKLOG = 2 * 1024 * 1024;
/** ...and below which it is read again. */
export const RESUME_BACKLOG = 1024 * 1024;

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
  /** The backlog went over MAX_BACKLOG and has not come down to RESUME_BACKLOG yet: do not read the PTY. */
  congested = false;
  /** The worker is gone: this screen no longer follows the output. */
  private lost = false;
  private reqs = 0;
  private waiting = new Map<number, (s: ScreenState | undefined) => void>();

  /** `onDrained`: the backlog came down to RESUME_BACKLOG after a congestion. */
  constructor(
    readonly id: string,
    cols: number,
    rows: number,
    private onDrained: () => void = () => {},
  ) {
    screens.set(id, this);
    shared().postMessage({ type: 'open', id, cols, rows } satisfies ScreenRequest);
  }

  write(data: Uint8Array): void {
    if (this.lost) return;
    // A copy into its own ArrayBuffer, transferred: cloning a view would copy
    // the whole (often much larger) buffer behind it.
    const copy = new Uint8Array(data);
    this.backlog += copy.byteLength;
    if (this.backlog > MAX_BACKLOG) this.congested = true;
    shared().postMessage({ type: 'write', id: this.id, data: copy } satisfies ScreenRequest, [copy.buffer]);
  }

  resize(cols: number, rows: number): void {
    if (!this.lost) shared().postMessage({ type: 'resize', id: this.id, cols, rows } satisfies ScreenRequest);
  }

  /**
   * The screen after exactly the bytes written so far: the worker answers
   * after parsing every write posted before this request.
   */
  snapshot(): Promise<ScreenState | undefined> {
    if (this.lost) return Promise.resolve(undefined);
    const req = ++this.reqs;
    return new Promise((resolve) => {
      this.waiting.set(req, resolve);
      shared().postMessage({ type: 'snapshot', id: this.id, req } satisfies ScreenRequest);
    });
  }

  dispose(): void {
    screens.delete(this.id);
    worker?.postMessage({ type: 'close', id: this.id } satisfies ScreenRequest);
    this.release();
  }

  onReply(m: ScreenReply): void {
    if (m.type === 'parsed') {
      this.backlog -= m.bytes;
      if (this.congested && this.backlog <= RESUME_BACKLOG) {
        this.congested = false;
        this.onDrained();
      }
    } else {
      this.waiting.get(m.req)?.({ data: m.data, cols: m.cols, rows: m.rows });
      this.waiting.delete(m.req);
    }
  }

  onWorkerLost(): void {
    this.lost = true;
    this.release();
  }

  /** Never holds the PTY or a snapshot request again. */
  private release(): void {
    this.backlog = 0;
    for (const r of this.waiting.values()) r(undefined);
    this.waiting.clear();
    if (this.congested) {
      this.congested = false;
      this.onDrained();
    }
  }
}
