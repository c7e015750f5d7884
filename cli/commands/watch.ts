import { Command } from 'commander';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/watch') => require('../run/watch');

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description('watch a terminal read-only (OBSERVER): its current screen, then live output; keystrokes are never sent')
    .argument('<machine>', 'machine name')
    .argument('[terminal]', 'terminal id (default: the newest shell on the machine)')
    .addHelpText('after', '\nCtrl-C stops watching; the terminal is not affected.')
    .action((machine: string, terminal: string | undefined, _o, cmd: Command) => run().watch(machine, terminal, cmd));
}
