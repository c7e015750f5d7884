import { Command } from 'commander';
import { DEFAULT_SERVER } from '../../protocol/limits';
import { defaultDataDir, defaultMachineName } from '../../lib/paths';
import { SERVER_NODE_FLAGS, relaunchWithNodeFlags } from '../relaunch';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/up') => require('../run/up');

export function registerUp(program: Command): void {
  program
    .command('up')
    .description('the embedded default: a local control plane plus an agent for this machine')
    .option('--listen <host:port>', 'control plane address (loopback by default)', DEFAULT_SERVER)
    .option('--data-dir <dir>', 'control plane data', defaultDataDir())
    .option('--name <name>', 'name of this machine', defaultMachineName())
    // A control plane runs in a node with the heap flags it needs (cli/relaunch.ts).
    .action((o) => (relaunchWithNodeFlags(SERVER_NODE_FLAGS) ? undefined : run().up(o)));
}
