// `cmdop`: one command line for the whole product. Parsing and help come
// from commander; each command's name, options and help live in
// cli/commands/, and what it does in cli/run/, required only when it runs.
// Every invocation loads all of cli/commands/ (commander needs each command
// up front for parsing and --help), so those files import nothing but
// commander, the option parsers, lib/paths and protocol/limits: requiring
// the implementations eagerly made every `cmdop` (even --version) load the
// control plane's, the agent's and the progress bar's dependencies: ~0.3 s
// of CPU on each run here, --version 0.61 s and `cmdop ls` 0.61 s wall
// against 0.22 s and 0.37 s without. test/cliStartup.test.ts keeps it so.
import { Command } from 'commander';
import { registerUp } from './commands/up';
import { registerServer } from './commands/server';
import { agentCommand } from './commands/agent';
import { registerMachines } from './commands/machines';
import { registerConnect } from './commands/connect';
import { registerWatch } from './commands/watch';
import { registerExec } from './commands/exec';
import { registerLogin } from './commands/login';
import { registerAccess } from './commands/access';
import { registerTrust } from './commands/trust';
import { registerFiles } from './commands/files';
import { doctorCommand } from './commands/doctor';

const VERSION: string = require('../../package.json').version;

export function buildProgram(): Command {
  const program = new Command('cmdop')
    .description('Remote terminals that survive: reach any machine whose agent dials in to your control plane.')
    .version(VERSION)
    .option('--server <address>', 'control plane: HOST:PORT, or grpcs://HOST:PORT for TLS; several as A,B,C, tried in order (default: $CMDOP_SERVER, else 127.0.0.1:7420)')
    .showHelpAfterError()
    .addHelpText(
      'after',
      [
        '',
        'Start here:',
        '  cmdop up                          control plane + agent on this machine',
        '  cmdop machines                    what is connected',
        '  cmdop connect MACHINE             a shell there (Enter ~ . detaches)',
        '  cmdop watch MACHINE [TERMINAL]    watch read-only',
        '  cmdop exec MACHINE -- CMD...      run one command',
        '',
        'Access:',
        '  cmdop login | logout | whoami     sign in to a remote control plane (device flow)',
        '  cmdop agents enroll --name M      a one-time token to enroll a new machine',
        '  cmdop grant M USER --observer     let someone reach your machine (revoke to undo)',
        '  cmdop share M [TERMINAL]          a watch-only link to one terminal',
        '  cmdop tokens create --name N      an API token for scripts (CMDOP_TOKEN)',
        '  cmdop audit                       who did what',
        '',
        'Servers:',
        '  cmdop agent install-service       the agent as a service: starts at boot, restarts after a failure',
        '  cmdop agent status | logs -f      how it is doing',
        '  cmdop doctor                      check address, TLS pin, token, clock and service, with advice',
      ].join('\n'),
    );
  registerUp(program);
  registerServer(program);
  program.addCommand(agentCommand());
  registerMachines(program);
  registerConnect(program);
  registerWatch(program);
  registerExec(program);
  registerFiles(program);
  registerLogin(program);
  registerAccess(program);
  registerTrust(program);
  program.addCommand(doctorCommand());
  return program;
}

export function main(argv = process.argv): void {
  buildProgram()
    .parseAsync(argv)
    .catch((e: Error) => {
      process.stderr.write(`cmdop: ${e.message}\n`);
      process.exit(1);
    });
}

/** `cmdop-agent`: the headless agent on its own. */
export function agentMain(argv = process.argv): void {
  const cmd = agentCommand('cmdop-agent').option('--server <address>', 'control plane address; several as A,B,C, tried in order (default: $CMDOP_SERVER, else 127.0.0.1:7420)');
  cmd.addCommand(doctorCommand());
  cmd.parseAsync(argv).catch((e: Error) => {
    process.stderr.write(`cmdop-agent: ${e.message}\n`);
    process.exit(1);
  });
}
