import { Command } from 'commander';
import { AttachMode, OutputStream, TerminalKind, TerminalSpec } from '../../protocol';
import { TerminalAttachment } from '../../sdk';
import { exitWhenDone, fail, notice, writeWithBackpressure } from '../output';
import { runInteractive } from '../interactive';
import { watchAttachment } from '../watchEvents';
import { clientFor } from '../connection';

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('run a command on MACHINE; its exit code is this command\'s exit code')
    .argument('<machine>', 'machine name')
    .argument('<command...>', 'the command (after --); one argument runs through the remote shell, several are run as is')
    .option('-t, --tty', 'run in a PTY (stdout and stderr merged, as on a terminal)')
    .option('-n, --no-stdin', 'do not forward stdin (it is forwarded when it is not a terminal)')
    .addHelpText(
      'after',
      [
        '',
        'Without -t, stdout and stderr stay separate and byte-exact (binary-safe).',
        'Exit status: the command\'s; 128+N when killed by signal N; 127 when not found; 255 when the connection fails.',
        'Examples:',
        "  cmdop exec build-box -- uname -a",
        "  cmdop exec build-box -- 'make -j8 2>&1 | tail'",
        '  tar c src | cmdop exec build-box -- tar x -C /tmp/src',
        '  cmdop exec -t build-box -- top',
      ].join('\n'),
    )
    .action(async (machine: string, command: string[], o, cmd: Command) => {
      const client = await clientFor(cmd, { machine });
      const pty = !!o.tty;
      const spec: TerminalSpec = {
        kind: TerminalKind.EXEC,
        argv: command.length > 1 ? command : [],
        shellCommand: command.length === 1 ? command[0] : '',
        pty,
        cols: process.stdout.columns || 80,
        rows: process.stdout.rows || 24,
        cwd: '',
        env: {},
        title: '',
      };
      const a: TerminalAttachment = await TerminalAttachment.start(client.transport(), {
        machine,
        terminalId: '',
        open: { machine, spec },
        mode: AttachMode.OPERATOR,
        fromSeq: undefined,
      }).catch((e) => fail(e.message, 255));

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
    });
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
