import { Command } from 'commander';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/connect') => require('../run/connect');

export function registerConnect(program: Command): void {
  program
    .command('connect')
    .description('an interactive terminal on MACHINE, like ssh (Enter ~ . detaches; the terminal keeps running)')
    .argument('<machine>', 'machine name (see cmdop machines)')
    .option('--terminal <id>', 'attach to this running terminal instead of opening a new one')
    .addHelpText('after', '\nExit status: the shell\'s, or 255 when the connection fails.\nExamples:\n  cmdop connect build-box\n  cmdop connect build-box --terminal 3f9a2c1d')
    .action((machine: string, o, cmd: Command) => run().connect(machine, o, cmd));
}
