// An operator's terminal in this terminal, like ssh: raw mode, keystrokes to
// the remote PTY, its output to stdout, window size followed, "~." detaches.
// Used by `cmdop connect` and `cmdop exec -t`.
import type { TerminalAttachment } from '../sdk';
import { EscapeScanner } from './escape';
import { exitAfterFlush, exitWhenDone, notice, setRawMode, writeWithBackpressure } from './output';
import { watchAttachment } from './watchEvents';

export interface InteractiveOptions {
  machine: string;
  /** Forward stdin (false for observers). */
  input: boolean;
  /** Say how to come back when detaching (a shell terminal); exec just ends. */
  reattachHint: boolean;
}

export function runInteractive(a: TerminalAttachment, opts: InteractiveOptions): void {
  const tty = !!process.stdin.isTTY;
  watchAttachment(a, opts.machine);
  a.on('output', (data) => writeWithBackpressure(a, process.stdout, data));
  a.on('snapshot', (s) => process.stdout.write(Buffer.concat([Buffer.from('\x1b[H\x1b[2J'), s.data])));

  if (opts.input) {
    if (tty) setRawMode(true);
    const escape = new EscapeScanner();
    process.stdin.on('data', (chunk: Buffer) => {
      const { send, detach } = tty ? escape.scan(chunk) : { send: chunk, detach: false };
      if (send.length > 0) a.write(send).catch((e) => notice(`input not delivered: ${e.message}`));
      if (detach) {
        a.close();
        notice(
          opts.reattachHint
            ? `detached; terminal ${a.terminalId} keeps running: cmdop connect ${opts.machine} --terminal ${a.terminalId}`
            : 'detached',
        );
        exitAfterFlush(0);
      }
    });
    process.stdin.on('end', () => {
      if (!tty) a.eof().catch(() => {});
    });
    process.stdin.resume();
    if (process.stdout.isTTY) {
      process.stdout.on('resize', () => {
        a.resize(process.stdout.columns, process.stdout.rows).catch((e) => notice(`resize refused: ${e.message}`));
      });
    }
  }

  exitWhenDone(a);
}

