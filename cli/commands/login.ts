import { Command } from 'commander';
import { loginsFile } from '../../lib/paths';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/login') => require('../run/login');

export function registerLogin(program: Command): void {
  program
    .command('login')
    .description('sign in to a control plane (OAuth device flow: open a URL, enter a code)')
    .option('--no-browser', 'only print the URL and code (for a headless machine)')
    .addHelpText(
      'after',
      '\nOn a headless server, open the printed URL on any device with a browser (your laptop, your phone),\n' +
        'sign in there and enter the code. The refresh token is kept in ' + loginsFile() + ' (mode 0600).',
    )
    .action((o, cmd: Command) => run().login(o, cmd));

  program
    .command('logout')
    .description('revoke and forget the sign-in to this control plane')
    .action((_o, cmd: Command) => run().logout(cmd));

  program
    .command('whoami')
    .description('who the control plane says you are, and where the token came from')
    .option('--json', 'machine-readable output')
    .action((o, cmd: Command) => run().whoami(o, cmd));
}
