// Steady output for the failover bench (bench/replicas.ts), run on the
// agent as an exec terminal's command: numbered lines at a set rate, each
// stamped with the wall-clock time it was written, so that the receiver can
// check that every line came, once and in order, and tell the lines written
// after a given moment (the kill of a replica) from those already in flight.
//
//   node numberedOutput.js BYTES_PER_S SECONDS
//
// stdout: "SSSSSSSSS TTTTTTTTTTTTT\n" (sequence from 1, 9 digits; Date.now(), 13
// digits): 24 bytes a line, written every 10 ms as far as the schedule says.
// stderr, at the end: "sha256 HEX bytes N lines N\n" of everything written.
import crypto from 'node:crypto';

export const LINE_BYTES = 24;

/** The line of sequence number `seq` written at `ms`. */
export function numberedLine(seq: number, ms: number): string {
  return `${String(seq).padStart(9, '0')} ${String(ms).padStart(13, '0')}\n`;
}

/** Parses what numberedOutput's stderr says at the end. */
export function parseSummary(stderr: string): { sha256: string; bytes: number; lines: number } | undefined {
  const m = /sha256 ([0-9a-f]{64}) bytes (\d+) lines (\d+)/.exec(stderr);
  return m ? { sha256: m[1], bytes: Number(m[2]), lines: Number(m[3]) } : undefined;
}

function main(): void {
  const rate = Number(process.argv[2]);
  const seconds = Number(process.argv[3]);
  if (!(rate > 0) || !(seconds > 0)) throw new Error('usage: numberedOutput BYTES_PER_S SECONDS');
  const totalLines = Math.ceil((rate * seconds) / LINE_BYTES);
  const hash = crypto.createHash('sha256');
  const t0 = Date.now();
  let seq = 0;
  let bytes = 0;
  const tick = () => {
    const now = Date.now();
    const due = Math.min(totalLines, Math.floor(((now - t0) / 1000) * (rate / LINE_BYTES)) + 1);
    let chunk = '';
    while (seq < due) chunk += numberedLine(++seq, now);
    if (chunk) {
      hash.update(chunk);
      bytes += chunk.length;
      // A pipe: written synchronously on Linux (a reader that stops reading holds this process here).
      process.stdout.write(chunk);
    }
    if (seq >= totalLines) {
      clearInterval(timer);
      process.stderr.write(`sha256 ${hash.digest('hex')} bytes ${bytes} lines ${seq}\n`);
      return;
    }
  };
  const timer = setInterval(tick, 10);
  tick();
}

if (require.main === module) main();
