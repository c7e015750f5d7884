// Authentication (which principal a bearer token stands for) and
// authorization (what that principal may do on a machine) for every gRPC call
// and WebSocket. Also the registry of live streams per token, so revoking a
// token, a share or a grant ends the streams it opened at once.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { AttachMode, TokenKind } from '../../protocol';
import { ApiError, denied as deniedError, unauthenticated } from './errors';
import { Counters, type RefusalReason } from './counters';
import type { AuthRepo, AuditInput, TokenRow, UserRow } from '../db';
import { hashSecret, kindOfSecret, newId, newSecret } from '../auth/secrets';

export interface Principal {
  kind: TokenKind;
  /** Our token id; 'oauth' for device-flow access tokens. */
  tokenId: string;
  user: UserRow;
  /** AGENT, ENROLLMENT and SHARE tokens are bound to one machine (SHARE: one terminal). */
  machine: string;
  terminalId: string;
  expiresMs: number;
}

/**
 * A revocation as every replica applies it to its own live streams (a
 * predicate cannot cross the cluster bus; these can).
 */
export type Revocation =
  /** A token revoked: every stream opened with it. */
  | { kind: 'token'; tokenId: string; reason: string }
  /** A machine enrolled again: the agent still using an older credential. */
  | { kind: 'machine-credentials'; machine: string; keepTokenId: string; reason: string }
  /** A user's grant on a machine removed (or, `downgrade`, lowered to OBSERVER: their operator streams). */
  | { kind: 'grant'; machine: string; userId: string; downgrade: boolean; reason: string };

export type OAuthVerifier = (token: string) => Promise<{ userId: string; expiresAtMs: number } | undefined>;

/** A live stream opened under a token: what to close when the token, share or grant goes. */
interface LiveStream {
  principal: Principal;
  machine: string;
  close(reason: string): void;
}

const USER_KINDS = new Set([TokenKind.OAUTH, TokenKind.ADMIN, TokenKind.API]);
const KIND_USE: Partial<Record<TokenKind, string>> = {
  [TokenKind.AGENT]: 'an agent credential (it only connects an agent)',
  [TokenKind.ENROLLMENT]: 'an enrollment token (use it once with `cmdop agent --enroll-token`)',
  [TokenKind.SHARE]: 'a share token (it only watches one terminal)',
};
const MAX_TOKEN_CHARS = 4096;
const REFUSALS_PER_MINUTE = 60;
// last_used_ms is informative; writing it on every call would cost a write per keystroke batch.
const TOUCH_EVERY_MS = 60_000;

export const roleName = (r: AttachMode) => (r === AttachMode.OPERATOR ? 'OPERATOR' : r === AttachMode.OBSERVER ? 'OBSERVER' : 'none');

export class Access {
  private verifyOAuth: OAuthVerifier | undefined;
  private live = new Set<LiveStream>();
  private refusals = new Map<string, { startMs: number; count: number; suppressed: number }>();

  /** `counters`: where refusals are counted by reason (cmdop_auth_refusals_total). */
  constructor(
    readonly store: AuthRepo,
    readonly counters = new Counters(),
  ) {}

  /** A PERMISSION_DENIED refusal of the checks below, counted as `denied`. */
  private deny(message: string): ApiError {
    this.counters.refused('denied');
    return deniedError(message);
  }

  /** An UNAUTHENTICATED refusal, counted by its reason. */
  private refuse(reason: RefusalReason, message: string): ApiError {
    this.counters.refused(reason);
    return unauthenticated(message);
  }

  setOAuthVerifier(v: OAuthVerifier): void {
    this.verifyOAuth = v;
  }

  // ---- bootstrap

  /**
   * The first admin, without ceremony: on first start an `admin` user and a
   * token for it in DATA_DIR/admin.token (0600). Whoever can read the data
   * dir already owns the control plane, so this gives away nothing new.
   */
  async bootstrapAdmin(dataDir: string): Promise<{ file: string; created: boolean }> {
    const file = path.join(dataDir, 'admin.token');
    const admin = await this.firstAdmin();
    if (fs.existsSync(file)) {
      const token = fs.readFileSync(file, 'utf8').trim();
      const row = await this.store.tokenByHash(hashSecret(token));
      if (row && !row.revokedMs) return { file, created: false };
    }
    // Missing, or revoked by `tokens revoke`: a fresh one (deleting the file is how to rotate it).
    const { token } = await this.issue(TokenKind.ADMIN, admin, { name: 'admin.token' });
    fs.writeFileSync(file, token + '\n', { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return { file, created: true };
  }

  /**
   * The `admin` user, made on first start. Replicas starting together on one
   * store may both make one: the name is unique, so the loser reads the
   * winner's.
   */
  async firstAdmin(): Promise<UserRow> {
    const found = (await this.store.users()).find((u) => u.admin);
    if (found) return found;
    const admin: UserRow = { id: randomUUID(), name: 'admin', passwordHash: '', admin: true, createdMs: Date.now() };
    try {
      await this.store.addUser(admin);
      return admin;
    } catch (e) {
      const other = (await this.store.users()).find((u) => u.admin);
      if (other) return other;
      throw e;
    }
  }

  /** A new secret of `kind` for `user`; the row keeps only its hash. `repo`: inside a transaction, its own. */
  async issue(
    kind: TokenKind,
    user: UserRow,
    o: { name?: string; machine?: string; terminalId?: string; expiresInS?: number } = {},
    repo: AuthRepo = this.store,
  ): Promise<{ token: string; row: TokenRow }> {
    const token = newSecret(kind);
    const now = Date.now();
    const row: TokenRow = {
      id: newId('tok'),
      kind,
      hash: hashSecret(token),
      name: o.name ?? '',
      userId: user.id,
      machine: o.machine ?? '',
      terminalId: o.terminalId ?? '',
      createdMs: now,
      expiresMs: o.expiresInS ? now + o.expiresInS * 1000 : 0,
      lastUsedMs: 0,
      revokedMs: 0,
      usedMs: 0,
    };
    await repo.addToken(row);
    return { token, row };
  }

  // ---- authentication

  /** The principal behind an `authorization: Bearer TOKEN` header (gRPC metadata, HTTP); UNAUTHENTICATED otherwise. */
  async authenticate(header: string | Buffer | undefined): Promise<Principal> {
    if (header === undefined || header === '') {
      throw this.refuse('missing', 'no token: sign in with `cmdop login`, or set CMDOP_TOKEN');
    }
    const m = typeof header === 'string' ? /^Bearer ([\x21-\x7e]+)$/i.exec(header) : null;
    if (!m || m[1].length > MAX_TOKEN_CHARS) throw this.refuse('malformed', 'malformed authorization header: expected "Bearer TOKEN"');
    return this.principalOf(m[1]);
  }

  async principalOf(token: string): Promise<Principal> {
    const kind = kindOfSecret(token);
    if (kind === undefined) return this.oauthPrincipal(token);
    const row = await this.store.tokenByHash(hashSecret(token));
    if (!row || row.kind !== kind) throw this.refuse('unknown', 'unknown token: it was not issued by this control plane');
    const now = Date.now();
    if (row.revokedMs) throw this.refuse('revoked', `token ${row.id} was revoked`);
    if (row.expiresMs && row.expiresMs <= now) {
      throw this.refuse('expired', `token ${row.id} expired at ${new Date(row.expiresMs).toISOString()}`);
    }
    if (row.kind === TokenKind.ENROLLMENT && row.usedMs) {
      throw this.refuse('enrollment_used', `enrollment token ${row.id} was already used at ${new Date(row.usedMs).toISOString()}`);
    }
    const user = await this.store.user(row.userId);
    if (!user) throw this.refuse('user_gone', `token ${row.id} belongs to a user who no longer exists`);
    if (now - row.lastUsedMs > TOUCH_EVERY_MS) void this.store.touchToken(row.id, now).catch(() => {}); // informative only
    return { kind: row.kind, tokenId: row.id, user, machine: row.machine, terminalId: row.terminalId, expiresMs: row.expiresMs };
  }

  private async oauthPrincipal(token: string): Promise<Principal> {
    const v = this.verifyOAuth ? await this.verifyOAuth(token) : undefined;
    if (!v) throw this.refuse('oauth_invalid', 'the access token is invalid, expired or revoked: run `cmdop login` again');
    const user = await this.store.user(v.userId);
    if (!user) throw this.refuse('user_gone', 'the access token belongs to a user who no longer exists');
    return { kind: TokenKind.OAUTH, tokenId: 'oauth', user, machine: '', terminalId: '', expiresMs: v.expiresAtMs };
  }

  // ---- authorization

  /** A person's token (device flow, admin or API), not a bound one. */
  requireUser(p: Principal, what: string): void {
    if (!USER_KINDS.has(p.kind)) throw this.deny(`${KIND_USE[p.kind] ?? 'this token'} cannot ${what}`);
  }

  requireAdmin(p: Principal, what: string): void {
    this.requireUser(p, what);
    if (!p.user.admin) throw this.deny(`only an admin can ${what}`);
  }

  /** The most a principal may do on a machine (its terminals, for a share). */
  async roleOn(p: Principal, machine: string): Promise<AttachMode> {
    if (!USER_KINDS.has(p.kind)) return AttachMode.ATTACH_MODE_UNSPECIFIED;
    return this.userRole(p.user, machine);
  }

  /** A user's own role on a machine: admin, owner, or their grant. */
  private async userRole(user: UserRow, machine: string): Promise<AttachMode> {
    if (user.admin) return AttachMode.OPERATOR;
    const owner = await this.store.machineOwner(machine);
    if (owner === user.id) return AttachMode.OPERATOR;
    return (await this.store.grantOf(machine, user.id))?.role ?? AttachMode.ATTACH_MODE_UNSPECIFIED;
  }

  /** Throws unless `p` may act as `mode` on `machine` (and, for a share, on `terminalId`). */
  async require(p: Principal, machine: string, mode: AttachMode, terminalId = ''): Promise<void> {
    if (p.kind === TokenKind.SHARE) {
      if (mode !== AttachMode.OBSERVER) throw this.deny('a share link is watch-only: it cannot send input, resize, signal or open terminals');
      if (p.machine !== machine || !terminalId || p.terminalId !== terminalId) {
        throw this.deny(`this share link is for terminal ${p.terminalId} on ${p.machine} only`);
      }
      return;
    }
    this.requireUser(p, 'use terminals');
    const role = await this.roleOn(p, machine);
    if (role === AttachMode.OPERATOR || (role === AttachMode.OBSERVER && mode === AttachMode.OBSERVER)) return;
    throw this.deny(
      role === AttachMode.OBSERVER
        ? `${p.user.name} may only observe ${machine}`
        : `${p.user.name} has no access to machine ${machine}: its owner can run \`cmdop grant ${machine} ${p.user.name} --observer\``,
    );
  }

  /** Names of machines a principal may at least observe (undefined: all of them). */
  async visibleMachines(p: Principal): Promise<Set<string> | undefined> {
    if (!USER_KINDS.has(p.kind)) throw this.deny(`${KIND_USE[p.kind] ?? 'this token'} cannot list machines`);
    if (p.user.admin) return undefined;
    const [owned, grants] = await Promise.all([this.store.machinesOf(p.user.id), this.store.grantsFor(p.user.id)]);
    return new Set([...owned, ...grants.map((g) => g.machine)]);
  }

  // ---- audit

  actor(p: Principal | undefined): string {
    if (!p) return 'anonymous';
    if (p.kind === TokenKind.SHARE) return `share:${p.tokenId} (by ${p.user.name})`;
    if (p.kind === TokenKind.AGENT) return `agent:${p.machine}`;
    return p.user.name;
  }

  audit(p: Principal | undefined, e: Partial<AuditInput> & { action: string }): void {
    if (e.ok === false && !this.refusalLogged(e.peer ?? '')) return;
    this.store.audit({
      actor: this.actor(p),
      machine: '',
      terminalId: '',
      mode: AttachMode.ATTACH_MODE_UNSPECIFIED,
      commandId: '',
      ok: true,
      detail: '',
      peer: '',
      ...e,
    });
  }

  /**
   * Refusals are logged one by one up to REFUSALS_PER_MINUTE per client
   * address; past that they are counted and summed up in one row, so that
   * anyone who can reach the port cannot grow the database at will.
   */
  private refusalLogged(peer: string): boolean {
    const host = peer.replace(/:\d+$/, '');
    const now = Date.now();
    let w = this.refusals.get(host);
    if (!w || now - w.startMs >= 60_000) {
      if (w && w.suppressed > 0) {
        this.store.audit({
          actor: 'anonymous', action: 'refusals-suppressed', machine: '', terminalId: '', mode: AttachMode.ATTACH_MODE_UNSPECIFIED,
          commandId: '', ok: false, detail: `${w.suppressed} more refusals in that minute were counted, not logged one by one`, peer: host,
        });
      }
      w = { startMs: now, count: 0, suppressed: 0 };
      this.refusals.set(host, w);
      if (this.refusals.size > 10_000) this.refusals.clear(); // a bounded map, even under a spray of addresses
    }
    if (w.count < REFUSALS_PER_MINUTE) {
      w.count++;
      return true;
    }
    w.suppressed++;
    return false;
  }

  // ---- live streams

  /** Registers a stream so revocation can end it; returns the function that forgets it. */
  track(principal: Principal, machine: string, close: (reason: string) => void): () => void {
    const s: LiveStream = { principal, machine, close };
    this.live.add(s);
    let timer: NodeJS.Timeout | undefined;
    if (principal.expiresMs && principal.kind === TokenKind.SHARE) {
      // A share ends when it expires, even mid-stream.
      timer = setTimeout(() => this.end(s, `share ${principal.tokenId} expired`), Math.max(0, principal.expiresMs - Date.now()));
      timer.unref();
    }
    return () => {
      clearTimeout(timer);
      this.live.delete(s);
    };
  }

  /** Ends the live streams here that a revocation takes away; resolves with how many. */
  async applyRevocation(r: Revocation): Promise<number> {
    switch (r.kind) {
      case 'token':
        return this.cut((q) => q.tokenId === r.tokenId, r.reason);
      case 'machine-credentials':
        return this.cut((q) => q.kind === TokenKind.AGENT && q.machine === r.machine && q.tokenId !== r.keepTokenId, r.reason);
      case 'grant': {
        // Lowered to OBSERVER: every stream of theirs there ends (they may attach again as an observer).
        // Removed: their streams end unless they still reach the machine otherwise (owner, admin).
        const cuts = (q: Principal, m: string) => m === r.machine && q.user.id === r.userId && q.kind !== TokenKind.SHARE;
        if (!r.downgrade) {
          const holder = [...this.live].find((s) => cuts(s.principal, s.machine));
          if (holder && (await this.userRole(holder.principal.user, r.machine)) !== AttachMode.ATTACH_MODE_UNSPECIFIED) return 0;
        }
        return this.cut(cuts, r.reason);
      }
    }
  }

  /** Ends every live stream that matches; returns how many. */
  cut(match: (p: Principal, machine: string) => boolean, reason: string): number {
    let n = 0;
    for (const s of [...this.live]) {
      if (match(s.principal, s.machine)) {
        this.end(s, reason);
        n++;
      }
    }
    return n;
  }

  private end(s: LiveStream, reason: string): void {
    if (!this.live.delete(s)) return;
    try {
      s.close(reason);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
  }
}
