// Access control from the command line: API tokens, agent enrollment,
// grants, share links, users and the audit log. All go through the SDK's
// AuthService calls; the control plane decides who may do what.
import { Command, Option } from 'commander';
import { AttachMode, TokenInfo, TokenKind } from '../../protocol';
import { fail, table, when } from '../output';
import { duration, since } from '../options';
import { clientFor } from '../connection';

const kindName = (k: TokenKind) => TokenKind[k]?.toLowerCase() ?? String(k);
const roleText = (r: AttachMode) => (r === AttachMode.OPERATOR ? 'operator' : 'observer');

function tokenRows(tokens: TokenInfo[]): string {
  const rows = [['ID', 'KIND', 'NAME', 'USER', 'MACHINE', 'CREATED', 'EXPIRES', 'LAST USED', 'STATE']];
  for (const t of tokens) {
    const state = t.revokedMs ? `revoked ${when(t.revokedMs)}` : t.usedMs ? 'used' : t.expiresMs && t.expiresMs < Date.now() ? 'expired' : 'active';
    const machine = t.terminalId ? `${t.machine}/${t.terminalId.slice(0, 8)}` : t.machine || '-';
    rows.push([t.id, kindName(t.kind), t.name || '-', t.user, machine, when(t.createdMs), t.expiresMs ? when(t.expiresMs) : 'never', when(t.lastUsedMs), state]);
  }
  return table(rows);
}

export function registerAccess(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for scripts and CI (use one as CMDOP_TOKEN)');
  tokens
    .command('create')
    .description('create an API token with your access; it is shown once')
    .requiredOption('--name <name>', 'what it is for, e.g. ci-deploy')
    .option('--expires <duration>', 'lifetime: 30m, 12h, 90d or never', duration, 0)
    .option('--user <name>', "admin only: a token for another user (e.g. a CI account from `cmdop users add ci`)")
    .action(async (o, cmd: Command) => {
      const c = await clientFor(cmd);
      const t = await c.auth.createToken(o.name, o.expires, o.user ?? '').catch((e) => fail(e.message));
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(`token ${t.info!.id} (${o.name}) ${t.info!.expiresMs ? `expires ${when(t.info!.expiresMs)}` : 'never expires'}; it is not shown again\n`);
      c.close();
    });
  tokens
    .command('list')
    .description('your tokens, share links and enrollment tokens (--all: everyone\'s, admin only)')
    .option('--all', "every user's tokens")
    .option('--json', 'machine-readable output')
    .action(async (o, cmd: Command) => {
      const c = await clientFor(cmd);
      const list = await c.auth.listTokens({ allUsers: !!o.all }).catch((e) => fail(e.message));
      c.close();
      if (o.json) return void process.stdout.write(JSON.stringify(list.map((t) => ({ ...t, kind: kindName(t.kind) })), null, 2) + '\n');
      process.stdout.write(list.length ? tokenRows(list) : 'No tokens.\n');
    });
  tokens
    .command('revoke')
    .description('revoke a token (or share link, or agent credential) by id; streams it opened end now')
    .argument('<id>', 'token id from `cmdop tokens list`')
    .action(async (id: string, _o, cmd: Command) => {
      const c = await clientFor(cmd);
      const r = await c.auth.revokeToken(id).catch((e) => fail(e.message));
      c.close();
      process.stdout.write(`revoked ${id}; ${r.streamsClosed} live stream(s) closed\n`);
    });

  const agents = program.command('agents').description('enroll agents (machines) with this control plane');
  agents
    .command('enroll')
    .description('print a one-time enrollment token for a new machine')
    .requiredOption('--name <machine>', 'the machine name the agent will have')
    .option('--expires <duration>', 'how long the token can be used', duration, 3600)
    .addHelpText('after', '\nThen, on that machine:\n  cmdop agent --server ADDRESS --name NAME --enroll-token TOKEN')
    .action(async (o, cmd: Command) => {
      const c = await clientFor(cmd);
      const t = await c.auth.createEnrollment(o.name, o.expires).catch((e) => fail(e.message));
      c.close();
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(`one-time enrollment token for ${o.name}, valid until ${when(t.info!.expiresMs)}:\n  cmdop agent --name ${o.name} --enroll-token <token>\n`);
    });

  program
    .command('grant')
    .description('let another user reach a machine you own')
    .argument('<machine>')
    .argument('<user>')
    .addOption(new Option('--observer', 'watch only').conflicts('operator'))
    .addOption(new Option('--operator', 'type, resize, signal, open terminals'))
    .action(async (machine: string, user: string, o, cmd: Command) => {
      if (!o.observer && !o.operator) fail('say --observer or --operator');
      const c = await clientFor(cmd);
      const g = await c.auth.grant(machine, user, o.operator ? 'operator' : 'observer').catch((e) => fail(e.message));
      c.close();
      process.stdout.write(`${g.user} is now ${roleText(g.role)} on ${g.machine}\n`);
    });
  program
    .command('revoke')
    .description("take back a user's access to a machine; their streams there end now")
    .argument('<machine>')
    .argument('<user>')
    .action(async (machine: string, user: string, _o, cmd: Command) => {
      const c = await clientFor(cmd);
      const r = await c.auth.revoke(machine, user).catch((e) => fail(e.message));
      c.close();
      process.stdout.write(`${user} no longer has access to ${machine}; ${r.streamsClosed} live stream(s) closed\n`);
    });
  program
    .command('grants')
    .description('who has been granted what on your machines')
    .argument('[machine]')
    .action(async (machine: string | undefined, _o, cmd: Command) => {
      const c = await clientFor(cmd);
      const list = await c.auth.listGrants(machine).catch((e) => fail(e.message));
      c.close();
      const rows = [['MACHINE', 'USER', 'ROLE', 'GRANTED BY', 'SINCE']];
      for (const g of list) rows.push([g.machine, g.user, roleText(g.role), g.grantedBy, when(g.createdMs)]);
      process.stdout.write(list.length ? table(rows) : 'No grants.\n');
    });

  program
    .command('share')
    .description('a watch-only link to one terminal, until it expires or is revoked')
    .argument('<machine>')
    .argument('[terminal]', "terminal id (default: the machine's only live terminal)")
    .option('--observer', 'watch-only (the only kind of share)', true)
    .option('--expires <duration>', 'lifetime: 15m, 1h, 1d', duration, 3600)
    .action(async (machine: string, terminal: string | undefined, o, cmd: Command) => {
      if (o.expires === 0) fail('a share link must expire: give --expires');
      const c = await clientFor(cmd);
      const s = await c.auth.share(machine, terminal ?? '', o.expires).catch((e) => fail(e.message));
      c.close();
      process.stdout.write(`${s.url}\n`);
      process.stderr.write(
        `watch-only share of ${machine}/${s.info!.terminalId} (${s.info!.id}), until ${when(s.info!.expiresMs)}.\n` +
          `From a terminal:  CMDOP_TOKEN=${s.token} cmdop --server ${cmd.optsWithGlobals().server ?? process.env.CMDOP_SERVER ?? '127.0.0.1:7420'} watch ${machine}\n` +
          `Revoke:           cmdop tokens revoke ${s.info!.id}\n`,
      );
    });

  const users = program.command('users').description('people who can sign in (admin)');
  users
    .command('add')
    .description('add a user; prints a generated password unless --password-stdin')
    .argument('<name>')
    .option('--admin', 'may manage users and every machine')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (name: string, o, cmd: Command) => {
      const password = o.passwordStdin ? await readStdin() : '';
      const c = await clientFor(cmd);
      const u = await c.auth.addUser(name, { password, admin: !!o.admin }).catch((e) => fail(e.message));
      c.close();
      process.stdout.write(u.password ? `${u.password}\n` : '');
      process.stderr.write(`added ${u.name}${u.admin ? ' (admin)' : ''}${u.password ? '; the password above is shown once' : ''}\n`);
    });
  users
    .command('list')
    .description('users and the machines they own')
    .action(async (_o, cmd: Command) => {
      const c = await clientFor(cmd);
      const list = await c.auth.listUsers().catch((e) => fail(e.message));
      c.close();
      const rows = [['USER', 'ADMIN', 'MACHINES', 'CREATED']];
      for (const u of list) rows.push([u.name, u.admin ? 'yes' : '', u.machines.join(',') || '-', when(u.createdMs)]);
      process.stdout.write(table(rows));
    });
  users
    .command('passwd')
    .description('set a password (yours, or another user\'s as admin); generated unless --password-stdin')
    .argument('[name]')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (name: string | undefined, o, cmd: Command) => {
      const password = o.passwordStdin ? await readStdin() : '';
      const c = await clientFor(cmd);
      const generated = await c.auth.setPassword(name ?? '', password).catch((e) => fail(e.message));
      c.close();
      process.stdout.write(generated ? `${generated}\n` : '');
      process.stderr.write(`password set${name ? ` for ${name}` : ''}\n`);
    });

  program
    .command('audit')
    .description('who attached, in which mode, what input went where, grants, shares, sign-ins and refusals')
    .option('--machine <name>', 'only this machine')
    .option('--since <when>', 'a duration ago (1h, 7d) or a date', since)
    .option('--limit <n>', 'newest N entries', (v) => Number(v), 1000)
    .option('--json', 'machine-readable output')
    .action(async (o, cmd: Command) => {
      if (!Number.isInteger(o.limit) || o.limit <= 0) fail('--limit must be a positive whole number');
      const c = await clientFor(cmd);
      const entries = await c.auth.audit({ machine: o.machine, sinceMs: o.since, limit: o.limit }).catch((e) => fail(e.message));
      c.close();
      if (o.json) return void process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
      const rows = [['TIME', 'ACTOR', 'ACTION', 'MACHINE', 'TERMINAL', 'MODE', 'COMMAND', 'RESULT']];
      for (const e of entries) {
        rows.push([
          when(e.atMs), e.actor, e.action, e.machine || '-', e.terminalId ? e.terminalId.slice(0, 8) : '-',
          e.mode ? roleText(e.mode) : '-', e.commandId ? e.commandId.slice(0, 8) : '-', e.ok ? 'ok' : `refused: ${e.detail}`,
        ]);
      }
      process.stdout.write(entries.length ? table(rows) : 'No entries.\n');
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
