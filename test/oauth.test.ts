// The OAuth authorization server: the device authorization grant (RFC 8628)
// driven over real HTTP like a CLI and a browser would, plus refresh-token
// rotation, revocation, denial, expiry, polling pace, brute-force limits and
// persistence across a restart.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import * as selfsigned from 'selfsigned';
import { DEFAULT_RATE_LIMIT, createOAuthWeb, oauthIssuer } from '../control-plane/oauth/web';
import { loadOrCreateOAuthKeys } from '../control-plane/oauth/keys';
import { OAuthModelsRepo, createOidcAdapter, createRateLimiter, openDb, type Db } from '../control-plane/db';
import type { OAuthEvent, OAuthWeb as OAuthHandler, OAuthWebOptions } from '../control-plane/oauth/web';
import { startWebServer } from '../control-plane/transports/http/webServer';
import { createLogger } from '../lib/logger';

/** The OAuth server mounted alone on a web port of its own, as the control plane mounts it (last). */
type OAuthWeb = OAuthHandler & { url: string; port: number };
interface HarnessOptions extends Partial<Omit<OAuthWebOptions, 'issuer' | 'adapter' | 'keys' | 'limiters'>> {
  rateLimit?: { points: number; durationS: number };
  listen?: { host: string; port: number };
  tls?: { certPem: string; keyPem: string };
  publicUrl?: string;
}
import type { Accounts } from '../control-plane/oauth/provider';
import { Browser, decodeHtml, hiddenInputs } from './helpers/browser';

const ALICE = { id: 'acct-alice-1', name: 'alice' };
const PASSWORD = 'correct horse';
const CLIENT_ID = 'cmdop-cli';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const accounts: Accounts = {
  authenticate: (u, p) => (u === ALICE.name && p === PASSWORD ? ALICE : undefined),
  find: async (id) => (id === ALICE.id ? ALICE : undefined),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------- the CLI side ----------

interface DeviceAuth {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

async function postForm(url: string, form: Record<string, string>) {
  const send = () =>
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams(form).toString(),
    });
  let res: Response;
  try {
    res = await send();
  } catch (err) {
    // fetch pools keep-alive sockets; after a server restart on the same port
    // the first POST can go out on a socket the old server closed, and POSTs
    // are not retried automatically. A real client retries too.
    if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
    res = await send();
  }
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : {}) as Record<string, any> };
}

async function startDevice(web: OAuthWeb, extra: Record<string, string> = {}): Promise<DeviceAuth> {
  const r = await postForm(`${web.url}/device/auth`, { client_id: CLIENT_ID, scope: 'openid offline_access', ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as DeviceAuth;
}

const poll = (web: OAuthWeb, deviceCode: string) =>
  postForm(`${web.url}/token`, { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: CLIENT_ID });

const refresh = (web: OAuthWeb, refreshToken: string) =>
  postForm(`${web.url}/token`, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID });

// ---------- the browser side ----------

/** GET the verification page, POST the code: the response page (confirmation page when the code is good). */
async function enterCode(b: Browser, web: OAuthWeb, verificationUri: string, userCode: string) {
  const input = await b.follow(verificationUri);
  assert.equal(input.res.status, 200);
  const { xsrf } = hiddenInputs(input.html, 'op.deviceInputForm');
  assert.match(xsrf, /^[0-9a-f]{48}$/);
  return b.follow(`${web.url}/device`, { form: { xsrf, user_code: userCode } });
}

/** From the confirmation page, press Continue: lands on the sign-in page. */
async function confirm(b: Browser, web: OAuthWeb, confirmHtml: string) {
  const fields = hiddenInputs(confirmHtml, 'op.deviceConfirmForm');
  assert.equal(fields.confirm, 'yes');
  const r = await b.follow(`${web.url}/device`, { form: fields });
  assert.equal(r.trail[0], 303, 'confirm redirects to the sign-in page');
  assert.match(new URL(r.url).pathname, /^\/interaction\/[A-Za-z0-9_-]+$/);
  return r;
}

async function signIn(b: Browser, loginUrl: string, username: string, password: string) {
  return b.follow(loginUrl, { form: { username, password } });
}

/** The whole human side of one approval; returns the success page. */
async function approve(web: OAuthWeb, dev: DeviceAuth, b = new Browser()) {
  const entered = await enterCode(b, web, dev.verification_uri, dev.user_code);
  assert.match(entered.html, /Approve this device\?/);
  const login = await confirm(b, web, entered.html);
  const done = await signIn(b, login.url, ALICE.name, PASSWORD);
  assert.equal(done.res.status, 200);
  assert.match(done.html, /Device approved/);
  return done;
}

async function tokensFor(web: OAuthWeb, extra: Record<string, string> = {}) {
  const dev = await startDevice(web, extra);
  await approve(web, dev);
  const r = await poll(web, dev.device_code);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as { access_token: string; refresh_token: string; id_token: string; expires_in: number; scope: string; token_type: string };
}

// ---------- servers ----------

interface Harness {
  web: OAuthWeb;
  db: Db;
  dir: string;
  events: OAuthEvent[];
  stop(): Promise<void>;
}

async function startHarness(over: HarnessOptions = {}, dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-oauth-'))): Promise<Harness> {
  // The store and keys as the control plane makes them (server.ts), on SQLite.
  const db = await openDb({ sqliteFile: path.join(dir, 'cmdop.sqlite') });
  const adapter = createOidcAdapter(new OAuthModelsRepo(db));
  const events: OAuthEvent[] = [];
  const { listen = { host: '127.0.0.1', port: 0 }, tls, publicUrl, rateLimit = DEFAULT_RATE_LIMIT, ...rest } = over;
  const limiter = (keyPrefix: string) => createRateLimiter(db, { keyPrefix, points: rateLimit.points, durationS: rateLimit.durationS });
  const server = await startWebServer({ listen, tls, ready: () => true, logger: createLogger('web', 'silent') });
  const oauth = createOAuthWeb({
    adapter,
    keys: loadOrCreateOAuthKeys(dir),
    limiters: { userCode: limiter('user_code'), login: limiter('login') },
    accounts,
    issuer: oauthIssuer(server.scheme, listen.host, server.port, publicUrl),
    pollIntervalS: 1,
    onEvent: (e: OAuthEvent) => events.push(e),
    ...rest,
  });
  server.mount([], oauth.handle, []);
  const web: OAuthWeb = Object.assign(oauth, { url: server.url, port: server.port });
  return {
    web,
    db,
    dir,
    events,
    async stop() {
      await server.close();
      await oauth.close();
      await db.close();
    },
  };
}

const dirsToRemove: string[] = [];
after(() => {
  for (const d of dirsToRemove) fs.rmSync(d, { recursive: true, force: true });
});

describe('device authorization grant', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    dirsToRemove.push(h.dir);
  });
  after(() => h.stop());

  it('publishes discovery for the issuer it is bound to', async () => {
    assert.equal(h.web.issuer, `http://127.0.0.1:${h.web.port}`);
    const r = await fetch(`${h.web.url}/.well-known/openid-configuration`);
    const d = (await r.json()) as Record<string, any>;
    assert.equal(d.issuer, h.web.issuer);
    assert.equal(d.device_authorization_endpoint, `${h.web.issuer}/device/auth`);
    assert.equal(d.token_endpoint, `${h.web.issuer}/token`);
    assert.equal(d.revocation_endpoint, `${h.web.issuer}/token/revocation`);
    assert.equal(d.introspection_endpoint, undefined);
    assert.ok(d.grant_types_supported.includes(DEVICE_GRANT));
    const jwks = (await (await fetch(d.jwks_uri)).json()) as { keys: Record<string, string>[] };
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].alg, 'ES256');
    assert.equal(jwks.keys[0].d, undefined, 'no private part published');
  });

  it('runs the whole flow: code, browser approval, tokens, refresh rotation, revocation', async () => {
    const dev = await startDevice(h.web);
    assert.match(dev.device_code, /^[A-Za-z0-9_-]{40,}$/);
    assert.match(dev.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(dev.verification_uri, `${h.web.issuer}/device`);
    assert.equal(dev.verification_uri_complete, `${h.web.issuer}/device?user_code=${dev.user_code}`);
    assert.equal(dev.expires_in, 600);
    assert.equal(dev.interval, 1);

    // Before anyone approves: pending.
    const pending = await poll(h.web, dev.device_code);
    assert.equal(pending.status, 400);
    assert.equal(pending.body.error, 'authorization_pending');

    // The browser: verification page, code, confirmation page, sign-in, success.
    const b = new Browser();
    const input = await b.follow(dev.verification_uri);
    assert.equal(input.res.status, 200);
    // Plain http on loopback: the cookies must work without Secure (a
    // browser drops Secure or SameSite=None cookies over http).
    const setCookies = input.res.headers.getSetCookie();
    assert.ok(setCookies.some((c) => c.startsWith('_session=')), setCookies.join('\n'));
    for (const c of setCookies) {
      assert.doesNotMatch(c, /;\s*secure/i, c);
      assert.match(c, /;\s*samesite=lax/i, c);
      assert.match(c, /;\s*httponly/i, c);
    }
    const csp = input.res.headers.get('content-security-policy')!;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(input.html, /CMDOP/);
    const entered = await enterCode(b, h.web, dev.verification_uri, dev.user_code.toLowerCase().replace('-', ' '));
    assert.equal(entered.res.status, 200);
    assert.match(entered.html, /Approve this device\?/);
    assert.ok(entered.html.includes(dev.user_code), 'confirmation page shows the code');
    assert.match(entered.html, /CMDOP CLI/);
    assert.match(entered.html, /Only approve a code you started yourself/);
    assert.match(entered.html, /127\.0\.0\.1/, 'shows where the request came from');

    const login = await confirm(b, h.web, entered.html);
    assert.equal(login.res.status, 200);
    assert.match(login.html, /Sign in to approve/);
    assert.ok(login.html.includes(dev.user_code), 'sign-in page shows the code being approved');
    assert.match(login.html, /name="password"/);
    assert.match(login.res.headers.get('content-security-policy')!, /default-src 'none'/);

    const done = await signIn(b, login.url, 'alice', PASSWORD);
    assert.deepEqual(done.trail, [303, 200]);
    assert.match(new URL(done.url).pathname, /^\/device\/[A-Za-z0-9_-]+$/);
    assert.match(done.html, /Device approved/);
    assert.match(done.html, /<strong>alice<\/strong>/);

    await sleep(1100); // respect the 1 s interval since the pending poll
    const tok = await poll(h.web, dev.device_code);
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal(tok.body.token_type, 'Bearer');
    assert.equal(tok.body.expires_in, 900);
    assert.deepEqual(new Set(tok.body.scope.split(' ')), new Set(['openid', 'offline_access']));
    assert.match(tok.body.access_token, /^[A-Za-z0-9_-]{40,}$/);
    assert.match(tok.body.refresh_token, /^[A-Za-z0-9_-]{40,}$/);
    const idPayload = JSON.parse(Buffer.from(tok.body.id_token.split('.')[1], 'base64url').toString());
    assert.equal(idPayload.sub, ALICE.id);
    assert.equal(idPayload.iss, h.web.issuer);
    assert.equal(idPayload.aud, CLIENT_ID);
    assert.equal(JSON.parse(Buffer.from(tok.body.id_token.split('.')[0], 'base64url').toString()).alg, 'ES256');

    const v = await h.web.verifyAccessToken(tok.body.access_token);
    assert.ok(v);
    assert.equal(v.userId, ALICE.id);
    assert.equal(v.clientId, CLIENT_ID);
    assert.deepEqual(new Set(v.scopes), new Set(['openid', 'offline_access']));
    assert.ok(Math.abs(v.expiresAtMs - (Date.now() + 900_000)) < 5_000, `expiresAtMs ${v.expiresAtMs}`);

    // Tokens are stored hashed: the raw values are nowhere in the database.
    const dump = JSON.stringify(await h.db.kysely.selectFrom('oauth_models').selectAll().execute());
    assert.ok(!dump.includes(tok.body.access_token), 'access token stored in the clear');
    assert.ok(!dump.includes(tok.body.refresh_token), 'refresh token stored in the clear');

    // Refresh: works and rotates.
    const r1 = await refresh(h.web, tok.body.refresh_token);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.notEqual(r1.body.refresh_token, tok.body.refresh_token);
    assert.notEqual(r1.body.access_token, tok.body.access_token);
    assert.equal((await h.web.verifyAccessToken(r1.body.access_token))?.userId, ALICE.id);

    // Revocation of the current refresh token: next refresh fails, and the
    // grant's access tokens stop verifying.
    const rev = await postForm(`${h.web.url}/token/revocation`, { token: r1.body.refresh_token, token_type_hint: 'refresh_token', client_id: CLIENT_ID });
    assert.equal(rev.status, 200);
    const r2 = await refresh(h.web, r1.body.refresh_token);
    assert.equal(r2.status, 400);
    assert.equal(r2.body.error, 'invalid_grant');
    assert.equal(await h.web.verifyAccessToken(r1.body.access_token), undefined);
    assert.equal(await h.web.verifyAccessToken(tok.body.access_token), undefined);

    const approved = h.events.filter((e) => e.type === 'device_approved');
    assert.equal(approved.length, 1);
    assert.equal(approved[0].user, 'alice');
    assert.match(approved[0].ip, /127\.0\.0\.1/);
    assert.ok(h.events.some((e) => e.type === 'login' && e.user === 'alice'));
  });

  it('a device code is single-use, and replaying it revokes what it issued', async () => {
    const dev = await startDevice(h.web);
    await approve(h.web, dev);
    const tok = await poll(h.web, dev.device_code);
    assert.equal(tok.status, 200);
    await sleep(1100);
    const again = await poll(h.web, dev.device_code);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal(await h.web.verifyAccessToken(tok.body.access_token), undefined);
    assert.equal((await refresh(h.web, tok.body.refresh_token)).body.error, 'invalid_grant');
  });

  it('issues a refresh token to the CLI even without offline_access', async () => {
    const tok = await tokensFor(h.web, { scope: 'openid' });
    assert.equal(tok.scope, 'openid');
    assert.match(tok.refresh_token, /^[A-Za-z0-9_-]{40,}$/);
    const r = await refresh(h.web, tok.refresh_token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((await h.web.verifyAccessToken(r.body.access_token))?.scopes, ['openid']);
  });

  it('replaying a rotated refresh token revokes the whole chain', async () => {
    const tok = await tokensFor(h.web);
    const r1 = await refresh(h.web, tok.refresh_token);
    assert.equal(r1.status, 200);
    const replay = await refresh(h.web, tok.refresh_token);
    assert.equal(replay.body.error, 'invalid_grant');
    const next = await refresh(h.web, r1.body.refresh_token);
    assert.equal(next.body.error, 'invalid_grant', 'the newer token died with the chain');
    assert.equal(await h.web.verifyAccessToken(r1.body.access_token), undefined);
  });

  it('revoking one device leaves another device approved in the same browser alone', async () => {
    const b = new Browser();
    const devA = await startDevice(h.web);
    await approve(h.web, devA, b);
    const a = (await poll(h.web, devA.device_code)).body;
    // Second device, same browser: the browser session skips the password.
    const devB = await startDevice(h.web);
    const entered = await enterCode(b, h.web, devB.verification_uri, devB.user_code);
    const fields = hiddenInputs(entered.html, 'op.deviceConfirmForm');
    const done = await b.follow(`${h.web.url}/device`, { form: fields });
    assert.match(done.html, /Device approved/);
    const bTok = (await poll(h.web, devB.device_code)).body;
    assert.ok(bTok.access_token);

    await postForm(`${h.web.url}/token/revocation`, { token: a.refresh_token, client_id: CLIENT_ID });
    assert.equal(await h.web.verifyAccessToken(a.access_token), undefined);
    assert.equal((await h.web.verifyAccessToken(bTok.access_token))?.userId, ALICE.id);
    assert.equal((await refresh(h.web, bTok.refresh_token)).status, 200);
  });

  it('answers slow_down to a client polling faster than the interval', async () => {
    const dev = await startDevice(h.web);
    const first = await poll(h.web, dev.device_code);
    assert.equal(first.body.error, 'authorization_pending');
    const second = await poll(h.web, dev.device_code);
    assert.equal(second.status, 400);
    assert.equal(second.body.error, 'slow_down');
    // The interval grew by 5 s (RFC 8628 §3.5): 1.2 s later is still too soon.
    await sleep(1200);
    assert.equal((await poll(h.web, dev.device_code)).body.error, 'slow_down');
    // A code nobody knows is not paced, it is invalid.
    const unknown = await poll(h.web, 'not-a-device-code');
    assert.equal(unknown.body.error, 'invalid_grant');
    assert.equal((await poll(h.web, 'not-a-device-code')).body.error, 'invalid_grant');
  });

  it('a code denied on the confirmation page gives the device access_denied', async () => {
    const dev = await startDevice(h.web);
    const b = new Browser();
    const entered = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    const fields = hiddenInputs(entered.html, 'op.deviceConfirmForm');
    const denied = await b.follow(`${h.web.url}/device`, { form: { ...fields, abort: 'yes' } });
    assert.equal(denied.res.status, 200);
    assert.match(denied.html, /Request denied/);
    const r = await poll(h.web, dev.device_code);
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'access_denied');
    // And it stays denied: the code cannot be entered again.
    const reuse = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    assert.match(reuse.html, /already been used/);
    assert.ok(h.events.some((e) => e.type === 'device_denied' && e.detail === `client=${CLIENT_ID}`));
  });

  it('a code denied on the sign-in page gives the device access_denied', async () => {
    const dev = await startDevice(h.web);
    const b = new Browser();
    const entered = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    const login = await confirm(b, h.web, entered.html);
    const denied = await b.follow(login.url, { form: { deny: 'yes' } });
    assert.match(denied.html, /Request denied/);
    assert.equal((await poll(h.web, dev.device_code)).body.error, 'access_denied');
  });

  it('a wrong password re-renders the form with an error and issues nothing', async () => {
    const dev = await startDevice(h.web);
    const b = new Browser();
    const entered = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    const login = await confirm(b, h.web, entered.html);
    const wrong = await signIn(b, login.url, 'alice', 'battery staple');
    assert.equal(wrong.res.status, 200);
    assert.deepEqual(wrong.trail, [200], 'no redirect');
    assert.match(wrong.html, /Wrong user name or password/);
    assert.match(wrong.html, /name="password"/);
    assert.match(wrong.html, /value="alice"/, 'keeps the user name');
    assert.equal((await poll(h.web, dev.device_code)).body.error, 'authorization_pending');
    assert.ok(h.events.some((e) => e.type === 'login_failed' && e.user === 'alice'));
    // The right password on the same page still works.
    const ok = await signIn(b, login.url, 'alice', PASSWORD);
    assert.match(ok.html, /Device approved/);
    await sleep(1100);
    assert.equal((await poll(h.web, dev.device_code)).status, 200);
  });

  it('escapes what the device says about itself', async () => {
    const dev = await startDevice(h.web, { device_name: '<script>alert(1)</script>' });
    const entered = await enterCode(new Browser(), h.web, dev.verification_uri, dev.user_code);
    assert.ok(!entered.html.includes('<script>alert(1)</script>'));
    assert.ok(entered.html.includes('&#60;script&#62;alert(1)&#60;/script&#62;'));
    const tooLong = await postForm(`${h.web.url}/device/auth`, { client_id: CLIENT_ID, scope: 'openid', device_name: 'x'.repeat(65) });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error, 'invalid_request');
  });

  it('the complete verification URI carries the code to the confirmation page', async () => {
    const dev = await startDevice(h.web);
    const b = new Browser();
    const auto = await b.follow(dev.verification_uri_complete);
    assert.equal(auto.res.status, 200);
    // oidc-provider's auto-submitting page: its one inline script is allowed
    // by hash, nothing else is.
    const csp = auto.res.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.doesNotMatch(csp, /'none' 'sha256/);
    assert.match(csp, /default-src 'none'/);
    const fields: Record<string, string> = {};
    for (const m of auto.html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g)) fields[m[1]] = decodeHtml(m[2]);
    assert.equal(fields.user_code, dev.user_code);
    const confirmPage = await b.follow(`${h.web.url}/device`, { form: fields });
    assert.match(confirmPage.html, /Approve this device\?/);
    assert.ok(confirmPage.html.includes(dev.user_code));
  });

  it('a wrong user code is refused with a readable message', async () => {
    const b = new Browser();
    const r = await enterCode(b, h.web, `${h.web.url}/device`, 'BCDF-GHJK');
    assert.equal(r.res.status, 200);
    assert.match(r.html, /That code is not valid/);
    assert.ok(hiddenInputs(r.html, 'op.deviceInputForm').xsrf, 'the form is offered again');
  });

  it('verifyAccessToken rejects garbage and unknown tokens', async () => {
    for (const t of ['', 'garbage', 'x'.repeat(43), 'x'.repeat(10_000), '../../etc/passwd', "' OR 1=1 --"]) {
      assert.equal(await h.web.verifyAccessToken(t), undefined, t.slice(0, 20));
    }
    assert.equal(await h.web.verifyAccessToken(undefined as unknown as string), undefined);
  });

  it('revokeUser ends every token and browser session of the user', async () => {
    const b = new Browser();
    const dev = await startDevice(h.web);
    await approve(h.web, dev, b);
    const tok = (await poll(h.web, dev.device_code)).body;
    assert.equal((await h.web.verifyAccessToken(tok.access_token))?.userId, ALICE.id);
    await h.web.revokeUser(ALICE.id);
    assert.equal(await h.web.verifyAccessToken(tok.access_token), undefined);
    assert.equal((await refresh(h.web, tok.refresh_token)).body.error, 'invalid_grant');
    // The browser's session is gone too: the next approval asks for the password again.
    const dev2 = await startDevice(h.web);
    const entered = await enterCode(b, h.web, dev2.verification_uri, dev2.user_code);
    const login = await confirm(b, h.web, entered.html);
    assert.match(login.html, /Sign in to approve/);
  });

  it('the sign-in page refuses a stale or foreign interaction', async () => {
    const r = await new Browser().follow(`${h.web.url}/interaction/abcdef`);
    assert.equal(r.res.status, 400);
    assert.match(r.html, /Sign-in expired/);
  });
});

describe('device code expiry', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ ttl: { deviceCode: 1 } });
    dirsToRemove.push(h.dir);
  });
  after(() => h.stop());

  it('an expired device code gives expired_token, and its user code is refused', async () => {
    const dev = await startDevice(h.web);
    assert.equal(dev.expires_in, 1);
    await sleep(1600);
    const r = await poll(h.web, dev.device_code);
    assert.equal(r.status, 400);
    assert.equal(r.body.error, 'expired_token');
    const entered = await enterCode(new Browser(), h.web, dev.verification_uri, dev.user_code);
    assert.match(entered.html, /That code has expired/);
  });
});

describe('brute force limits', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ rateLimit: { points: 3, durationS: 60 } });
    dirsToRemove.push(h.dir);
  });
  after(() => h.stop());

  it('too many wrong user codes from one address: 429, and even the right code is refused', async () => {
    const dev = await startDevice(h.web);
    const b = new Browser();
    // Real codes entered and confirmed do not count against the limit.
    const good = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    assert.match(good.html, /Approve this device\?/);
    for (const guess of ['BCDF-BCDF', 'GHJK-GHJK', 'LMNP-LMNP']) {
      const r = await enterCode(b, h.web, dev.verification_uri, guess);
      assert.equal(r.res.status, 200);
      assert.match(r.html, /That code is not valid/);
    }
    const blocked = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    assert.equal(blocked.res.status, 429);
    const retryAfter = Number(blocked.res.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.match(blocked.html, /Too many attempts/);
    assert.match(blocked.res.headers.get('content-type')!, /text\/html/);
    assert.ok(!blocked.html.includes('Approve this device'));
    assert.ok(h.events.some((e) => e.type === 'rate_limited' && e.detail === 'user_code'));
    // The device never got approved.
    assert.equal((await poll(h.web, dev.device_code)).body.error, 'authorization_pending');
  });
});

describe('sign-in brute force limit', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ rateLimit: { points: 3, durationS: 60 } });
    dirsToRemove.push(h.dir);
  });
  after(() => h.stop());

  it('too many wrong passwords: 429, and even the right password is refused', async () => {
    const dev = await startDevice(h.web);
    const b = new Browser();
    const entered = await enterCode(b, h.web, dev.verification_uri, dev.user_code);
    const login = await confirm(b, h.web, entered.html);
    for (let i = 0; i < 3; i++) {
      const r = await signIn(b, login.url, 'alice', `guess ${i}`);
      assert.match(r.html, /Wrong user name or password/);
    }
    const blocked = await signIn(b, login.url, 'alice', PASSWORD);
    assert.equal(blocked.res.status, 429);
    assert.ok(Number(blocked.res.headers.get('retry-after')) >= 1);
    assert.match(blocked.html, /Too many attempts/);
    assert.equal((await poll(h.web, dev.device_code)).body.error, 'authorization_pending');
    assert.ok(h.events.some((e) => e.type === 'rate_limited' && e.detail === 'login'));
  });
});

describe('persistence', () => {
  it('a restart with the same data directory keeps refresh tokens and keys', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-oauth-'));
    dirsToRemove.push(dir);
    const first = await startHarness({}, dir);
    const keyFile = path.join(dir, 'oauth-keys.json');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const keysBefore = fs.readFileSync(keyFile, 'utf8');
    const port = first.web.port;
    const tok = await tokensFor(first.web);
    await first.stop();

    const second = await startHarness({ listen: { host: '127.0.0.1', port } }, dir);
    try {
      assert.equal(second.web.issuer, `http://127.0.0.1:${port}`);
      assert.equal(fs.readFileSync(keyFile, 'utf8'), keysBefore, 'keys reused, not regenerated');
      // The access token from before the restart still verifies...
      assert.equal((await second.web.verifyAccessToken(tok.access_token))?.userId, ALICE.id);
      // ...and the refresh token still works.
      const r = await refresh(second.web, tok.refresh_token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const v = await second.web.verifyAccessToken(r.body.access_token);
      assert.equal(v?.userId, ALICE.id);
      assert.equal(v?.clientId, CLIENT_ID);
    } finally {
      await second.stop();
    }
  });
});

describe('over TLS', () => {
  it('serves https with an https issuer and Secure cookies', async () => {
    const pems = await selfsigned.generate([{ name: 'commonName', value: 'oauth test' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
    });
    const h = await startHarness({ tls: { certPem: pems.cert, keyPem: pems.private } });
    dirsToRemove.push(h.dir);
    try {
      assert.equal(h.web.issuer, `https://127.0.0.1:${h.web.port}`);
      assert.equal(h.web.url, h.web.issuer);
      const get = (p: string) =>
        new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
          https
            .get(`${h.web.url}${p}`, { ca: pems.cert, headers: { accept: 'text/html' } }, (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (d) => (body += d));
              res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
            })
            .on('error', reject);
        });
      const disco = await get('/.well-known/openid-configuration');
      assert.equal(JSON.parse(disco.body).device_authorization_endpoint, `${h.web.issuer}/device/auth`);
      const page = await get('/device');
      assert.equal(page.status, 200);
      const cookies = page.headers['set-cookie'] as string[];
      assert.ok(cookies.length >= 1);
      for (const c of cookies) assert.match(c, /;\s*secure/i, c);
    } finally {
      await h.stop();
    }
  });
});
