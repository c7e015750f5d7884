import { Command } from 'commander';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/machines') => require('../run/machines');

export function registerMachines(program: Command): void {
  program
    .command('machines')
    .description('list every machine with its state, capabilities, latest metrics and terminals')
    .option('--json', 'machine-readable output')
    .action((o, cmd: Command) => run().listMachines(o, cmd));
}
