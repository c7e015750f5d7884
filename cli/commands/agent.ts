import { Command } from 'commander';
import { DEFAULT_TIMEOUTS } from '../../protocol/limits';
import { defaultAgentStateDir } from '../../lib/paths';
import { positiveInt, seconds } from '../options';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/agent') => require('../run/agent');

export function agentCommand(name = 'agent'): Command {
  return new Command(name)
    .description('run the agent: make this machine reachable (dials out; never listens)')
    .option('--name <name>', 'machine name (default: the enrolled name, else this host\'s name)')
    .option('--state-dir <dir>', "where the agent keeps its identity and credential", defaultAgentStateDir())
    .option('--enroll-token <token>', 'one-time token from `cmdop agents enroll` (or $CMDOP_ENROLL_TOKEN)')
    .option('--login', 'sign in with the device flow to enroll this machine as yours (default when run on a terminal)')
    .option('--heartbeat-interval <s>', 'seconds between heartbeats', seconds)
    .option('--keepalive <s>', 'gRPC keepalive ping interval', seconds, DEFAULT_TIMEOUTS.keepaliveS)
    .option('--reconnect-min <ms>', 'first reconnect delay (doubles, with jitter, up to --reconnect-max)', positiveInt, 250)
    .option('--reconnect-max <ms>', 'longest reconnect delay', positiveInt, 30_000)
    .option('--file-root <dir>', 'file operations may only touch paths inside this directory (default: anywhere the agent user may)')
    .option('--sleep-detect <s>', 'a timer this late means the machine slept: reconnect at once', seconds, 5)
    .addHelpText(
      'after',
      '\nEnroll once, then it reconnects by itself:\n' +
        '  cmdop agents enroll --name build-box            (where you are signed in; prints a token)\n' +
        '  cmdop agent --server grpcs://cp.example.com:7420 --enroll-token TOKEN\n' +
        'or, with a person at this machine:\n' +
        '  cmdop agent --server grpcs://cp.example.com:7420 --name build-box --login',
    )
    .action((o, cmd: Command) => run().runAgent(o, cmd));
}
