// The authorization server, as a handler the web port mounts
// (transports/http/webServer.ts): oidc-provider's endpoints (/device/auth,
// /device, /auth, /token, /token/revocation, discovery, JWKS), the sign-in
// page it sends people to (/interaction/:uid) for a device approval or a
// console sign-in, rate limits on the two places a person types a secret,
// and in-process access token checks for the control plane's gRPC and
// WebSocket handlers. It owns no listener: the web port's server is the
// control plane's, and this is one of the routes on it.
import type http from 'node:http';
import os from 'node:os';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { OidcAdapterStore } from '../db';
import type { OAuthKeys } from './keys';
import type { KoaContextWithOIDC } from './oidc';
import { errors } from './oidc';
import { CSP, ONLY_YOUR_OWN_CODE, deviceDetails, escapeHtml, formatUserCode, page } from './pages';
import type { DeviceDescription } from './pages';
import { CLI_CLIENT_ID, CLI_CLIENT_NAME, USER_CODE_MASK, createOAuthProvider } from './provider';
import type { Accounts, OAuthTTL } from './provider';

export interface OAuthEvent {
  type: 'login' | 'login_failed' | 'device_approved' | 'device_denied' | 'rate_limited';
  /** The user name (as typed, for login_failed). */
  user?: string;
  ip: string;
  detail?: string;
}

interface LoggerLike {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface OAuthWebOptions {
  /** oidc-provider's records in the store (db/oauth.ts). */
  adapter: OidcAdapterStore;
  /** Signing and cookie keys: a file under the data dir, or the store's (replicas share them). */
  keys: OAuthKeys;
  /** The two places a person types a secret, limited per client address (db/rateLimit.ts: shared among replicas on PostgreSQL). */
  limiters: { userCode: RateLimiterAbstract; login: RateLimiterAbstract };
  accounts: Accounts;
  /** The OAuth issuer: the URL browsers and clients use (oauthIssuer() makes it from the bound address). */
  issuer: string;
  ttl?: OAuthTTL;
  /** Device polling interval announced to clients (s); default 5. */
  pollIntervalS?: number;
  logger?: LoggerLike;
  onEvent?: (e: OAuthEvent) => void;
}

export interface VerifiedAccessToken {
  userId: string;
  clientId: string;
  scopes: string[];
  expiresAtMs: number;
}

export interface OAuthWeb {
  issuer: string;
  /** Serves every request that reaches it (it is the web port's last route). */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
  verifyAccessToken(token: string): Promise<VerifiedAccessToken | undefined>;
  revokeUser(userId: string): Promise<void>;
  close(): Promise<void>;
}

/** Per client IP, separately for user-code entry and for sign-in (server.ts makes the limiters). */
export const DEFAULT_RATE_LIMIT = { points: 10, durationS: 60 };
const MAX_FORM_BYTES = 16 * 1024;
const INTERACTION_PATH = /^\/interaction\/([A-Za-z0-9_-]{1,64})$/;

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function defaultIssuer(scheme: string, host: string, port: number, logger?: LoggerLike): string {
  let shown = host;
  if (host === '0.0.0.0' || host === '::' || host === '') {
    // A wildcard address is not a place a browser can go; the host name is
    // the best guess. Set publicUrl for anything real.
    shown = os.hostname();
    logger?.warn({ host, issuer: shown }, 'oauth: listening on a wildcard address without publicUrl; guessing the host name');
  }
  return `${scheme}://${urlHost(shown)}:${port}`;
}

/** The issuer for a web port bound at scheme://host:port: `publicUrl` when given (checked), else that address. */
export function oauthIssuer(scheme: 'http' | 'https', host: string, port: number, publicUrl?: string, logger?: LoggerLike): string {
  return publicUrl ? normalizePublicUrl(publicUrl) : defaultIssuer(scheme, host, port, logger);
}

function normalizePublicUrl(publicUrl: string): string {
  const u = new URL(publicUrl);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`publicUrl must be http(s): ${publicUrl}`);
  if (u.search || u.hash || u.username || u.password) throw new Error(`publicUrl must be a plain origin: ${publicUrl}`);
  // oidc-provider would expect to be mounted under a path prefix; we serve at /.
  if (u.pathname !== '/' && u.pathname !== '') throw new Error(`publicUrl must not have a path: ${publicUrl}`);
  return u.origin;
}

function sendHtml(res: http.ServerResponse, status: number, html: string, headers: Record<string, string> = {}) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(html),
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(html);
}

function rateLimitedPage(retryAfterS: number): string {
  return page(
    'Too many attempts',
    `<p class="error">Too many attempts from your network address.</p>
<p>Wait ${retryAfterS} second${retryAfterS === 1 ? '' : 's'} and try again.</p>`,
  );
}

class FormError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new FormError(415, 'expected a form submission');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new FormError(413, 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function createOAuthWeb(opts: OAuthWebOptions): OAuthWeb {
  const { accounts, logger } = opts;
  const { keys, adapter: store } = opts;
  const codeLimiter = opts.limiters.userCode;
  const loginLimiter = opts.limiters.login;

  const emit = (e: OAuthEvent) => {
    if (e.type === 'rate_limited' || e.type === 'login_failed') logger?.warn({ oauth: e }, `oauth: ${e.type}`);
    else logger?.info({ oauth: e }, `oauth: ${e.type}`);
    try {
      opts.onEvent?.(e);
    } catch (err) {
      logger?.warn({ err }, 'oauth: onEvent threw');
    }
  };

  const issuer = opts.issuer;

  // Requests whose user-code attempt failed; everything else gets its
  // rate-limit point back (see the limiter middleware below).
  const rejectedCodeRequests = new WeakSet<http.IncomingMessage>();
  const ipOf = (ctx: KoaContextWithOIDC) => ctx.ip || ctx.req.socket.remoteAddress || 'unknown';

  const provider = createOAuthProvider({
    issuer,
    adapter: store.factory,
    keys,
    accounts,
    ttl: opts.ttl,
    pollIntervalS: opts.pollIntervalS,
    hooks: {
      userCodeRejected(ctx) {
        rejectedCodeRequests.add(ctx.req);
      },
      deviceApproved(ctx, info) {
        emit({
          type: 'device_approved',
          user: info.accountName,
          ip: ipOf(ctx),
          detail: `client=${info.clientId} account=${info.accountId}`,
        });
      },
      deviceDenied(ctx, info) {
        emit({ type: 'device_denied', ip: ipOf(ctx), detail: info.clientId ? `client=${info.clientId}` : undefined });
      },
    },
  });
  provider.on('server_error', (_ctx: unknown, err: unknown) => logger?.warn({ err }, 'oauth: server error'));

  // Brute force on user codes: POST /device is where a code is tried. A point
  // is taken before oidc-provider looks at the request, so concurrent guesses
  // cannot overrun the limit, and given back unless the code was wrong,
  // expired or used, so people entering and confirming real codes are not
  // counted. While limited, even a correct code is refused.
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/device') return next();
    const ip = ctx.ip || 'unknown';
    try {
      await codeLimiter.consume(ip);
    } catch (rej) {
      if (!(rej instanceof RateLimiterRes)) throw rej;
      const retryAfterS = Math.max(1, Math.ceil(rej.msBeforeNext / 1000));
      emit({ type: 'rate_limited', ip, detail: 'user_code' });
      ctx.status = 429;
      ctx.set('Retry-After', String(retryAfterS));
      ctx.set('Cache-Control', 'no-store');
      ctx.type = 'html';
      ctx.body = rateLimitedPage(retryAfterS);
      return;
    }
    try {
      await next();
    } finally {
      if (!rejectedCodeRequests.has(ctx.req)) await codeLimiter.reward(ip);
    }
  });

  const koa = provider.callback();

  async function interactionDetails(req: http.IncomingMessage, res: http.ServerResponse, uid: string) {
    try {
      const details = await provider.interactionDetails(req, res);
      // The cookie names the interaction; the URL must agree with it.
      return details.uid === uid ? details : undefined;
    } catch (err) {
      if (err instanceof errors.SessionNotFound) return undefined;
      throw err;
    }
  }

  function expiredInteraction(res: http.ServerResponse) {
    sendHtml(
      res,
      400,
      page(
        'Sign-in expired',
        '<p class="error">This sign-in page has expired or was opened in another browser.</p><p>Start again on your device (it will show a new code), or open the CMDOP console again.</p>',
      ),
    );
  }

  /** What the sign-in page needs to know about the request behind an interaction. */
  interface InteractionView {
    deviceCode?: string;
    params: Record<string, unknown>;
  }

  async function loginPage(
    res: http.ServerResponse,
    uid: string,
    details: InteractionView,
    view: { error?: string; username?: string; status?: number } = {},
  ) {
    const action = `/interaction/${encodeURIComponent(uid)}`;
    // The cursor starts where typing starts (no script may run here: `autofocus`):
    // the user name, or the password when a failed try kept the name.
    const form = (submit: string, cancel: string) => `<form method="post" action="${escapeHtml(action)}" autocomplete="on">
<label for="username">User name</label>
<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(view.username ?? '')}"${view.username ? '' : ' autofocus'}>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required${view.username ? ' autofocus' : ''}>
<div class="actions">
<button type="submit">${escapeHtml(submit)}</button>
<button type="submit" name="deny" value="yes" class="secondary" formnovalidate>${escapeHtml(cancel)}</button>
</div>
</form>`;
    const errorHtml = view.error ? `<p class="error">${escapeHtml(view.error)}</p>` : '';

    if (!details.deviceCode) {
      // An authorization request (the console's code + PKCE flow): the
      // client and the redirect_uri were checked by oidc-provider before it
      // sent the browser here, so both are registered values.
      const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : '';
      const client = clientId ? await provider.Client.find(clientId) : undefined;
      const clientName = (client?.metadata().client_name as string | undefined) ?? (clientId || 'an application');
      let returnsTo = '';
      try {
        returnsTo = new URL(String(details.params.redirect_uri)).origin;
      } catch {
        // shown without it
      }
      const rows = [`<dt>Application</dt><dd>${escapeHtml(clientName)}</dd>`];
      if (returnsTo) rows.push(`<dt>Returns to</dt><dd>${escapeHtml(returnsTo)}</dd>`);
      return sendHtml(
        res,
        view.status ?? 200,
        page(
          'Sign in',
          `${errorHtml}
<p><strong>${escapeHtml(clientName)}</strong> asks you to sign in to CMDOP.</p>
<dl>${rows.join('')}</dl>
${form('Sign in', 'Cancel')}`,
        ),
      );
    }

    let codeHtml = '';
    let info: DeviceDescription | undefined;
    let clientName = CLI_CLIENT_NAME;
    const code = await provider.DeviceCode.find(details.deviceCode, { ignoreExpiration: true });
    if (code) {
      codeHtml = `<p>You are approving the device showing this code:</p><code class="user-code">${escapeHtml(formatUserCode(code.userCode, USER_CODE_MASK))}</code>`;
      info = code.deviceInfo as DeviceDescription | undefined;
      if (code.clientId !== CLI_CLIENT_ID) clientName = code.clientId ?? clientName;
    }
    sendHtml(
      res,
      view.status ?? 200,
      page(
        'Sign in to approve',
        `${errorHtml}
${codeHtml}
${deviceDetails(clientName, info)}
${ONLY_YOUR_OWN_CODE}
${form('Sign in and approve', 'Deny')}`,
      ),
    );
  }

  async function handleInteraction(req: http.IncomingMessage, res: http.ServerResponse, uid: string) {
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (req.method !== 'GET' && req.method !== 'POST') {
      sendHtml(res, 405, page('Not allowed', '<p>Method not allowed.</p>'), { Allow: 'GET, POST' });
      return;
    }
    const details = await interactionDetails(req, res, uid);
    if (!details) return expiredInteraction(res);
    if (details.prompt.name !== 'login') {
      // With the consent policy above only the login prompt reaches us.
      sendHtml(res, 400, page('Unexpected request', `<p class="error">Unsupported step: ${escapeHtml(details.prompt.name)}</p>`));
      return;
    }

    if (req.method === 'GET') return loginPage(res, uid, details);

    let form: URLSearchParams;
    try {
      form = await readForm(req);
    } catch (err) {
      if (err instanceof FormError) return sendHtml(res, err.status, page('Bad request', `<p class="error">${escapeHtml(err.message)}</p>`));
      throw err;
    }

    if (form.get('deny')) {
      // oidc-provider marks the device code access_denied and shows the
      // "request denied" page (the deviceDenied hook reports it); an
      // authorization request goes back to its redirect_uri with
      // error=access_denied.
      return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'End-User denied the request' }, { mergeWithLastSubmission: false });
    }

    try {
      await loginLimiter.consume(ip);
    } catch (rej) {
      if (!(rej instanceof RateLimiterRes)) throw rej;
      const retryAfterS = Math.max(1, Math.ceil(rej.msBeforeNext / 1000));
      emit({ type: 'rate_limited', ip, detail: 'login' });
      return sendHtml(res, 429, rateLimitedPage(retryAfterS), { 'Retry-After': String(retryAfterS) });
    }

    const username = (form.get('username') ?? '').trim();
    const password = form.get('password') ?? '';
    // Over-long input is refused, not truncated (a truncated password could
    // match a different, shorter one).
    const plausible = username.length > 0 && username.length <= 256 && password.length > 0 && password.length <= 1024;
    const account = plausible ? await accounts.authenticate(username, password) : undefined;
    if (!account) {
      const shownName = username.slice(0, 256);
      emit({ type: 'login_failed', user: shownName || undefined, ip });
      return loginPage(res, uid, details, { error: 'Wrong user name or password.', username: shownName });
    }
    // Only failures count against the limit.
    await loginLimiter.reward(ip);
    const clientId = details.deviceCode ? undefined : details.params.client_id;
    emit({ type: 'login', user: account.name, ip, detail: `account=${account.id}${typeof clientId === 'string' ? ` client=${clientId}` : ''}` });
    // remember: false — the browser session ends with the browser; it exists
    // only to finish this approval or console sign-in (and a few more within
    // ttl.session). For an authorization request, oidc-provider then
    // redirects to the client's redirect_uri with the code (consent is the
    // first-party grant loadExistingGrant hands back).
    await provider.interactionFinished(req, res, { login: { accountId: account.id, remember: false } }, { mergeWithLastSubmission: false });
  }

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      const m = INTERACTION_PATH.exec(path);
      if (m) return handleInteraction(req, res, m[1]);
      return koa(req, res);
    })().catch((err: unknown) => {
      logger?.warn({ err }, 'oauth: request failed');
      if (!res.headersSent) sendHtml(res, 500, page('Server error', '<p class="error">Something went wrong on our side. Try again.</p>'));
      else res.destroy();
    });
  };

  async function verifyAccessToken(token: string): Promise<VerifiedAccessToken | undefined> {
    if (typeof token !== 'string' || token.length === 0 || token.length > 512) return undefined;
    // Opaque tokens: the stored row is the truth. find() returns undefined
    // when the token is unknown, expired, or deleted by revocation.
    const at = await provider.AccessToken.find(token);
    if (!at || !at.accountId || !at.clientId || !at.exp) return undefined;
    // The grant goes when a refresh token is revoked or replayed, or when the
    // user is revoked; tokens under it must stop working at once.
    const grant = at.grantId ? await provider.Grant.find(at.grantId) : undefined;
    if (!grant || grant.accountId !== at.accountId || grant.clientId !== at.clientId) return undefined;
    if (!(await accounts.find(at.accountId))) return undefined;
    return { userId: at.accountId, clientId: at.clientId, scopes: [...at.scopes], expiresAtMs: at.exp * 1000 };
  }

  return {
    issuer,
    handle,
    verifyAccessToken,
    async revokeUser(userId: string) {
      const removed = await store.revokeAccount(userId);
      logger?.info({ userId, removed }, 'oauth: revoked every grant, token and session of a user');
    },
    async close() {
      store.close();
    },
  };
}
