import { Command } from 'commander';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/exec') => require('../run/exec');

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
    .action((machine: string, command: string[], o, cmd: Command) => run().exec(machine, command, o, cmd));
}
