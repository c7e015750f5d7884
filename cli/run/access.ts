// Access control from the command line, run (the options are in
// ../commands/access.ts): API tokens, agent enrollment, grants, share links,
// users and the audit log. All go through the SDK's AuthService calls; the
// control plane decides who may do what.
import type { Command } from 'commander';
import { AttachMode, TokenInfo, TokenKind } from '../../protocol';
import { fail, table, when } from '../output';
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

export async function createToken(o: { name: string; expires: number; user?: string }, cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const t = await c.auth.createToken(o.name, o.expires, o.user ?? '').catch((e) => fail(e.message));
  process.stdout.write(`${t.token}\n`);
  process.stderr.write(`token ${t.info!.id} (${o.name}) ${t.info!.expiresMs ? `expires ${when(t.info!.expiresMs)}` : 'never expires'}; it is not shown again\n`);
  c.close();
}

export async function listTokens(o: { all?: boolean; json?: boolean }, cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const list = await c.auth.listTokens({ allUsers: !!o.all }).catch((e) => fail(e.message));
  c.close();
  if (o.json) return void process.stdout.write(JSON.stringify(list.map((t) => ({ ...t, kind: kindName(t.kind) })), null, 2) + '\n');
  process.stdout.write(list.length ? tokenRows(list) : 'No tokens.\n');
}

export async function revokeToken(id: string, cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const r = await c.auth.revokeToken(id).catch((e) => fail(e.message));
  c.close();
  process.stdout.write(`revoked ${id}; ${r.streamsClosed} live stream(s) closed\n`);
}

export async function createEnrollment(o: { name: string; expires: number }, cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const t = await c.auth.createEnrollment(o.name, o.expires).catch((e) => fail(e.message));
  c.close();
  process.stdout.write(`${t.token}\n`);
  process.stderr.write(`one-time enrollment token for ${o.name}, valid until ${when(t.info!.expiresMs)}:\n  cmdop agent --name ${o.name} --enroll-token <token>\n`);
}

export async function grant(machine: string, user: string, o: { observer?: boolean; operator?: boolean }, cmd: Command): Promise<void> {
  if (!o.observer && !o.operator) fail('say --observer or --operator');
  const c = await clientFor(cmd);
  const g = await c.auth.grant(machine, user, o.operator ? 'operator' : 'observer').catch((e) => fail(e.message));
  c.close();
  process.stdout.write(`${g.user} is now ${roleText(g.role)} on ${g.machine}\n`);
}

export async function revoke(machine: string, user: string, cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const r = await c.auth.revoke(machine, user).catch((e) => fail(e.message));
  c.close();
  process.stdout.write(`${user} no longer has access to ${machine}; ${r.streamsClosed} live stream(s) closed\n`);
}

export async function listGrants(machine: string | undefined, cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const list = await c.auth.listGrants(machine).catch((e) => fail(e.message));
  c.close();
  const rows = [['MACHINE', 'USER', 'ROLE', 'GRANTED BY', 'SINCE']];
  for (const g of list) rows.push([g.machine, g.user, roleText(g.role), g.grantedBy, when(g.createdMs)]);
  process.stdout.write(list.length ? table(rows) : 'No grants.\n');
}

export async function share(machine: string, terminal: string | undefined, o: { expires: number }, cmd: Command): Promise<void> {
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
}

export async function addUser(name: string, o: { admin?: boolean; passwordStdin?: boolean }, cmd: Command): Promise<void> {
  const password = o.passwordStdin ? await readStdin() : '';
  const c = await clientFor(cmd);
  const u = await c.auth.addUser(name, { password, admin: !!o.admin }).catch((e) => fail(e.message));
  c.close();
  process.stdout.write(u.password ? `${u.password}\n` : '');
  process.stderr.write(`added ${u.name}${u.admin ? ' (admin)' : ''}${u.password ? '; the password above is shown once' : ''}\n`);
}

export async function listUsers(cmd: Command): Promise<void> {
  const c = await clientFor(cmd);
  const list = await c.auth.listUsers().catch((e) => fail(e.message));
  c.close();
  const rows = [['USER', 'ADMIN', 'MACHINES', 'CREATED']];
  for (const u of list) rows.push([u.name, u.admin ? 'yes' : '', u.machines.join(',') || '-', when(u.createdMs)]);
  process.stdout.write(table(rows));
}

export async function setPassword(name: string | undefined, o: { passwordStdin?: boolean }, cmd: Command): Promise<void> {
  const password = o.passwordStdin ? await readStdin() : '';
  const c = await clientFor(cmd);
  const generated = await c.auth.setPassword(name ?? '', password).catch((e) => fail(e.message));
  c.close();
  process.stdout.write(generated ? `${generated}\n` : '');
  process.stderr.write(`password set${name ? ` for ${name}` : ''}\n`);
}

export async function audit(o: { machine?: string; since?: number; limit: number; json?: boolean }, cmd: Command): Promise<void> {
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
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
