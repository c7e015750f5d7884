// The client side of the OAuth device authorization grant (RFC 8628), the
// refresh grant and token revocation (RFC 7009). Written by hand because it
// is three form POSTs, and a library's fetch would need rewiring to reach a
// control plane whose self-signed certificate we pin (sdk/trust/firstUse.ts): here the
// pinned https.Agent goes straight into node's request. The console's
// sign-in uses oauth4webapi (app/renderer/src/auth/pkce.ts); here it cannot
// yet: it is ESM-only, and this SDK is CommonJS on Node 20, which cannot
// require() an ES module (Node 22 can; move when the SDK's floor does).
import http from 'node:http';
import https from 'node:https';

export interface TokenSet {
  accessToken: string;
  refreshToken: string;
  expiresInS: number;
}

export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string;
  expiresInS: number;
  intervalS: number;
}

export class OAuthError extends Error {
  constructor(
    readonly error: string,
    description: string,
  ) {
    super(description ? `${error}: ${description}` : error);
  }
}

export class OAuthClient {
  constructor(
    readonly clientId: string,
    private agent?: https.Agent,
  ) {}

  /** POSTs a form and returns the JSON body; an OAuth error body becomes OAuthError. */
  post(url: string, form: Record<string, string>): Promise<any> {
    const body = new URLSearchParams(form).toString();
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        u,
        {
          method: 'POST',
          agent: u.protocol === 'https:' ? this.agent : undefined,
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
          timeout: 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: any;
            try {
              json = text ? JSON.parse(text) : {};
            } catch {
              return reject(new Error(`${url} answered HTTP ${res.statusCode} that is not JSON: ${text.slice(0, 200)}`));
            }
            if (json.error) return reject(new OAuthError(json.error, json.error_description ?? ''));
            if ((res.statusCode ?? 500) >= 400) return reject(new Error(`${url} answered HTTP ${res.statusCode}`));
            resolve(json);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${url} did not answer in 15 s`)));
      req.on('error', (e) => reject(new Error(`cannot reach ${url}: ${e.message}`)));
      req.end(body);
    });
  }

  async startDeviceAuthorization(endpoint: string, scope = 'openid offline_access'): Promise<DeviceAuthorization> {
    const r = await this.post(endpoint, { client_id: this.clientId, scope });
    return {
      deviceCode: r.device_code,
      userCode: r.user_code,
      verificationUri: r.verification_uri,
      verificationUriComplete: r.verification_uri_complete ?? r.verification_uri,
      expiresInS: r.expires_in,
      intervalS: r.interval ?? 5,
    };
  }

  /**
   * Polls the token endpoint at the server's interval until the user
   * approves (tokens), denies or the code expires (OAuthError). `slow_down`
   * adds 5 s to the interval, as RFC 8628 section 3.5 says.
   */
  async pollDeviceToken(endpoint: string, d: DeviceAuthorization, signal?: AbortSignal): Promise<TokenSet> {
    let intervalS = d.intervalS;
    const deadline = Date.now() + d.expiresInS * 1000;
    for (;;) {
      await sleep(intervalS * 1000, signal);
      try {
        const r = await this.post(endpoint, {
          grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
          device_code: d.deviceCode,
          client_id: this.clientId,
        });
        return toTokenSet(r);
      } catch (e) {
        if (!(e instanceof OAuthError)) throw e;
        if (e.error === 'authorization_pending' && Date.now() < deadline) continue;
        if (e.error === 'slow_down') {
          intervalS += 5;
          continue;
        }
        throw e;
      }
    }
  }

  async refresh(endpoint: string, refreshToken: string): Promise<TokenSet> {
    const r = await this.post(endpoint, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: this.clientId });
    return toTokenSet(r, refreshToken);
  }

  async revoke(endpoint: string, token: string): Promise<void> {
    await this.post(endpoint, { token, token_type_hint: 'refresh_token', client_id: this.clientId });
  }
}

function toTokenSet(r: any, previousRefresh = ''): TokenSet {
  if (typeof r.access_token !== 'string') throw new Error('the token endpoint returned no access_token');
  return { accessToken: r.access_token, refreshToken: r.refresh_token ?? previousRefresh, expiresInS: r.expires_in ?? 900 };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('cancelled'));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new Error('cancelled'));
    });
  });
}
