import { Command, Option } from 'commander';
import { DEFAULT_SERVER, DEFAULT_TIMEOUTS } from '../../protocol/limits';
import { defaultDataDir } from '../../lib/paths';
import { seconds } from '../options';
import { SERVER_NODE_FLAGS, relaunchWithNodeFlags } from '../relaunch';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/server') => require('../run/server');

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run a control plane: agents dial in, clients attach')
    .option('--listen <host:port>', 'address to listen on', DEFAULT_SERVER)
    .option('--data-dir <dir>', 'where the SQLite store (unless --store), the admin token and TLS files live', defaultDataDir())
    .option('--store <url>', 'keep the state in PostgreSQL (postgres://USER:PASS@HOST/DB) instead of DATA_DIR/cmdop.sqlite; replicas share one')
    .option('--bus <url>', 'NATS for control events among replicas (nats://HOST:4222[,...]): revocations, sessions moving; with --store')
    .option('--peer-listen <host:port>', 'take calls other replicas forward for machines whose agents are here (PeerService); with --store and a cluster secret')
    .option('--cluster-secret-file <file>', 'the secret every replica shares, admitting each to the others\' peer port (or CMDOP_CLUSTER_SECRET)')
    .option('--grace-period <s>', 'GRACE_PERIOD -> DISCONNECTED after this long', seconds, DEFAULT_TIMEOUTS.gracePeriodS)
    .option('--background-timeout <s>', 'BACKGROUND -> DISCONNECTED after this long', seconds, DEFAULT_TIMEOUTS.backgroundTimeoutS)
    .option('--heartbeat-timeout <s>', 'CONNECTED -> GRACE_PERIOD without an agent heartbeat this long', seconds, DEFAULT_TIMEOUTS.heartbeatTimeoutS)
    .option('--client-timeout <s>', 'close a client stream without a heartbeat this long', seconds, DEFAULT_TIMEOUTS.clientTimeoutS)
    .option('--heartbeat-interval <s>', 'heartbeat interval asked of agents', seconds, DEFAULT_TIMEOUTS.heartbeatIntervalS)
    .option('--tls', 'TLS with a self-signed certificate generated once into DATA_DIR/tls (clients pin its fingerprint)')
    .option('--tls-cert <file>', 'TLS certificate chain (PEM), e.g. from your CA')
    .option('--tls-key <file>', 'its private key (PEM)')
    .option('--insecure', 'allow a non-loopback --listen without TLS')
    .option('--web-listen <host:port>', 'sign-in pages and OAuth endpoints (default: --listen port + 1)')
    .option('--public-url <url>', 'the web address people and clients use, if not the listen address (e.g. behind a proxy)')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics, on a port of its own (off by default; no authentication: keep it on loopback or an operations network)')
    // For tests: a device flow that polls every second, access tokens that expire quickly.
    .addOption(new Option('--oauth-poll-interval <s>').argParser(seconds).hideHelp())
    .addOption(new Option('--oauth-access-ttl <s>').argParser(seconds).hideHelp())
    // For tests: how long a console upload waits for its machine to come back (default 60).
    .addOption(new Option('--upload-resume <s>').argParser(seconds).hideHelp())
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  cmdop server --listen 127.0.0.1:7420 --data-dir /var/lib/cmdop\n' +
        '  cmdop server --listen 0.0.0.0:7420 --tls          (then: cmdop --server grpcs://HOST:7420 login)\n' +
        '  cmdop server --store postgres://cmdop@db.internal/cmdop --data-dir /var/lib/cmdop\n' +
        '  cmdop server --store postgres://cmdop@db.internal/cmdop --bus nats://nats.internal:4222 \\\n' +
        '               --peer-listen 10.0.0.5:7422 --cluster-secret-file /etc/cmdop/cluster.secret   (a replica)\n' +
        '  cmdop server --metrics-listen 127.0.0.1:9464     (then scrape http://127.0.0.1:9464/metrics)\n' +
        '\nOn first start DATA_DIR/admin.token (0600) holds a token for the admin user: CMDOP_TOKEN=$(cat DATA_DIR/admin.token).',
    )
    // A control plane runs in a node with the heap flags it needs (cli/relaunch.ts).
    .action((o) => (relaunchWithNodeFlags(SERVER_NODE_FLAGS) ? undefined : run().runServer(o)));
}
