// File commands in scp's habits: `cmdop cp SRC DST` where either side may be
// MACHINE:PATH, `-r` for directories, a progress bar on a terminal; and
// `ls`, `rm`, `mkdir`, `mv` on MACHINE:PATH. What they do is in ../run/files.ts.
import { Command } from 'commander';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/files') => require('../run/files');

export function registerFiles(program: Command): void {
  program
    .command('cp')
    .description('copy files to or from a machine: cmdop cp [-r] SRC DST, where SRC or DST is MACHINE:PATH')
    .argument('<src>', 'a local path or MACHINE:PATH')
    .argument('<dst>', 'a local path or MACHINE:PATH (an existing directory receives SRC under its name)')
    .option('-r, --recursive', 'copy directories and everything in them')
    .option('-n, --no-clobber', 'refuse to replace an existing file')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  cmdop cp build.tar.gz box:/tmp/            upload into /tmp on box\n' +
        '  cmdop cp box:/var/log/syslog .             download into this directory\n' +
        '  cmdop cp -r box:~/project ./project-copy   a whole directory\n' +
        'Relative remote paths start in the agent user\'s home directory. Transfers are\n' +
        'checked with MD5 and resume by themselves after a dropped connection.',
    )
    .action((src: string, dst: string, o, cmd: Command) => run().cp(src, dst, o, cmd));

  program
    .command('ls')
    .description('list a directory (or show a file) on a machine')
    .argument('<target>', 'MACHINE:PATH (MACHINE: alone lists the home directory)')
    .option('-l, --long', 'type, mode, size and modification time')
    .option('-a, --all', 'include names starting with a dot')
    .option('--json', 'machine-readable output')
    .action((target: string, o, cmd: Command) => run().ls(target, o, cmd));

  program
    .command('rm')
    .description('remove a file (or, with -r, a directory) on a machine')
    .argument('<target>', 'MACHINE:PATH')
    .option('-r, --recursive', 'remove a directory and everything in it')
    .option('-f, --force', 'no error if it does not exist')
    .action((target: string, o, cmd: Command) => run().rm(target, o, cmd));

  program
    .command('mkdir')
    .description('make a directory on a machine')
    .argument('<target>', 'MACHINE:PATH')
    .option('-p, --parents', 'make parent directories as needed; no error if it exists')
    .action((target: string, o, cmd: Command) => run().mkdir(target, o, cmd));

  program
    .command('mv')
    .description('rename or move a file or directory on a machine')
    .argument('<from>', 'MACHINE:PATH')
    .argument('<to>', 'PATH or MACHINE:PATH on the same machine')
    .option('-n, --no-clobber', 'refuse to replace an existing file')
    .action((fromArg: string, toArg: string, o, cmd: Command) => run().mv(fromArg, toArg, o, cmd));
}
