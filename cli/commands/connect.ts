import { Command } from 'commander';
import { fail } from '../output';
import { runInteractive } from '../interactive';
import { clientFor } from '../connection';

export function registerConnect(program: Command): void {
  program
    .command('connect')
    .description('an interactive terminal on MACHINE, like ssh (Enter ~ . detaches; the terminal keeps running)')
    .argument('<machine>', 'machine name (see cmdop machines)')
    .option('--terminal <id>', 'attach to this running terminal instead of opening a new one')
    .addHelpText('after', '\nExit status: the shell\'s, or 255 when the connection fails.\nExamples:\n  cmdop connect build-box\n  cmdop connect build-box --terminal 3f9a2c1d')
    .action(async (machine: string, o, cmd: Command) => {
      const client = await clientFor(cmd, { machine });
      const cols = process.stdout.columns || 80;
      const rows = process.stdout.rows || 24;
      const a = await (o.terminal
        ? client.terminal.attach(o.terminal, { mode: 'operator' })
        : client.terminal.open({ cols, rows })
      ).catch((e) => fail(e.message, 255));
      if (o.terminal && process.stdout.isTTY) a.resize(cols, rows).catch(() => {});
      runInteractive(a, { machine, input: true, reattachHint: true });
    });
}
