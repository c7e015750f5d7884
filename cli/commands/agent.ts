import { Command } from 'commander';
import { DEFAULT_TIMEOUTS, nameError } from '../../protocol';
import { Agent } from '../../app/agent';
import { defaultAgentStateDir, defaultMachineName } from '../paths';
import { fail } from '../output';
import { positiveInt, seconds } from '../options';
import { serverAddress } from '../server-address';
import { connectionTo, pinnedCredentials } from '../connection';
import { agentCredential } from '../auth/agentCredential';
import { keepFreedMemoryForReuse } from '../../lib/mallocReuse';

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
    .action(async (o, cmd: Command) => {
      const addr = serverAddress(cmd);
      const badName = o.name !== undefined ? nameError('machine name', o.name) : undefined;
      if (badName) fail(badName);
      keepFreedMemoryForReuse();
      const log = (line: string) => process.stderr.write(`cmdop agent: ${line}\n`);
      const conn = await connectionTo(addr).catch((e) => fail(e.message));
      const cred = await agentCredential(conn, {
        stateDir: o.stateDir,
        machine: o.name ?? defaultMachineName(),
        nameGiven: o.name !== undefined,
        enrollToken: o.enrollToken ?? (process.env.CMDOP_ENROLL_TOKEN || undefined),
        interactive: !!o.login || (!!process.stdin.isTTY && !!process.stderr.isTTY),
        log,
      }).catch((e) => fail(e.message));
      const agent = new Agent({
        server: conn.address.target,
        token: cred.token,
        // TLS: the pin is checked again before every reconnect; a changed certificate stops the agent.
        credentials: conn.trust ? pinnedCredentials(addr) : undefined,
        channelOptions: conn.channelOptions,
        name: cred.machine,
        stateDir: o.stateDir,
        heartbeatIntervalS: o.heartbeatInterval,
        keepaliveS: o.keepalive,
        backoffInitialMs: o.reconnectMin,
        backoffMaxMs: o.reconnectMax,
        sleepDetectMs: o.sleepDetect * 1000,
        fileRoot: o.fileRoot,
      });
      agent.on('fatal', (e: Error) => fail(e.message));
      agent.on('session-ended', ({ reason, terminals }: { reason: string; terminals: string[] }) => {
        const what = terminals.length ? `its terminals ${terminals.join(', ')} were closed` : 'it had no terminals';
        log(`the previous session ended (${reason}); ${what}; starting a new session`);
      });
      await agent.start().catch((e) => fail(e.message));
      process.stdout.write(`cmdop agent ${cred.machine} connected to ${conn.address.display} (session ${agent.sessionId})\n`);
      agent.on('connected', (session: string) => process.stdout.write(`cmdop agent ${cred.machine}: session ${session} connected\n`));
      const stop = () => {
        agent.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
