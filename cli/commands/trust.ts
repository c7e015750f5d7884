import { Command } from 'commander';
import { knownServersFile } from '../../lib/paths';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/trust') => require('../run/trust');

export function registerTrust(program: Command): void {
  program
    .command('trust')
    .description('the control plane certificates this user has pinned (like ssh known_hosts)')
    .option('--forget <address>', 'forget a pin, to accept a server\'s new certificate on purpose')
    .addHelpText('after', `\nPins live in ${knownServersFile()}.\nSet CMDOP_TLS_FINGERPRINT to require an exact fingerprint instead of trusting on first use.`)
    .action((o) => run().trust(o));
}
