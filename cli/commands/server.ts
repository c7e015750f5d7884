import { Command } from 'commander';
import { DEFAULT_SERVER, DEFAULT_TIMEOUTS } from '../../protocol';
import { startControlPlane } from '../../control-plane/server';
import { defaultDataDir } from '../paths';
import { fail } from '../output';
import { seconds } from '../options';

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run a control plane: agents dial in, clients attach')
    .option('--listen <host:port>', 'address to listen on', DEFAULT_SERVER)
    .option('--data-dir <dir>', 'where the SQLite store lives', defaultDataDir())
    .option('--grace-period <s>', 'GRACE_PERIOD -> DISCONNECTED after this long', seconds, DEFAULT_TIMEOUTS.gracePeriodS)
    .option('--background-timeout <s>', 'BACKGROUND -> DISCONNECTED after this long', seconds, DEFAULT_TIMEOUTS.backgroundTimeoutS)
    .option('--heartbeat-timeout <s>', 'CONNECTED -> GRACE_PERIOD without an agent heartbeat this long', seconds, DEFAULT_TIMEOUTS.heartbeatTimeoutS)
    .option('--client-timeout <s>', 'close a client stream without a heartbeat this long', seconds, DEFAULT_TIMEOUTS.clientTimeoutS)
    .option('--heartbeat-interval <s>', 'heartbeat interval asked of agents', seconds, DEFAULT_TIMEOUTS.heartbeatIntervalS)
    .addHelpText('after', '\nExample:\n  cmdop server --listen 127.0.0.1:7420 --data-dir /var/lib/cmdop')
    .action(async (o) => {
      const cp = await startControlPlane({
        listen: o.listen,
        dataDir: o.dataDir,
        gracePeriodS: o.gracePeriod,
        backgroundTimeoutS: o.backgroundTimeout,
        heartbeatTimeoutS: o.heartbeatTimeout,
        clientTimeoutS: o.clientTimeout,
        heartbeatIntervalS: o.heartbeatInterval,
      }).catch((e) => fail(e.message));
      process.stdout.write(`cmdop control plane listening on ${cp.address} (data: ${o.dataDir})\n`);
      const stop = () => {
        cp.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
