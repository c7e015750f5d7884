// The OAuth 2.0 authorization server itself: oidc-provider configured for two
// first-party clients: CMDOP's own CLI and agents (device authorization
// grant, RFC 8628) and the browser console the web port serves
// (authorization code + PKCE S256, redirecting back to ISSUER/callback).
// Everything oidc-provider does not need for those is switched off.
import type { Adapter, Configuration, ErrorOut, KoaContextWithOIDC } from './oidc';
import { Provider, deviceCodeGrant, errors, interactionPolicy } from './oidc';
import type { OAuthKeys } from './keys';
import { CSP, ONLY_YOUR_OWN_CODE, deviceDetails, escapeHtml, page } from './pages';
import type { DeviceDescription } from './pages';

/** Where user names and passwords are checked; the control plane owns the users. */
export interface Accounts {
  /** May be async: password hashes are slow on purpose. */
  authenticate(username: string, password: string): { id: string; name: string } | undefined | Promise<{ id: string; name: string } | undefined>;
  find(id: string): Promise<{ id: string; name: string } | undefined>;
}

export const CLI_CLIENT_ID = 'cmdop-cli';
export const CLI_CLIENT_NAME = 'CMDOP CLI';
/** The browser console served on the web port: authorization code + PKCE, public. */
export const CONSOLE_CLIENT_ID = 'cmdop-console';
export const CONSOLE_CLIENT_NAME = 'CMDOP console';
/** Where the console takes the code back: ISSUER + this path. */
export const CONSOLE_CALLBACK_PATH = '/callback';
/** Clients of our own, for which signing in is the consent. */
const FIRST_PARTY = new Set([CLI_CLIENT_ID, CONSOLE_CLIENT_ID]);
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const USER_CODE_MASK = '****-****';

/** Lifetimes in seconds. */
export interface OAuthTTL {
  accessToken?: number;
  deviceCode?: number;
  refreshToken?: number;
  /** Upper bound on a device staying signed in through refresh-token rotation. */
  grant?: number;
  /** Browser sign-in at the authorization server (approving more devices without a password). */
  session?: number;
  /** Time to finish the sign-in form once a code is confirmed. */
  interaction?: number;
}

export const DEFAULT_TTL: Required<OAuthTTL> = {
  accessToken: 900,
  deviceCode: 600,
  refreshToken: 30 * 24 * 3600,
  grant: 365 * 24 * 3600,
  session: 3600,
  interaction: 600,
};

/** RFC 8628's default polling interval; announced in the device authorization response. */
export const DEFAULT_POLL_INTERVAL_S = 5;

/** Called from inside oidc-provider's request handling (ctx is the Koa context). */
export interface OAuthProviderHooks {
  /** A user code typed on the verification page was wrong, expired or already used. */
  userCodeRejected?(ctx: KoaContextWithOIDC, reason: 'not_found' | 'expired' | 'already_used'): void;
  /** A device code was approved; its client can now collect tokens. */
  deviceApproved?(ctx: KoaContextWithOIDC, info: { accountId: string; accountName: string; clientId: string }): void;
  /** A device code was denied (confirmation page or sign-in page); its client gets access_denied. */
  deviceDenied?(ctx: KoaContextWithOIDC, info: { clientId?: string }): void;
}

export interface OAuthProviderOptions {
  issuer: string;
  adapter: (model: string) => Adapter;
  keys: OAuthKeys;
  accounts: Accounts;
  ttl?: OAuthTTL;
  pollIntervalS?: number;
  hooks?: OAuthProviderHooks;
}

/**
 * RFC 8628 §3.5: a client polling faster than the interval gets slow_down and
 * its interval grows by 5 s for the rest of that code's life. oidc-provider 8
 * does not do this; this tracks the last poll per device code. In memory, so
 * per process: behind a load balancer a client alternating between nodes
 * could poll each at the full rate (the code still expires on schedule).
 */
class PollPacer {
  private readonly polls = new Map<string, { lastMs: number; intervalS: number; expMs: number }>();
  private lastPruneMs = 0;

  constructor(private readonly baseIntervalS: number) {}

  /** Records a poll; true when it came too early. */
  tooFast(codeId: string, expS: number, nowMs = Date.now()): boolean {
    this.prune(nowMs);
    const entry = this.polls.get(codeId);
    if (!entry) {
      this.polls.set(codeId, { lastMs: nowMs, intervalS: this.baseIntervalS, expMs: expS * 1000 });
      return false;
    }
    // Some slack for timer and network jitter: the point is to stop hammering,
    // not to punish a client whose sleep(5) came back at 4.9 s.
    const slackMs = Math.min(1000, entry.intervalS * 200);
    const early = nowMs - entry.lastMs < entry.intervalS * 1000 - slackMs;
    entry.lastMs = nowMs;
    if (early) entry.intervalS += 5;
    return early;
  }

  private prune(nowMs: number) {
    if (nowMs - this.lastPruneMs < 60_000) return;
    this.lastPruneMs = nowMs;
    for (const [id, e] of this.polls) if (e.expMs <= nowMs) this.polls.delete(id);
  }
}

function deviceInfo(ctx: KoaContextWithOIDC): DeviceDescription {
  const name = ctx.oidc.params?.device_name;
  return {
    ip: ctx.ip,
    ua: (ctx.get('user-agent') || '').slice(0, 200) || undefined,
    name: typeof name === 'string' && name ? name : undefined,
  };
}

export function createOAuthProvider(opts: OAuthProviderOptions): Provider {
  const ttl = { ...DEFAULT_TTL, ...opts.ttl };
  const pollIntervalS = opts.pollIntervalS ?? DEFAULT_POLL_INTERVAL_S;
  const hooks = opts.hooks ?? {};
  const { accounts } = opts;
  const issuerOrigin = new URL(opts.issuer).origin;

  // Consent: the person already confirmed this code for this client on the
  // confirmation page, then signed in (or, for the console, signed in on a
  // page naming it, in a browser tab the console itself sent there). For our
  // own first-party clients that is the consent; a second "allow CMDOP CLI
  // to ..." page adds nothing. The stock policy always asks native clients
  // to consent again (native_client_prompt), so that check goes; the
  // requested scopes are granted in loadExistingGrant below.
  const policy = interactionPolicy.base();
  policy.get('consent')!.checks.remove('native_client_prompt');

  const configuration: Configuration = {
    adapter: opts.adapter,
    jwks: opts.keys.jwks,
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        client_name: CLI_CLIENT_NAME,
        application_type: 'native',
        token_endpoint_auth_method: 'none', // public client: it runs on users' machines
        grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        id_token_signed_response_alg: 'ES256', // our only signing key is P-256
      },
      {
        // The console: a single-page app served from this same origin. It
        // runs in a browser, so it is public (PKCE instead of a secret), and
        // its only redirect is back to its own /callback.
        client_id: CONSOLE_CLIENT_ID,
        client_name: CONSOLE_CLIENT_NAME,
        application_type: 'web',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [`${issuerOrigin}${CONSOLE_CALLBACK_PATH}`],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    // PKCE on every authorization request, S256 only (plain is refused).
    pkce: { methods: ['S256'], required: () => true },
    scopes: ['openid', 'offline_access'],
    // No cross-origin calls to the token endpoints. The console's own calls
    // to /token and /token/revocation are same-origin, but browsers still
    // send Origin on a POST, and oidc-provider asks this for any request that
    // has one: the console's client from the issuer's own origin is the only
    // yes. (The CLI sends no Origin, so this is never asked for it.)
    clientBasedCORS: (_ctx, origin, client) => client.clientId === CONSOLE_CLIENT_ID && origin === issuerOrigin,
    cookies: {
      keys: opts.keys.cookieKeys,
      // Lax, not oidc-provider's default None for the session cookie: every
      // step here is a same-site form post or top-level redirect, and
      // SameSite=None cookies need `Secure`, which browsers refuse to set over
      // plain http (the loopback default). `secure` is left unset on purpose:
      // oidc-provider then sets it from the request (https => Secure), and an
      // explicit true would make the cookies module throw on http.
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    features: {
      devInteractions: { enabled: false }, // web.ts serves the sign-in page
      deviceFlow: {
        enabled: true,
        charset: 'base-20', // no vowels, no look-alikes: 20^8 ≈ 2.6e10 codes
        mask: USER_CODE_MASK,
        deviceInfo,
        userCodeInputSource,
        userCodeConfirmSource,
        successSource,
      },
      revocation: { enabled: true },
      introspection: { enabled: false }, // tokens are checked in-process (verifyAccessToken)
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
    },
    // `device_name`: what an agent calls itself ("build-box"), shown on the
    // confirmation page as self-reported. Optional; bounded and printable.
    extraParams: {
      device_name(_ctx, value) {
        if (value === undefined) return;
        if (value.length > 64 || /[\u0000-\u001f\u007f]/.test(value)) {
          throw new errors.InvalidRequest('device_name must be at most 64 printable characters');
        }
      },
    },
    async findAccount(_ctx, sub) {
      const account = await accounts.find(sub);
      if (!account) return undefined;
      return { accountId: account.id, claims: () => ({ sub: account.id }) };
    },
    // The documented way to skip consent for a first-party client: hand back
    // a Grant holding the requested scopes. A fresh Grant per approval, not
    // the browser session's: revoking one device's refresh token revokes its
    // whole grant, and that must not sign out every other device the same
    // browser approved (nor another console tab signed in separately).
    async loadExistingGrant(ctx) {
      const fromConsent = ctx.oidc.result?.consent?.grantId;
      if (fromConsent) return ctx.oidc.provider.Grant.find(fromConsent);
      const clientId = ctx.oidc.client!.clientId;
      const accountId = ctx.oidc.session!.accountId!;
      if (!FIRST_PARTY.has(clientId)) {
        const existing = ctx.oidc.session!.grantIdFor(clientId);
        return existing ? ctx.oidc.provider.Grant.find(existing) : undefined;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId });
      const scopes = [...ctx.oidc.requestParamScopes].filter((s) => s === 'openid' || s === 'offline_access');
      if (scopes.length) grant.addOIDCScope(scopes.join(' '));
      await grant.save();
      return grant;
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Refresh tokens for the CLI and the console whether or not they asked
    // for offline_access (oidc-provider drops that scope from an
    // authorization request without prompt=consent), never tied to the
    // browser session that approved them, and rotated on every use (a
    // replayed, already-rotated token revokes the whole grant).
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    rotateRefreshToken: true,
    ttl: {
      AccessToken: ttl.accessToken,
      DeviceCode: ttl.deviceCode,
      RefreshToken: ttl.refreshToken,
      Grant: ttl.grant,
      Session: ttl.session,
      Interaction: ttl.interaction,
      IdToken: 3600,
    },
    renderError,
  };

  const provider = new Provider(opts.issuer, configuration);
  // We terminate HTTP(S) ourselves; never trust X-Forwarded-* (ctx.ip must be
  // the socket's address, it keys the rate limits).
  provider.proxy = false;

  // Headers for every response, and the interval nobody else adds.
  provider.use(async (ctx, next) => {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Referrer-Policy', 'no-referrer');
    await next();
    // oidc-provider appended the hash of its auto-submit script to our
    // script-src 'none'; 'none' must then go or the policy is contradictory.
    const csp = ctx.response.get('Content-Security-Policy');
    if (typeof csp === 'string' && /script-src 'none' 'sha256-/.test(csp)) {
      ctx.set('Content-Security-Policy', csp.replace("script-src 'none' ", 'script-src '));
    }
    // RFC 8628 §3.2: `interval` is optional and defaults to 5 s; oidc-provider
    // 8 never sends it. Say it, since it is what slow_down is measured against.
    const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
    const body = ctx.body as Record<string, unknown> | undefined;
    if (oidc?.route === 'device_authorization' && ctx.status === 200 && body && typeof body.device_code === 'string') {
      body.interval = pollIntervalS;
    }
  });

  const pacer = new PollPacer(pollIntervalS);
  provider.registerGrantType(
    DEVICE_CODE_GRANT,
    async (ctx, next) => {
      const value = ctx.oidc.params?.device_code;
      if (typeof value === 'string') {
        // Only pace codes that exist, belong to this client and are live;
        // everything else gets oidc-provider's own answer (invalid_grant,
        // expired_token).
        const code = await ctx.oidc.provider.DeviceCode.find(value, { ignoreExpiration: true });
        if (code && code.clientId === ctx.oidc.client?.clientId && !code.isExpired && code.exp) {
          if (pacer.tooFast(code.jti, code.exp)) {
            throw new errors.SlowDown();
          }
        }
      }
      return deviceCodeGrant.handler(ctx, next);
    },
    deviceCodeGrant.parameters,
  );

  return provider;

  // ---- pages (oidc-provider calls these with the Koa context) ----

  async function userCodeInputSource(ctx: KoaContextWithOIDC, form: string, out?: ErrorOut, err?: Error) {
    let message = '<p>Enter the code shown on your device.</p>';
    switch (err?.name) {
      case undefined:
        break;
      case 'NoCodeError':
        message = '<p class="error">Enter the code shown on your device.</p>';
        break;
      case 'NotFoundError':
        message = '<p class="error">That code is not valid. Check it against your device and try again.</p>';
        hooks.userCodeRejected?.(ctx, 'not_found');
        break;
      case 'ExpiredError':
        message = '<p class="error">That code has expired. Start the sign-in again on your device to get a new one.</p>';
        hooks.userCodeRejected?.(ctx, 'expired');
        break;
      case 'AlreadyUsedError':
        message = '<p class="error">That code has already been used.</p>';
        hooks.userCodeRejected?.(ctx, 'already_used');
        break;
      case 'AbortedError':
        message = '<p class="error">Request denied. The device has been told; you can close this page.</p>';
        hooks.deviceDenied?.(ctx, { clientId: ctx.oidc.deviceCode?.clientId ?? ctx.oidc.client?.clientId });
        break;
      default:
        message = `<p class="error">Something went wrong: ${escapeHtml(out?.error_description ?? out?.error ?? 'unknown error')}</p>`;
    }
    ctx.type = 'html';
    ctx.body = page(
      'Connect a device',
      `${message}
${form}
<div class="actions"><button type="submit" form="op.deviceInputForm">Continue</button></div>
<p class="note">Only enter a code that a device you are setting up is showing you right now.</p>`,
    );
  }

  async function userCodeConfirmSource(
    ctx: KoaContextWithOIDC,
    form: string,
    client: { clientId: string; metadata(): { client_name?: string } },
    info: DeviceDescription,
    userCode: string,
  ) {
    const clientName = client.metadata().client_name ?? client.clientId;
    ctx.type = 'html';
    ctx.body = page(
      'Approve this device?',
      `<p>A device is asking to sign in to your CMDOP account. Check that it shows this code:</p>
<code class="user-code">${escapeHtml(userCode)}</code>
${deviceDetails(clientName, info)}
${ONLY_YOUR_OWN_CODE}
${form}
<div class="actions">
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes" class="secondary">Deny</button>
</div>`,
    );
  }

  async function successSource(ctx: KoaContextWithOIDC) {
    const accountId = ctx.oidc.deviceCode?.accountId ?? ctx.oidc.session?.accountId ?? '';
    const clientId = ctx.oidc.client?.clientId ?? '';
    const name = (await accounts.find(accountId))?.name ?? accountId;
    hooks.deviceApproved?.(ctx, { accountId, accountName: name, clientId });
    ctx.type = 'html';
    ctx.body = page(
      'Device approved',
      `<p>You approved the device as <strong>${escapeHtml(name)}</strong>. It will finish signing in by itself; you can close this page.</p>
<p class="note">If you did not mean to do this, sign out everywhere from the CMDOP console or ask your administrator to revoke your sessions.</p>`,
    );
  }

  async function renderError(ctx: KoaContextWithOIDC, out: ErrorOut) {
    // Errors oidc-provider cannot send back to a client's redirect_uri (an
    // unknown client, a redirect_uri that does not match) land here.
    const browserFlow = ctx.oidc?.route === 'authorization' || ctx.oidc?.route === 'resume';
    ctx.type = 'html';
    ctx.body = page(
      'Something went wrong',
      `<p class="error">${escapeHtml(out.error_description ?? out.error)}</p>
<p>Error code: <code>${escapeHtml(out.error)}</code></p>
<p>${browserFlow ? 'Open the CMDOP console again and sign in from there.' : 'Start the sign-in again on your device; it will show a new code.'}</p>`,
    );
  }
}
