// The SDK's AuthService calls: who am I, tokens, enrollment, grants, share
// links, users and the audit log. The CLI's auth commands are built on it.
import {
  AttachMode,
  AuthServiceDefinition,
  AuditEntry,
  GrantInfo,
  Identity,
  IssuedToken,
  ServerInfo,
  TokenInfo,
  TokenKind,
  UserInfo,
  type RequestOf,
  type ResponseOf,
  type UnaryMethods,
} from '../protocol';

/** How the SDK reaches AuthService (the client's channel and token). */
export interface AuthCaller {
  authUnary<K extends UnaryMethods<AuthService>>(method: K, req: RequestOf<AuthService, K>): Promise<ResponseOf<AuthService, K>>;
}
type AuthService = typeof AuthServiceDefinition;

export type Role = 'operator' | 'observer';
const toRole = (r: Role) => (r === 'operator' ? AttachMode.OPERATOR : AttachMode.OBSERVER);

export class AuthApi {
  constructor(private c: AuthCaller) {}

  /** Where to sign in; needs no token. */
  serverInfo(): Promise<ServerInfo> {
    return this.c.authUnary('getServerInfo', {});
  }

  whoami(): Promise<Identity> {
    return this.c.authUnary('whoAmI', {});
  }

  /** An API token; `user` (admin only) makes it another user's, e.g. a CI account's. */
  createToken(name: string, expiresInS = 0, user = ''): Promise<IssuedToken> {
    return this.c.authUnary('createToken', { name, expiresInS, user });
  }

  async listTokens(o: { allUsers?: boolean; kind?: TokenKind } = {}): Promise<TokenInfo[]> {
    const r = await this.c.authUnary('listTokens', { allUsers: !!o.allUsers, kind: o.kind ?? 0 });
    return r.tokens;
  }

  /** Revokes a token by id; streams it opened end at once. */
  async revokeToken(id: string): Promise<{ streamsClosed: number }> {
    return this.c.authUnary('revokeToken', { id });
  }

  /** A one-time token an agent spends to enroll as `machine`. */
  createEnrollment(machine: string, expiresInS = 3600): Promise<IssuedToken> {
    return this.c.authUnary('createEnrollment', { machine, expiresInS });
  }

  /** Spends an enrollment token (or uses a user's token) for the agent's own credential. */
  enrollAgent(machine = ''): Promise<IssuedToken> {
    return this.c.authUnary('enrollAgent', { machine });
  }

  grant(machine: string, user: string, role: Role): Promise<GrantInfo> {
    return this.c.authUnary('grantAccess', { machine, user, role: toRole(role) });
  }

  revoke(machine: string, user: string): Promise<{ streamsClosed: number }> {
    return this.c.authUnary('revokeAccess', { machine, user });
  }

  async listGrants(machine = ''): Promise<GrantInfo[]> {
    return (await this.c.authUnary('listGrants', { machine })).grants;
  }

  /** An OBSERVER-only link to one terminal (the machine's only one when terminalId is empty). */
  share(machine: string, terminalId = '', expiresInS = 3600): Promise<IssuedToken> {
    return this.c.authUnary('createShare', { machine, terminalId, expiresInS });
  }

  addUser(name: string, o: { password?: string; admin?: boolean } = {}): Promise<UserInfo> {
    return this.c.authUnary('addUser', { name, password: o.password ?? '', admin: !!o.admin });
  }

  async listUsers(): Promise<UserInfo[]> {
    return (await this.c.authUnary('listUsers', {})).users;
  }

  /** Sets a password (yours when `user` is empty); returns the generated one when none is given. */
  async setPassword(user = '', password = ''): Promise<string> {
    return (await this.c.authUnary('setPassword', { user, password })).password;
  }

  async audit(o: { machine?: string; sinceMs?: number; limit?: number } = {}): Promise<AuditEntry[]> {
    const r = await this.c.authUnary('listAudit', {
      machine: o.machine ?? '',
      sinceMs: o.sinceMs ?? 0,
      limit: o.limit ?? 0,
    });
    return r.entries;
  }
}
