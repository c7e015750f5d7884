import { Command } from 'commander';
import { DEFAULT_TIMEOUTS } from '../../protocol';
import { Agent } from '../../app/agent';
import { defaultAgentStateDir, defaultMachineName } from '../paths';
import { fail } from '../output';
import { positiveInt, seconds } from '../options';
import { serverAddress } from '../server-address';

export function agentCommand(name = 'agent'): Command {
  return new Command(name)
    .description('run the agent: make this machine reachable (dials out; never listens)')
    .option('--name <name>', 'machine name', defaultMachineName())
    .option('--state-dir <dir>', "where the agent keeps its identity", defaultAgentStateDir())
    .option('--heartbeat-interval <s>', 'seconds between heartbeats', seconds)
    .option('--keepalive <s>', 'gRPC keepalive ping interval', seconds, DEFAULT_TIMEOUTS.keepaliveS)
    .option('--reconnect-min <ms>', 'first reconnect delay (doubles, with jitter, up to --reconnect-max)', positiveInt, 250)
    .option('--reconnect-max <ms>', 'longest reconnect delay', positiveInt, 30_000)
    .option('--sleep-detect <s>', 'a timer this late means the machine slept: reconnect at once', seconds, 5)
    .addHelpText('after', '\nExample:\n  cmdop agent --server cp.example.com:7420 --name build-box')
    .action(async (o, cmd: Command) => {
      const agent = new Agent({
        server: serverAddress(cmd),
        name: o.name,
        stateDir: o.stateDir,
        heartbeatIntervalS: o.heartbeatInterval,
        keepaliveS: o.keepalive,
        backoffInitialMs: o.reconnectMin,
        backoffMaxMs: o.reconnectMax,
        sleepDetectMs: o.sleepDetect * 1000,
      });
      agent.on('fatal', (e: Error) => fail(e.message));
      agent.on('session-ended', ({ reason, terminals }: { reason: string; terminals: string[] }) => {
        const what = terminals.length ? `its terminals ${terminals.join(', ')} were closed` : 'it had no terminals';
        process.stderr.write(`cmdop agent: the previous session ended (${reason}); ${what}; starting a new session\n`);
      });
      await agent.start().catch((e) => fail(e.message));
      process.stdout.write(`cmdop agent ${o.name} connected to ${serverAddress(cmd)} (session ${agent.sessionId})\n`);
      agent.on('connected', (session: string) => process.stdout.write(`cmdop agent ${o.name}: session ${session} connected\n`));
      const stop = () => {
        agent.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
