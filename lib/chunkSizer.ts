// How big a file transfer's chunks are and how many bytes it may have in
// flight, adapted to the link from the receiver's acknowledgements. The
// agent uses it for downloads and the SDK (and later the browser console)
// for uploads, so it is pure: no node: imports, no timers; time comes from
// the caller (or a clock it is given).
//
// The rule, in short:
//  - throughput is measured as bytes acknowledged per millisecond;
//  - the chunk size grows (at most doubling per acknowledged chunk) toward
//    the size the link moves in TARGET_CHUNK_MS, and follows it down at once
//    when the throughput drops;
//  - the window (bytes unacknowledged) is what the link moves in two
//    minimum round trips plus QUEUE_MS: one round trip keeps the pipe full,
//    the second lets the estimate grow, and QUEUE_MS is the most standing
//    queue we accept ahead of a terminal's keystroke echo on the same stream;
//  - a round trip far above the minimum (a congested link: someone else's
//    traffic, a slow Wi-Fi hop) halves the chunk at once, at most once per
//    round trip, without waiting for the throughput estimate to catch up.

import { MAX_FILE_CHUNK, MAX_FILE_WINDOW, MIN_FILE_CHUNK } from '../protocol/limits';

export { MAX_FILE_CHUNK, MAX_FILE_WINDOW, MIN_FILE_CHUNK };

/** A chunk should take about this long on the link (10-20 ms: few messages, fine interleaving). */
export const TARGET_CHUNK_MS = 15;
/** Standing queue the window allows beyond two round trips' worth. */
export const QUEUE_MS = 20;
/** A round trip this much above twice the minimum means congestion. */
export const CONGESTED_MS = 50;
/** The minimum round trip is re-learned over this period (a route may change). */
const MIN_RTT_PERIOD_MS = 10_000;
/** Acks closer together than this are pooled into one throughput sample. */
const MIN_SAMPLE_MS = 1;
/** Chunk sizes are multiples of this (page-friendly reads and writes). */
const GRAIN = 4096;

export interface ChunkSizerOptions {
  minChunk?: number;
  maxChunk?: number;
  maxWindow?: number;
  /** Milliseconds, monotonic; used when `acked` is not given a time. */
  now?: () => number;
}

export class ChunkSizer {
  readonly minChunk: number;
  readonly maxChunk: number;
  readonly maxWindow: number;
  private readonly now: () => number;
  private chunk: number;
  /** Bytes acknowledged per ms, smoothed; 0 until measured. */
  private rate = 0;
  private srtt = 0;
  private minRtt = Infinity;
  private periodMin = Infinity;
  private periodStart = -Infinity;
  private sampleStart: number | undefined;
  private sampleBytes = 0;
  private lastCut = -Infinity;

  constructor(o: ChunkSizerOptions = {}) {
    this.minChunk = o.minChunk ?? MIN_FILE_CHUNK;
    this.maxChunk = o.maxChunk ?? MAX_FILE_CHUNK;
    this.maxWindow = o.maxWindow ?? MAX_FILE_WINDOW;
    this.now = o.now ?? (() => (typeof performance !== 'undefined' ? performance.now() : Date.now()));
    this.chunk = this.minChunk;
  }

  /** Bytes to put in the next chunk. */
  get size(): number {
    return this.chunk;
  }

  /** Bytes that may be unacknowledged: send while (sent - acked) + next chunk <= window. */
  get window(): number {
    // Two chunks at least, so one is in flight while the next is read.
    const floor = Math.min(this.maxWindow, 2 * this.chunk);
    if (this.rate === 0 || this.minRtt === Infinity) return floor;
    const w = Math.round(this.rate * (2 * this.minRtt + QUEUE_MS));
    return Math.max(floor, Math.min(this.maxWindow, w));
  }

  /** Throughput estimate, bytes per ms (0 until the first ack). */
  get bytesPerMs(): number {
    return this.rate;
  }

  get rttMs(): number {
    return this.srtt;
  }

  get minRttMs(): number {
    return this.minRtt;
  }

  /**
   * `bytes` of one chunk were acknowledged `rttMs` after the chunk was sent.
   * Call once per chunk (several calls with the same `nowMs` for one ack
   * that covers several chunks are pooled into one throughput sample).
   */
  acked(bytes: number, rttMs: number, nowMs: number = this.now()): void {
    if (!(bytes > 0) || !(rttMs >= 0) || !Number.isFinite(rttMs) || !Number.isFinite(nowMs)) return;
    const rtt = Math.max(rttMs, 0.01);

    // Round trips: smoothed, and a minimum that is re-learned every period.
    this.srtt = this.srtt === 0 ? rtt : (7 * this.srtt + rtt) / 8;
    if (rtt < this.minRtt) this.minRtt = rtt;
    if (rtt < this.periodMin) this.periodMin = rtt;
    if (nowMs - this.periodStart >= MIN_RTT_PERIOD_MS) {
      if (this.periodStart !== -Infinity) this.minRtt = this.periodMin;
      this.periodMin = rtt;
      this.periodStart = nowMs;
    }

    // Throughput: bytes acknowledged over the time they took. The first
    // sample starts when its chunk was sent.
    if (this.sampleStart === undefined) this.sampleStart = nowMs - rtt;
    this.sampleBytes += bytes;
    const elapsed = nowMs - this.sampleStart;
    if (elapsed >= MIN_SAMPLE_MS) {
      const sample = this.sampleBytes / elapsed;
      this.rate = this.rate === 0 ? sample : 0.75 * this.rate + 0.25 * sample;
      this.sampleStart = nowMs;
      this.sampleBytes = 0;
    }
    if (this.rate === 0) return;

    const congested = rtt > 2 * this.minRtt + CONGESTED_MS;
    if (congested) {
      if (nowMs - this.lastCut >= this.srtt) {
        this.lastCut = nowMs;
        this.chunk = this.clamp(this.chunk / 2);
      }
      return;
    }
    const target = this.clamp(this.rate * TARGET_CHUNK_MS);
    this.chunk = target > this.chunk ? this.clamp(Math.min(target, this.chunk * 2)) : target;
  }

  private clamp(n: number): number {
    const g = Math.floor(n / GRAIN) * GRAIN;
    return Math.max(this.minChunk, Math.min(this.maxChunk, g));
  }
}

/**
 * When each chunk was sent, so an ack (which names an offset) can be turned
 * into per-chunk round trips for a ChunkSizer.
 */
export class SentChunks {
  private q: { end: number; bytes: number; at: number }[] = [];
  private head = 0;

  sent(offset: number, bytes: number, nowMs: number): void {
    this.q.push({ end: offset + bytes, bytes, at: nowMs });
  }

  /** Every byte before `offset` is acknowledged: feed the chunks it completes to `sizer`. */
  acked(offset: number, sizer: ChunkSizer, nowMs: number): void {
    while (this.head < this.q.length && this.q[this.head].end <= offset) {
      const c = this.q[this.head++];
      sizer.acked(c.bytes, nowMs - c.at, nowMs);
    }
    if (this.head > 64 && this.head * 2 > this.q.length) {
      this.q = this.q.slice(this.head);
      this.head = 0;
    }
  }
}
