// AuthService's calls, whatever carries them: identity, tokens, enrollment,
// grants, share links, users and the audit log. Every call but
// GetServerInfo needs a token (the transport checks it); what a caller may
// do is decided by Access.
import {
  AttachMode,
  GrantInfo,
  ListAuditResponse,
  ListGrantsResponse,
  IssuedToken,
  ServerInfo,
  TokenInfo,
  TokenKind,
  UserInfo,
  nameError,
} from '../../protocol';
import { ApiError, denied, invalid, notFound } from './errors';
import { auditedUnary } from './unary';
import type { Registry } from './registry';
import { Access, Principal, Revocation, roleName } from './access';
import type { TokenRow, UserRow } from '../db';
import { generatePassword, hashPassword } from '../auth/secrets';
import { randomUUID } from 'node:crypto';

const TEN_YEARS_S = 10 * 365 * 24 * 3600;
const MIN_PASSWORD = 8;

function checkName(what: string, name: string): void {
  const err = nameError(what, name);
  if (err) throw invalid(err);
}

function checkExpiry(s: number, fallback: number): number {
  if (s < 0 || s > TEN_YEARS_S) throw invalid(`expiry must be between 0 and ${TEN_YEARS_S} seconds (got ${s})`);
  return s || fallback;
}

export interface AuthCallsDeps {
  access: Access;
  registry: Registry;
  serverInfo(): ServerInfo;
  /**
   * Applies a revocation to the live streams here and tells the other
   * replicas (cluster/bus.ts), so it cuts streams everywhere at once;
   * resolves with how many were ended here.
   */
  revoke(r: Revocation): Promise<number>;
}

export function authCalls({ access, registry, serverInfo, revoke }: AuthCallsDeps) {
  const store = access.store;
  const userName = async (id: string) => (await store.user(id))?.name ?? '(deleted)';
  const tokenInfo = async (t: TokenRow): Promise<TokenInfo> => ({
    id: t.id,
    kind: t.kind,
    name: t.name,
    user: await userName(t.userId),
    machine: t.machine,
    terminalId: t.terminalId,
    createdMs: t.createdMs,
    expiresMs: t.expiresMs,
    lastUsedMs: t.lastUsedMs,
    revokedMs: t.revokedMs,
    usedMs: t.usedMs,
  });
  const issued = async (t: { token: string; row: TokenRow }, url = ''): Promise<IssuedToken> => ({ info: await tokenInfo(t.row), token: t.token, url });
  const userInfo = async (u: UserRow, password = ''): Promise<UserInfo> => ({
    name: u.name,
    admin: u.admin,
    createdMs: u.createdMs,
    password,
    machines: await store.machinesOf(u.id),
  });
  /** The owner of a machine, or an admin; the only ones who can grant, list grants or read its audit. */
  const requireOwner = async (p: Principal, machine: string, what: string) => {
    access.requireUser(p, what);
    if (p.user.admin) return;
    const owner = await store.machineOwner(machine);
    if (owner !== p.user.id) throw denied(`only the owner of ${machine} (or an admin) can ${what}`);
  };
  const targetUser = async (name: string) => {
    const u = await store.userByName(name);
    if (!u) throw notFound(`no user named ${JSON.stringify(name)}`);
    return u;
  };

  return {
    /** The one call that needs no token: where to sign in. */
    getServerInfo: async (): Promise<ServerInfo> => serverInfo(),

    whoAmI: auditedUnary(access, 'whoami', (_req, p) => ({
      kind: p.kind,
      user: p.user.name,
      admin: p.user.admin && p.kind !== TokenKind.SHARE,
      tokenId: p.tokenId,
      expiresMs: p.expiresMs,
      machine: p.machine,
      terminalId: p.terminalId,
    })),

    createToken: auditedUnary<{ name: string; expiresInS: number; user: string }, IssuedToken>(access, 'token-create', async (req, p, peer) => {
      access.requireUser(p, 'create tokens');
      if (!req.name || req.name.length > 64) throw invalid('a token needs a --name of 1-64 characters');
      const expiresInS = checkExpiry(req.expiresInS, 0);
      let owner = p.user;
      if (req.user && req.user !== p.user.name) {
        if (!p.user.admin) throw denied('only an admin can create tokens for another user');
        owner = await targetUser(req.user);
      }
      const t = await access.issue(TokenKind.API, owner, { name: req.name, expiresInS });
      access.audit(p, { action: 'token-create', detail: `${t.row.id} ${req.name} for ${owner.name}`, peer });
      return issued(t);
    }),

    listTokens: auditedUnary<{ allUsers: boolean; kind: TokenKind }, { tokens: TokenInfo[] }>(access, 'token-list', async (req, p) => {
      access.requireUser(p, 'list tokens');
      if (req.allUsers && !p.user.admin) throw denied('only an admin can list every user\'s tokens');
      const rows = (await store.tokens()).filter((t) => (req.allUsers || t.userId === p.user.id) && (!req.kind || t.kind === req.kind));
      return { tokens: await Promise.all(rows.map(tokenInfo)) };
    }),

    revokeToken: auditedUnary<{ id: string }, { streamsClosed: number }>(access, 'token-revoke', async (req, p, peer) => {
      access.requireUser(p, 'revoke tokens');
      const t = await store.token(req.id);
      if (!t) throw notFound(`no token ${JSON.stringify(req.id)} (see \`cmdop tokens list\`)`);
      const ownsMachine = t.machine !== '' && (await store.machineOwner(t.machine)) === p.user.id;
      if (t.userId !== p.user.id && !p.user.admin && !ownsMachine) throw denied(`token ${t.id} is not yours to revoke`);
      await store.revokeToken(t.id);
      const streamsClosed = await revoke({ kind: 'token', tokenId: t.id, reason: `token ${t.id} was revoked` });
      access.audit(p, { action: 'token-revoke', machine: t.machine, terminalId: t.terminalId, detail: `${t.id} (${TokenKind[t.kind]}); ${streamsClosed} streams closed`, peer });
      return { streamsClosed };
    }),

    createEnrollment: auditedUnary<{ machine: string; expiresInS: number }, IssuedToken>(access, 'enroll', async (req, p, peer) => {
      access.requireUser(p, 'enroll agents');
      checkName('machine name', req.machine);
      const owner = await store.machineOwner(req.machine);
      if (owner && owner !== p.user.id && !p.user.admin) {
        throw new ApiError('ALREADY_EXISTS', `machine ${req.machine} belongs to ${await userName(owner)}; choose another name`);
      }
      const expiresInS = checkExpiry(req.expiresInS, 3600);
      const t = await access.issue(TokenKind.ENROLLMENT, p.user, { name: `enroll ${req.machine}`, machine: req.machine, expiresInS });
      access.audit(p, { action: 'enroll-token', machine: req.machine, detail: t.row.id, peer });
      return issued(t);
    }),

    enrollAgent: auditedUnary<{ machine: string }, IssuedToken>(access, 'enroll', async (req, p, peer) => {
      let machine = req.machine;
      if (p.kind === TokenKind.ENROLLMENT) {
        if (machine && machine !== p.machine) throw denied(`this enrollment token is for machine ${p.machine}, not ${machine}`);
        machine = p.machine;
      } else {
        access.requireUser(p, 'enroll agents');
        checkName('machine name', machine);
      }
      const owner = await store.machineOwner(machine);
      if (owner && owner !== p.user.id && !p.user.admin) {
        throw new ApiError('ALREADY_EXISTS', `machine ${machine} belongs to ${await userName(owner)}; choose another name`);
      }
      const t = await store.atomically(async (tx) => {
        // One use: a second EnrollAgent with the same token loses here even if it raced past authenticate().
        if (p.kind === TokenKind.ENROLLMENT && !(await tx.spendToken(p.tokenId))) {
          throw new ApiError('UNAUTHENTICATED', `enrollment token ${p.tokenId} was already used`);
        }
        if (!owner) await tx.addMachine(machine, p.user.id);
        // One machine, one credential: an agent enrolled again replaces the old one.
        await tx.revokeAgentCredentials(machine);
        const holder = owner ? await tx.user(owner) : p.user;
        return access.issue(TokenKind.AGENT, holder ?? p.user, { name: `agent ${machine}`, machine }, tx);
      });
      // The agent still running with the replaced credential is cut off now (its session ends).
      const cut = await revoke({
        kind: 'machine-credentials',
        machine,
        keepTokenId: t.row.id,
        reason: `machine ${machine} was enrolled again, which revoked its previous credential`,
      });
      access.audit(p, { action: 'enroll', machine, detail: `credential ${t.row.id}${cut ? `; the previous agent's session was ended` : ''}`, peer });
      return issued(t);
    }),

    grantAccess: auditedUnary<{ machine: string; user: string; role: AttachMode }, GrantInfo>(access, 'grant', async (req, p, peer) => {
      if (req.role !== AttachMode.OPERATOR && req.role !== AttachMode.OBSERVER) throw invalid('role must be OPERATOR or OBSERVER');
      await requireOwner(p, req.machine, 'grant access to it');
      const u = await targetUser(req.user);
      const before = await store.grantOf(req.machine, u.id);
      const g = { machine: req.machine, userId: u.id, role: req.role, grantedBy: p.user.name, createdMs: Date.now() };
      await store.grant(g);
      if (before?.role === AttachMode.OPERATOR && req.role === AttachMode.OBSERVER) {
        // A downgrade takes effect now: operator streams end (the user may attach again as an observer).
        await revoke({ kind: 'grant', machine: req.machine, userId: u.id, downgrade: true, reason: `${u.name} is now OBSERVER on ${req.machine}` });
      }
      access.audit(p, { action: 'grant', machine: req.machine, mode: req.role, detail: `${u.name} ${roleName(req.role)}`, peer });
      return { machine: g.machine, role: g.role, grantedBy: g.grantedBy, createdMs: g.createdMs, user: u.name };
    }),

    revokeAccess: auditedUnary<{ machine: string; user: string }, { streamsClosed: number }>(access, 'revoke', async (req, p, peer) => {
      await requireOwner(p, req.machine, 'revoke access to it');
      const u = await targetUser(req.user);
      if (!(await store.deleteGrant(req.machine, u.id))) throw notFound(`${u.name} has no grant on ${req.machine}`);
      const streamsClosed = await revoke({ kind: 'grant', machine: req.machine, userId: u.id, downgrade: false, reason: `${u.name}'s access to ${req.machine} was revoked` });
      access.audit(p, { action: 'revoke', machine: req.machine, detail: `${u.name}; ${streamsClosed} streams closed`, peer });
      return { streamsClosed };
    }),

    listGrants: auditedUnary<{ machine: string }, ListGrantsResponse>(access, 'grant-list', async (req, p) => {
      access.requireUser(p, 'list grants');
      let machines: string[];
      if (req.machine) {
        await requireOwner(p, req.machine, 'list its grants');
        machines = [req.machine];
      } else if (p.user.admin) {
        const owned = await Promise.all((await store.users()).map((u) => store.machinesOf(u.id)));
        machines = [...new Set(owned.flat())];
      } else {
        machines = await store.machinesOf(p.user.id);
      }
      const grants = (await Promise.all(machines.map((m) => store.grantsOn(m)))).flat();
      return {
        grants: await Promise.all(
          grants.map(async (g) => ({ machine: g.machine, role: g.role, grantedBy: g.grantedBy, createdMs: g.createdMs, user: await userName(g.userId) })),
        ),
      };
    }),

    createShare: auditedUnary<{ machine: string; terminalId: string; expiresInS: number }, IssuedToken>(access, 'share', async (req, p, peer) => {
      access.requireUser(p, 'share terminals');
      await access.require(p, req.machine, AttachMode.OPERATOR);
      const session = await registry.machine(req.machine);
      let terminalId = req.terminalId;
      if (!terminalId) {
        const live = [...session.terminals.values()].filter((t) => !t.exit);
        if (live.length !== 1) {
          throw invalid(
            live.length === 0
              ? `machine ${req.machine} has no live terminal to share`
              : `machine ${req.machine} has ${live.length} terminals (${live.map((t) => t.id).join(', ')}): name one`,
          );
        }
        terminalId = live[0].id;
      } else {
        session.terminal(terminalId); // NOT_FOUND if it is not there
      }
      const expiresInS = checkExpiry(req.expiresInS, 3600);
      const t = await access.issue(TokenKind.SHARE, p.user, { name: `share ${req.machine}/${terminalId}`, machine: req.machine, terminalId, expiresInS });
      access.audit(p, { action: 'share', machine: req.machine, terminalId, mode: AttachMode.OBSERVER, detail: `${t.row.id} for ${expiresInS} s`, peer });
      // The secret rides in the fragment: browsers never send it to a server, so it stays out of logs.
      return issued(t, `${serverInfo().webUrl}/share#${t.token}`);
    }),

    addUser: auditedUnary<{ name: string; password: string; admin: boolean }, UserInfo>(access, 'user-add', async (req, p, peer) => {
      access.requireAdmin(p, 'add users');
      checkName('user name', req.name);
      if (await store.userByName(req.name)) throw new ApiError('ALREADY_EXISTS', `user ${req.name} already exists`);
      if (req.password && req.password.length < MIN_PASSWORD) throw invalid(`a password needs at least ${MIN_PASSWORD} characters`);
      const password = req.password || generatePassword();
      const u: UserRow = { id: randomUUID(), name: req.name, passwordHash: await hashPassword(password), admin: req.admin, createdMs: Date.now() };
      await store.addUser(u);
      access.audit(p, { action: 'user-add', detail: `${u.name}${u.admin ? ' (admin)' : ''}`, peer });
      return userInfo(u, req.password ? '' : password);
    }),

    listUsers: auditedUnary<unknown, { users: UserInfo[] }>(access, 'user-list', async (_req, p) => {
      access.requireUser(p, 'list users');
      const users = p.user.admin ? await store.users() : [p.user];
      return { users: await Promise.all(users.map((u) => userInfo(u))) };
    }),

    setPassword: auditedUnary<{ user: string; password: string }, { password: string }>(access, 'password', async (req, p, peer) => {
      access.requireUser(p, 'change passwords');
      const u = req.user ? await targetUser(req.user) : p.user;
      if (u.id !== p.user.id && !p.user.admin) throw denied('only an admin can set another user\'s password');
      if (req.password && req.password.length < MIN_PASSWORD) throw invalid(`a password needs at least ${MIN_PASSWORD} characters`);
      const password = req.password || generatePassword();
      await store.setPassword(u.id, await hashPassword(password));
      access.audit(p, { action: 'password', detail: u.name, peer });
      return { password: req.password ? '' : password };
    }),

    listAudit: auditedUnary<{ machine: string; sinceMs: number; limit: number }, ListAuditResponse>(access, 'audit', async (req, p) => {
      access.requireUser(p, 'read the audit log');
      if (req.limit < 0) throw invalid('limit must be positive');
      const limit = Math.min(req.limit || 1000, 100_000);
      if (req.machine && !p.user.admin) await requireOwner(p, req.machine, 'read its audit log');
      const machines = p.user.admin || req.machine ? undefined : await store.machinesOf(p.user.id);
      return { entries: await store.auditEntries({ machine: req.machine, machines, sinceMs: req.sinceMs, limit }) };
    }),
  };
}
