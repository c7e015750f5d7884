// A terminal's output as a run of chunks addressed by byte offset (`seq`).
// The agent keeps what the control plane has not acknowledged in one; the
// control plane keeps recent output for late joiners and re-attaches in
// another. Chunks are kept as received (no copying into a ring): appending
// is O(1), reading from an offset is a binary search, trimming drops whole
// chunks and slices at most one.
import { OutputStream } from './generated/cmdop/v1/cmdop';

export interface OutputChunk {
  readonly seq: number;
  readonly data: Uint8Array;
  readonly commandId: string;
  readonly stream: OutputStream;
  /** Cache for the control plane: this chunk encoded once for every client. */
  encoded?: Buffer;
}

/** What a dropped chunk's slot holds until the next compaction (never read: it is before `first`). */
const DROPPED: OutputChunk = Object.freeze({ seq: -1, data: new Uint8Array(0), commandId: '', stream: OutputStream.OUTPUT_STREAM_UNSPECIFIED });

export class OutputLog {
  private chunks: OutputChunk[] = [];
  private first = 0; // index of the oldest live chunk in `chunks`
  private startSeq: number;
  private headSeq: number;

  constructor(startSeq = 0) {
    this.startSeq = startSeq;
    this.headSeq = startSeq;
  }

  /** Offset of the oldest byte held. */
  get start(): number {
    return this.startSeq;
  }

  /** Offset one past the newest byte held (the total output so far). */
  get head(): number {
    return this.headSeq;
  }

  /** Bytes held. */
  get size(): number {
    return this.headSeq - this.startSeq;
  }

  append(data: Uint8Array, commandId = '', stream = OutputStream.OUTPUT_STREAM_UNSPECIFIED): OutputChunk {
    const chunk: OutputChunk = { seq: this.headSeq, data, commandId, stream };
    if (data.length === 0) return chunk;
    this.chunks.push(chunk);
    this.headSeq += data.length;
    return chunk;
  }

  /**
   * Chunks holding [seq, head), at most about `maxBytes` of them (always at
   * least one when any is held). The first is sliced when `seq` falls inside
   * it. `seq` below `start` reads from `start`.
   */
  readFrom(seq: number, maxBytes = Infinity): OutputChunk[] {
    if (seq >= this.headSeq) return [];
    if (seq < this.startSeq) seq = this.startSeq;
    let i = this.indexOf(seq);
    const out: OutputChunk[] = [];
    let bytes = 0;
    while (i < this.chunks.length && (bytes < maxBytes || out.length === 0)) {
      let c = this.chunks[i++];
      if (c.seq < seq) c = sliceChunk(c, seq);
      out.push(c);
      bytes += c.data.length;
    }
    return out;
  }

  /** Forget every byte before `seq`. */
  trimTo(seq: number): void {
    if (seq <= this.startSeq) return;
    if (seq >= this.headSeq) {
      this.chunks = [];
      this.first = 0;
      this.startSeq = this.headSeq;
      return;
    }
    const i = this.indexOf(seq);
    const c = this.chunks[i];
    if (c.seq < seq) this.chunks[i] = sliceChunk(c, seq);
    // The dropped chunks' slots let go of their bytes now, not at the next
    // compaction: up to 64 of them (16 MiB of 256 KiB chunks) stayed
    // reachable, and an exited terminal's trimmed buffer kept all of it.
    for (let j = this.first; j < i; j++) this.chunks[j] = DROPPED;
    this.first = i;
    this.startSeq = seq;
    // Compact once the dead prefix dominates, so trimming stays amortised O(1).
    if (this.first > 64 && this.first * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }

  /**
   * Continue at `seq` (at or past head) with nothing held: the bytes between
   * were never received. Callers report that range; the log only stays true.
   */
  skipTo(seq: number): void {
    if (seq < this.headSeq) throw new RangeError(`skipTo(${seq}) is behind head ${this.headSeq}`);
    this.chunks = [];
    this.first = 0;
    this.startSeq = this.headSeq = seq;
  }

  /** The chunk holding the oldest byte, if any. */
  oldest(): OutputChunk | undefined {
    return this.first < this.chunks.length ? this.chunks[this.first] : undefined;
  }

  /** Drop the oldest chunk whole; returns the new start. */
  dropOldest(): number {
    const c = this.oldest();
    if (!c) return this.startSeq;
    this.trimTo(c.seq + c.data.length);
    return this.startSeq;
  }

  private indexOf(seq: number): number {
    let lo = this.first;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.chunks[mid].seq <= seq) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

function sliceChunk(c: OutputChunk, seq: number): OutputChunk {
  return { seq, data: c.data.subarray(seq - c.seq), commandId: c.commandId, stream: c.stream };
}
