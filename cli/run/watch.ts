// `cmdop watch`, run (its options are in ../commands/watch.ts).
import type { Command } from 'commander';
import { TerminalKind, TokenKind } from '../../protocol';
import { exitWhenDone, fail, notice, writeWithBackpressure } from '../output';
import { watchAttachment } from '../watchEvents';
import { clientFor } from '../connection';

export async function watch(machine: string, terminal: string | undefined, cmd: Command): Promise<void> {
  const client = await clientFor(cmd, { machine });
  if (!terminal) {
    // A share link names its one terminal; it may not list the others.
    const me = await client.auth.whoami().catch((e) => fail(e.message));
    if (me.kind === TokenKind.SHARE) terminal = me.terminalId;
  }
  if (!terminal) {
    const list = await client.terminal.list().catch((e) => fail(e.message));
    const shells = list.filter((t) => !t.exited && t.spec?.kind === TerminalKind.SHELL);
    const newest = shells.sort((x, y) => y.createdMs - x.createdMs)[0];
    if (!newest) fail(`machine ${machine} has no running shell terminal to watch`);
    terminal = newest.terminalId;
  }
  const a = await client.terminal.attach(terminal, { mode: 'observer' }).catch((e) => fail(e.message, 255));
  notice(`watching terminal ${a.terminalId} on ${machine} read-only; Ctrl-C to stop`);
  watchAttachment(a, machine);
  // The snapshot rebuilds the remote screen in a terminal in its initial
  // state: it sets only what differs from it. DECSTR (soft reset: scroll
  // region, origin mode, pen, charsets, cursor visibility, saved cursor) and
  // autowrap (DECSTR may turn it off) put the local terminal there without
  // clearing its scrollback, then the screen is cleared.
  a.on('snapshot', (s) => process.stdout.write(Buffer.concat([Buffer.from('\x1b[!p\x1b[?7h\x1b[H\x1b[2J'), s.data])));
  a.on('output', (data) => writeWithBackpressure(a, process.stdout, data));
  exitWhenDone(a, (exit) => {
    notice(`terminal ${a.terminalId} exited with ${exit.exitCode}`);
    return 0;
  });
}
