// Small pieces every interactive command shares: notices on stderr that do
// not garble a raw-mode screen, exiting only after output is flushed, and
// writing output with backpressure.
import type { TerminalAttachment } from '../sdk';
import type { TerminalExit } from '../protocol';

let rawMode = false;

export function setRawMode(on: boolean): void {
  if (process.stdin.isTTY) process.stdin.setRawMode(on);
  rawMode = on && !!process.stdin.isTTY;
}

/** A one-line notice on stderr, e.g. "[cmdop: reconnected]". */
export function notice(text: string): void {
  const nl = rawMode ? '\r\n' : '\n';
  process.stderr.write(`${rawMode ? '\r\n' : ''}[cmdop: ${text}]${nl}`);
}

export function fail(message: string, code = 1): never {
  setRawMode(false);
  process.stderr.write(`cmdop: ${message}\n`);
  process.exit(code);
}

/** Exit once stdout and stderr have flushed (a pipe may still hold output). */
export function exitAfterFlush(code: number): void {
  setRawMode(false);
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

/**
 * Exit when the attachment ends: with the remote exit code (or what `code`
 * makes of the exit), or 255 when the attachment failed, as ssh does.
 */
export function exitWhenDone(a: TerminalAttachment, code: (exit: TerminalExit) => number = (e) => e.exitCode): void {
  a.done.then(
    (exit) => {
      if (exit.error) notice(exit.error);
      exitAfterFlush(code(exit));
    },
    (e: Error) => {
      notice(e.message);
      exitAfterFlush(255);
    },
  );
}

/** Writes to `out`, pausing the attachment while `out` is full, so a slow reader slows the source. */
export function writeWithBackpressure(a: TerminalAttachment, out: NodeJS.WriteStream, data: Uint8Array): void {
  if (!out.write(data)) {
    a.pause();
    out.once('drain', () => a.resume());
  }
}

/** Rows of cells as aligned columns (the first row is the header). */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

/** Epoch ms as "2026-11-26 10:00:00" (UTC), or "-" for 0. */
export const when = (ms: number): string => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');
