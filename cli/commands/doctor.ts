import { Command } from 'commander';
import { defaultAgentStateDir } from '../../lib/paths';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/doctor') => require('../run/doctor');

/** `cmdop doctor` (also `cmdop-agent doctor`, for the agent-only package). */
export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check the server address, its TLS pin, your token, the clock and the agent service, with advice for each problem')
    .option('--state-dir <dir>', "the agent's state dir, for its credential and status (default: the installed service's, else this user's)")
    .option('--json', 'the checks as JSON')
    .addHelpText(
      'after',
      `\nEach check prints OK, WARN, FAIL or SKIP and one line of advice; the exit code is 1 when one FAILs.\n` +
        `Without --server it checks the installed agent service's control plane, else $CMDOP_SERVER, else 127.0.0.1:7420.\n` +
        `This user's agent state dir: ${defaultAgentStateDir()}`,
    )
    .action((o, cmd: Command) => run().doctor(o, cmd));
}
