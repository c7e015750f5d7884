// `cmdop exec`, run (its options are in ../commands/exec.ts).
import type { Command } from 'commander';
import { OutputStream } from '../../protocol';
import type { TerminalAttachment } from '../../sdk';
import { exitWhenDone, fail, notice, writeWithBackpressure } from '../output';
import { runInteractive } from '../interactive';
import { watchAttachment } from '../watchEvents';
import { clientFor } from '../connection';

export async function exec(machine: string, command: string[], o: { tty?: boolean; stdin: boolean }, cmd: Command): Promise<void> {
  const client = await clientFor(cmd, { machine });
  const pty = !!o.tty;
  // One word runs through the remote shell (`cmdop exec box 'ls | wc -l'`); several are argv.
  const a = await client.terminal
    .spawn(command.length === 1 ? command[0] : command, { machine, pty, cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 })
    .catch((e) => fail(e.message, 255));

  if (pty && process.stdin.isTTY) {
    runInteractive(a, { machine, input: true, reattachHint: false });
    return;
  }
  watchAttachment(a, machine);
  a.on('output', (data, chunk) =>
    writeWithBackpressure(a, chunk.stream === OutputStream.STDERR ? process.stderr : process.stdout, data),
  );
  if (o.stdin && !process.stdin.isTTY) pipeStdin(a);
  else a.eof().catch(() => {});
  exitWhenDone(a);
}

/** Forwards stdin in order, one piece in flight at a time, then closes the remote stdin. */
function pipeStdin(a: TerminalAttachment): void {
  const stdin = process.stdin;
  stdin.on('data', (chunk: Buffer) => {
    stdin.pause();
    a.write(chunk).then(
      () => stdin.resume(),
      (e) => {
        // A command that exits without reading all its input is not an error (as with a pipe).
        if (!a.exit) notice(`stdin not delivered: ${e.message}`);
        stdin.destroy();
      },
    );
  });
  stdin.on('end', () => a.eof().catch(() => {}));
}
