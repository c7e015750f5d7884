import { Command } from 'commander';
import { DEFAULT_TIMEOUTS } from '../../protocol';
import { Agent } from '../../app/agent';
import { defaultAgentStateDir, defaultMachineName } from '../paths';
import { fail } from '../output';
import { seconds } from '../options';
import { serverAddress } from '../server-address';

export function agentCommand(name = 'agent'): Command {
  return new Command(name)
    .description('run the agent: make this machine reachable (dials out; never listens)')
    .option('--name <name>', 'machine name', defaultMachineName())
    .option('--state-dir <dir>', "where the agent keeps its identity", defaultAgentStateDir())
    .option('--heartbeat-interval <s>', 'seconds between heartbeats', seconds)
    .option('--keepalive <s>', 'gRPC keepalive ping interval', seconds, DEFAULT_TIMEOUTS.keepaliveS)
    .addHelpText('after', '\nExample:\n  cmdop agent --server cp.example.com:7420 --name build-box')
    .action(async (o, cmd: Command) => {
      const agent = new Agent({
        server: serverAddress(cmd),
        name: o.name,
        stateDir: o.stateDir,
        heartbeatIntervalS: o.heartbeatInterval,
        keepaliveS: o.keepalive,
      });
      agent.on('fatal', (e: Error) => fail(e.message));
      await agent.start().catch((e) => fail(e.message));
      process.stdout.write(`cmdop agent ${o.name} connected to ${serverAddress(cmd)} (session ${agent.sessionId})\n`);
      const stop = () => {
        agent.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
