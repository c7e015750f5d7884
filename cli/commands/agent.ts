import { Command } from 'commander';
import { DEFAULT_TIMEOUTS } from '../../protocol/limits';
import { defaultAgentStateDir } from '../../lib/paths';
import { positiveInt, seconds } from '../options';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/agent') => require('../run/agent');
const service = (): typeof import('../run/agentService') => require('../run/agentService');

export function agentCommand(name = 'agent'): Command {
  const agent = new Command(name);
  agent
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
    .option('--wait-for-server', 'keep retrying while the control plane cannot be reached at start (the service units pass it)')
    .addHelpText(
      'after',
      '\nEnroll once, then it reconnects by itself:\n' +
        '  cmdop agents enroll --name build-box            (where you are signed in; prints a token)\n' +
        '  cmdop agent --server grpcs://cp.example.com:7420 --enroll-token TOKEN\n' +
        'or, with a person at this machine:\n' +
        '  cmdop agent --server grpcs://cp.example.com:7420 --name build-box --login\n' +
        'On a server, as a service that starts at boot (systemd or launchd):\n' +
        '  sudo cmdop agent install-service --server grpcs://cp.example.com:7420 --enroll-token TOKEN\n' +
        '  cmdop agent status        cmdop agent logs -f',
    )
    .action((o, cmd: Command) => run().runAgent(o, cmd));
  agent
    .command('install-service')
    .description('run this agent as a service that starts at boot and restarts after a failure (systemd, launchd)')
    .option('--user', 'a service of your own (systemd --user, a LaunchAgent) instead of a system one')
    .option('--run-as <user>', 'system service: the account the agent and its shells run as (default: the user who ran sudo; root only if given)')
    .option('--print', 'print the unit and change nothing')
    .addHelpText(
      'after',
      '\n--server, --name, --state-dir and --enroll-token are the agent\'s own options. With --enroll-token the machine is\n' +
        'enrolled now and the credential is stored in the service\'s state dir (a system service: /var/lib/cmdop-agent),\n' +
        'so the unit holds no token; a restart or a reboot reuses the stored credential.',
    )
    .action((o, cmd: Command) => service().installService(o, cmd));
  agent
    .command('uninstall-service')
    .description('stop and remove the agent service (its state dir and credential are kept)')
    .option('--user', 'the --user service')
    .action((o, cmd: Command) => service().uninstallService(o, cmd));
  agent
    .command('status')
    .description("the agent service's state, and the agent's: enrolled name, server, session state, last error")
    .option('--user', 'the --user service')
    .option('--json', 'as JSON')
    .action((o, cmd: Command) => service().status(o, cmd));
  agent
    .command('logs')
    .description("the agent service's log (journalctl on Linux, its log file on macOS)")
    .option('--user', 'the --user service')
    .option('-f, --follow', 'keep printing new lines')
    .option('-n, --lines <n>', 'how many recent lines', positiveInt, 100)
    .action((o, cmd: Command) => service().logs(o, cmd));
  return agent;
}
