// ssh's escape sequence: "~." at the start of a line detaches; "~~" sends
// one "~". Only a '~' right after a newline (or at the start) is special.

export type EscapeResult = { send: Buffer; detach: boolean };

export class EscapeScanner {
  private atLineStart = true;
  private pendingTilde = false;

  scan(chunk: Buffer): EscapeResult {
    // Fast path: no '~' and nothing pending means nothing to do but track line starts.
    if (!this.pendingTilde && chunk.indexOf(0x7e) === -1) {
      const last = chunk[chunk.length - 1];
      if (chunk.length > 0) this.atLineStart = last === 0x0d || last === 0x0a;
      return { send: chunk, detach: false };
    }
    const out: number[] = [];
    for (const b of chunk) {
      if (this.pendingTilde) {
        this.pendingTilde = false;
        if (b === 0x2e) return { send: Buffer.from(out), detach: true }; // "~."
        if (b === 0x7e) {
          out.push(0x7e); // "~~" -> "~"
          this.atLineStart = false;
          continue;
        }
        out.push(0x7e);
      } else if (b === 0x7e && this.atLineStart) {
        this.pendingTilde = true;
        continue;
      }
      out.push(b);
      this.atLineStart = b === 0x0d || b === 0x0a;
    }
    return { send: Buffer.from(out), detach: false };
  }
}
