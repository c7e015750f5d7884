// The observer figure's stream: fixed-size blocks, each
//
//   "B" + block number (10 digits) + " T" + write time (ms since the epoch,
//   17 characters, 3 decimals) + "|\n"           -- HEADER bytes
//   then a pattern of 63 printable characters and "\n", rotated by the block
//   number, up to the block's size.
//
// Written by pacedWriter.ts, checked byte by byte by StreamChecker (in the
// observer processes): every byte but the 17 time digits is known in advance
// from its offset alone, so a byte lost, repeated, reordered or corrupted
// shows wherever it falls, even after a gap.
import { performance } from 'node:perf_hooks';

export const HEADER = 32;
const PATTERN = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_\n');
const P = PATTERN.length; // 64

/** Wall-clock ms with sub-ms resolution; the same clock in every process of this machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

function header(k: number, t: number): string {
  return `B${String(k).padStart(10, '0')} T${t.toFixed(3).padStart(17, '0')}|\n`;
}

let tile: Buffer | undefined;
/** The pattern repeated, long enough to slice any block's filler from it. */
function patternTile(blockBytes: number): Buffer {
  if (!tile || tile.length < blockBytes + P) {
    tile = Buffer.alloc(blockBytes + 2 * P);
    for (let i = 0; i < tile.length; i++) tile[i] = PATTERN[i % P];
  }
  return tile;
}

/** The expected bytes of block `k` from offset `from` to `to` (both >= HEADER), within the block. */
function filler(k: number, blockBytes: number, from: number, to: number): Buffer {
  const start = (k + from) % P;
  return patternTile(blockBytes).subarray(start, start + (to - from));
}

/** Block `k`, stamped with time `t`. */
export function blockBytesFor(k: number, blockBytes: number, t: number): Buffer {
  const b = Buffer.allocUnsafe(blockBytes);
  b.write(header(k, t), 0, 'latin1');
  filler(k, blockBytes, HEADER, blockBytes).copy(b, HEADER);
  return b;
}

/** Checks one receiver's bytes, in stream order with possible jumps (gaps), and records each block's lag. */
export class StreamChecker {
  /** Bytes received and checked. */
  bytes = 0;
  /** Bytes that differ from what was written (counted per mismatching piece). */
  badBytes = 0;
  /** Blocks whose last byte arrived, and whose header (hence write time) arrived too. */
  blocksTimed = 0;
  /** Receive time − write time of each block at its last byte, ms. */
  readonly lags: number[] = [];
  private hdr = Buffer.alloc(HEADER);
  private hdrBlock = -1;
  private hdrFilled = 0;
  private hdrTime = NaN;
  private next = 0; // the offset expected next; a jump ahead is a gap

  constructor(readonly blockBytes: number) {}

  /** `data` starting at stream offset `seq`, received at time `at`. */
  add(seq: number, data: Uint8Array, at: number): void {
    const B = this.blockBytes;
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (seq !== this.next) this.hdrBlock = -1; // a jump: a header in progress is lost
    let pos = seq;
    let i = 0;
    while (i < buf.length) {
      const k = Math.floor(pos / B);
      const off = pos - k * B;
      const n = Math.min(buf.length - i, B - off);
      if (off < HEADER) {
        const hn = Math.min(n, HEADER - off);
        if (off === 0) {
          this.hdrBlock = k;
          this.hdrFilled = 0;
          this.hdrTime = NaN;
        }
        if (this.hdrBlock === k && this.hdrFilled === off) {
          buf.copy(this.hdr, off, i, i + hn);
          this.hdrFilled += hn;
          if (this.hdrFilled === HEADER) this.parseHeader(k);
        }
      }
      const fo = Math.max(off, HEADER);
      const fe = off + n;
      if (fe > fo && !buf.subarray(i + (fo - off), i + n).equals(filler(k, B, fo, fe))) this.badBytes += fe - fo;
      if (off + n === B && this.hdrBlock === k && Number.isFinite(this.hdrTime)) {
        this.lags.push(at - this.hdrTime);
        this.blocksTimed++;
      }
      pos += n;
      i += n;
    }
    this.bytes += buf.length;
    this.next = seq + buf.length;
  }

  private parseHeader(k: number): void {
    const h = this.hdr.toString('latin1');
    const expect = `B${String(k).padStart(10, '0')} T`;
    if (!h.startsWith(expect) || !h.endsWith('|\n')) {
      this.badBytes += HEADER;
      this.hdrBlock = -1;
      return;
    }
    this.hdrTime = Number(h.slice(expect.length, HEADER - 2));
    if (!Number.isFinite(this.hdrTime)) this.badBytes += HEADER;
  }
}
