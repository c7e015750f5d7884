// Access control from the command line: API tokens, agent enrollment,
// grants, share links, users and the audit log. All go through the SDK's
// AuthService calls; the control plane decides who may do what.
import { Command, Option } from 'commander';
import { duration, since } from '../options';

// The implementation is required when the command runs, not when it is
// registered: see cli/main.ts.
const run = (): typeof import('../run/access') => require('../run/access');

export function registerAccess(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for scripts and CI (use one as CMDOP_TOKEN)');
  tokens
    .command('create')
    .description('create an API token with your access; it is shown once')
    .requiredOption('--name <name>', 'what it is for, e.g. ci-deploy')
    .option('--expires <duration>', 'lifetime: 30m, 12h, 90d or never', duration, 0)
    .option('--user <name>', "admin only: a token for another user (e.g. a CI account from `cmdop users add ci`)")
    .action((o, cmd: Command) => run().createToken(o, cmd));
  tokens
    .command('list')
    .description('your tokens, share links and enrollment tokens (--all: everyone\'s, admin only)')
    .option('--all', "every user's tokens")
    .option('--json', 'machine-readable output')
    .action((o, cmd: Command) => run().listTokens(o, cmd));
  tokens
    .command('revoke')
    .description('revoke a token (or share link, or agent credential) by id; streams it opened end now')
    .argument('<id>', 'token id from `cmdop tokens list`')
    .action((id: string, _o, cmd: Command) => run().revokeToken(id, cmd));

  const agents = program.command('agents').description('enroll agents (machines) with this control plane');
  agents
    .command('enroll')
    .description('print a one-time enrollment token for a new machine')
    .requiredOption('--name <machine>', 'the machine name the agent will have')
    .option('--expires <duration>', 'how long the token can be used', duration, 3600)
    .addHelpText('after', '\nThen, on that machine:\n  cmdop agent --server ADDRESS --name NAME --enroll-token TOKEN')
    .action((o, cmd: Command) => run().createEnrollment(o, cmd));

  program
    .command('grant')
    .description('let another user reach a machine you own')
    .argument('<machine>')
    .argument('<user>')
    .addOption(new Option('--observer', 'watch only').conflicts('operator'))
    .addOption(new Option('--operator', 'type, resize, signal, open terminals'))
    .action((machine: string, user: string, o, cmd: Command) => run().grant(machine, user, o, cmd));
  program
    .command('revoke')
    .description("take back a user's access to a machine; their streams there end now")
    .argument('<machine>')
    .argument('<user>')
    .action((machine: string, user: string, _o, cmd: Command) => run().revoke(machine, user, cmd));
  program
    .command('grants')
    .description('who has been granted what on your machines')
    .argument('[machine]')
    .action((machine: string | undefined, _o, cmd: Command) => run().listGrants(machine, cmd));

  program
    .command('share')
    .description('a watch-only link to one terminal, until it expires or is revoked')
    .argument('<machine>')
    .argument('[terminal]', "terminal id (default: the machine's only live terminal)")
    .option('--observer', 'watch-only (the only kind of share)', true)
    .option('--expires <duration>', 'lifetime: 15m, 1h, 1d', duration, 3600)
    .action((machine: string, terminal: string | undefined, o, cmd: Command) => run().share(machine, terminal, o, cmd));

  const users = program.command('users').description('people who can sign in (admin)');
  users
    .command('add')
    .description('add a user; prints a generated password unless --password-stdin')
    .argument('<name>')
    .option('--admin', 'may manage users and every machine')
    .option('--password-stdin', 'read the password from stdin')
    .action((name: string, o, cmd: Command) => run().addUser(name, o, cmd));
  users
    .command('list')
    .description('users and the machines they own')
    .action((_o, cmd: Command) => run().listUsers(cmd));
  users
    .command('passwd')
    .description('set a password (yours, or another user\'s as admin); generated unless --password-stdin')
    .argument('[name]')
    .option('--password-stdin', 'read the password from stdin')
    .action((name: string | undefined, o, cmd: Command) => run().setPassword(name, o, cmd));

  program
    .command('audit')
    .description('who attached, in which mode, what input went where, grants, shares, sign-ins and refusals')
    .option('--machine <name>', 'only this machine')
    .option('--since <when>', 'a duration ago (1h, 7d) or a date', since)
    .option('--limit <n>', 'newest N entries', (v) => Number(v), 1000)
    .option('--json', 'machine-readable output')
    .action((o, cmd: Command) => run().audit(o, cmd));
}
