// The console's server side: its files on the web port (routes, content
// types, caching, CSP, traversal refused, 503 before it is built), browser
// sign-in with authorization code + PKCE through the real sign-in page, the
// resulting token on the WebSocket gateway, and the link `cmdop up` prints.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { startControlPlane, type ControlPlane } from '../control-plane/server';
import { startWebServer } from '../control-plane/transports/http/webServer';
import { createLogger } from '../lib/logger';
import { GatewayConnection, type WebSocketConstructor } from '../sdk/gateway';
import { Browser } from './helpers/browser';
import { CLI, cliEnv, startCluster, tempDir, waitForLine, type Cluster } from './helpers/cluster';

const Impl = WebSocket as unknown as WebSocketConstructor;

const BASE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
  "connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP request with the path sent exactly as given (fetch would normalise dot segments). */
function raw(base: string, rawPath: string, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Raw> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: o.method ?? 'GET', path: rawPath, headers: o.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function assertConsoleHeaders(r: Raw, port: number, what: string) {
  const csp = String(r.headers['content-security-policy']);
  // The stated policy, with the gateway's ws: origin spelled out in connect-src.
  assert.equal(csp.replace(/ ws:\/\/\S+(?=;)/g, ''), BASE_CSP, `${what}: CSP`);
  assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${port};`), `${what}: ws origin`);
  assert.equal(r.headers['x-content-type-options'], 'nosniff', what);
  assert.equal(r.headers['referrer-policy'], 'no-referrer', what);
}

const INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-AbC_12-x.js"></script></head><body><div id="root"></div></body></html>';
const JS = `export const hello = ${JSON.stringify('x'.repeat(4000))};\n`;

describe('console files on the web port', () => {
  let cp: ControlPlane;
  let dir: string;
  let consoleDir: string;
  let base: string;
  let port: number;
  before(async () => {
    dir = tempDir('cmdop-console-');
    consoleDir = path.join(dir, 'renderer');
    fs.mkdirSync(path.join(consoleDir, 'assets'), { recursive: true });
    fs.writeFileSync(path.join(consoleDir, 'index.html'), INDEX);
    fs.writeFileSync(path.join(consoleDir, 'assets', 'index-AbC_12-x.js'), JS);
    fs.writeFileSync(path.join(consoleDir, 'assets', 'index-9fK2LmQp.css'), 'body{margin:0}');
    fs.writeFileSync(path.join(consoleDir, 'assets', 'xterm-Q1w2E3r4.woff2'), Buffer.from([0x77, 0x4f, 0x46, 0x32, 0, 1, 2, 3]));
    fs.writeFileSync(path.join(consoleDir, 'assets', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    fs.writeFileSync(path.join(consoleDir, 'assets', '.secret'), 'dotfile');
    fs.writeFileSync(path.join(consoleDir, 'favicon.ico'), Buffer.from([0, 0, 1, 0]));
    fs.writeFileSync(path.join(dir, 'outside.txt'), 'OUTSIDE-THE-BUILD');
    fs.symlinkSync(path.join(dir, 'outside.txt'), path.join(consoleDir, 'assets', 'link-AAAAAAAA.js'));
    cp = await startControlPlane({ listen: '127.0.0.1:0', dataDir: path.join(dir, 'cp'), consoleDir, logger: createLogger('control-plane', 'silent') });
    base = cp.webUrl;
    port = Number(new URL(base).port);
  });
  after(async () => {
    await cp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves index.html with the CSP, no-store, on /, /callback, /share and other console routes', async () => {
    for (const p of ['/', '/callback?code=abc&state=xyz', '/share', '/machines/box/terminals/3f9a', '/index.html']) {
      const r = await raw(base, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body.toString(), INDEX, p);
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8', p);
      assert.equal(r.headers['cache-control'], 'no-store', p);
      assertConsoleHeaders(r, port, p);
    }
    const head = await raw(base, '/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(Number(head.headers['content-length']), Buffer.byteLength(INDEX));
    const post = await raw(base, '/share', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });

  it('serves assets with their content types; hashed ones immutable; gzip when accepted; 404 for unknown ones', async () => {
    const js = await raw(base, '/assets/index-AbC_12-x.js');
    assert.equal(js.status, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(js.body.toString(), JS);
    assertConsoleHeaders(js, port, 'js');
    // Brotli when the browser prefers it, gzip when that is all it takes.
    const br = await raw(base, '/assets/index-AbC_12-x.js', { headers: { 'accept-encoding': 'br, gzip;q=0.8' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers.vary, 'Accept-Encoding');
    assert.ok(br.body.length < JS.length / 10);
    assert.equal(zlib.brotliDecompressSync(br.body).toString(), JS);
    assertConsoleHeaders(br, port, 'js br');
    const gz = await raw(base, '/assets/index-AbC_12-x.js', { headers: { 'accept-encoding': 'gzip, deflate' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'Accept-Encoding');
    assert.ok(gz.body.length < JS.length / 10);
    assert.equal(zlib.gunzipSync(gz.body).toString(), JS);
    const noGz = await raw(base, '/assets/index-AbC_12-x.js', { headers: { 'accept-encoding': 'gzip;q=0, identity' } });
    assert.equal(noGz.headers['content-encoding'], undefined);

    const expect: Array<[string, string, string]> = [
      ['/assets/index-9fK2LmQp.css', 'text/css; charset=utf-8', 'public, max-age=31536000, immutable'],
      ['/assets/xterm-Q1w2E3r4.woff2', 'font/woff2', 'public, max-age=31536000, immutable'],
      ['/assets/logo.svg', 'image/svg+xml', 'no-cache'],
      ['/favicon.ico', 'image/vnd.microsoft.icon', 'no-cache'],
    ];
    for (const [p, type, cache] of expect) {
      const r = await raw(base, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers['content-type'], type, p);
      assert.equal(r.headers['cache-control'], cache, p);
      assertConsoleHeaders(r, port, p);
    }
    const lm = (await raw(base, '/favicon.ico')).headers['last-modified']!;
    assert.equal((await raw(base, '/favicon.ico', { headers: { 'if-modified-since': lm } })).status, 304);

    for (const p of ['/assets/nope-12345678.js', '/assets/', '/assets', '/assets/.secret', '/robots.txt', '/deep/path/app.js']) {
      const r = await raw(base, p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body.toString(), /<div id="root">/, p);
      assertConsoleHeaders(r, port, p);
    }
  });

  it('refuses directory traversal, encoded or not, and links out of the build', async () => {
    const attempts = [
      '/assets/../../package.json',
      '/assets/../index.html',
      '/../../../../etc/passwd',
      '/assets/%2e%2e/%2e%2e/package.json',
      '/assets/%2E%2E%2F%2E%2E%2Fpackage.json',
      '/assets/..%2f..%2f..%2foutside.txt',
      '/%2e%2e/outside.txt',
      '/assets/..%5c..%5coutside.txt',
      '/assets/..\\..\\outside.txt',
      '/assets/index-AbC_12-x.js%00.png',
      '/assets/%E0%A4%A',
    ];
    for (const p of attempts) {
      const r = await raw(base, p);
      assert.equal(r.status, 400, p);
      assert.doesNotMatch(r.body.toString(), /OUTSIDE|"name"|root:/, p);
      assertConsoleHeaders(r, port, p);
    }
    // Double encoding is a literal name, which does not exist; a link inside
    // the build pointing out of it is not followed.
    for (const p of ['/assets/%252e%252e/%252e%252e/package.json', '/assets/link-AAAAAAAA.js']) {
      const r = await raw(base, p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body.toString(), /OUTSIDE/, p);
    }
  });

  it('leaves the OAuth, sign-in and gateway routes to the web port', async () => {
    const disco = await raw(base, '/.well-known/openid-configuration');
    assert.equal(disco.status, 200);
    assert.equal(JSON.parse(disco.body.toString()).issuer, cp.issuer);
    assert.match(String(disco.headers['content-security-policy']), /default-src 'none'/);
    for (const p of ['/token', '/device', '/interaction/abc', '/auth', '/jwks', '/ws', '/me']) {
      const r = await raw(base, p);
      assert.notEqual(r.body.toString(), INDEX, p);
      assert.doesNotMatch(String(r.headers['content-security-policy']), /script-src 'self'/, p);
    }
  });

  it('answers /healthz and /readyz for load balancers and supervisors (ready: not draining, routes mounted)', async () => {
    for (const [p, body] of [['/healthz', 'ok'], ['/readyz', 'ready']]) {
      const r = await raw(base, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body.toString().trim(), body, p);
      assert.equal(r.headers['cache-control'], 'no-store', p);
    }
  });

  it('/readyz says not ready while the process drains, and a web port not yet mounted says it is starting', async () => {
    let ready = true;
    const web = await startWebServer({ listen: { host: '127.0.0.1', port: 0 }, ready: () => ready, logger: createLogger('web', 'silent') });
    try {
      let r = await raw(web.url, '/files/access');
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '1');
      assert.equal((await raw(web.url, '/readyz')).status, 503, 'nothing mounted yet');
      web.mount([], (_req, res) => res.end('fallback'), []);
      assert.equal((await raw(web.url, '/readyz')).status, 200);
      ready = false;
      r = await raw(web.url, '/readyz');
      assert.equal(r.status, 503);
      assert.equal(r.body.toString().trim(), 'not ready');
      assert.equal((await raw(web.url, '/healthz')).status, 200, 'alive all the same');
    } finally {
      await web.close();
    }
  });

  it('never echoes a hostile Host header into the CSP', async () => {
    const r = await raw(base, '/', { headers: { host: "evil.example; script-src *" } });
    assert.equal(r.status, 200);
    const csp = String(r.headers['content-security-policy']);
    assert.doesNotMatch(csp, /evil|\*/);
    assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${port};`));
    const other = await raw(base, '/', { headers: { host: 'console.example:8443' } });
    assert.match(String(other.headers['content-security-policy']), / ws:\/\/console\.example:8443;/);
  });

  it('answers 503 with a readable page while the console is not built', async () => {
    fs.renameSync(path.join(consoleDir, 'index.html'), path.join(consoleDir, 'index.html.off'));
    try {
      const r = await raw(base, '/');
      assert.equal(r.status, 503);
      assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
      assert.match(r.body.toString(), /not been built[\s\S]*npm run build/);
      assertConsoleHeaders(r, port, '503');
      const share = await raw(base, '/share');
      assert.equal(share.status, 503);
      assert.match(share.body.toString(), /CMDOP_TOKEN=cmdop_shr_/);
    } finally {
      fs.renameSync(path.join(consoleDir, 'index.html.off'), path.join(consoleDir, 'index.html'));
    }
    assert.equal((await raw(base, '/')).status, 200);
  });
});

// ---- browser sign-in: authorization code + PKCE

const b64url = (b: Buffer) => b.toString('base64url');

function pkce() {
  const verifier = b64url(crypto.randomBytes(32));
  return { verifier, challenge: b64url(crypto.createHash('sha256').update(verifier).digest()) };
}

async function postToken(issuer: string, form: Record<string, string>, origin = issuer) {
  const r = await fetch(`${issuer}/token`, {
    method: 'POST',
    // A browser sends Origin on a same-origin POST; the server must accept its own.
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
    body: new URLSearchParams(form).toString(),
  });
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

describe('console sign-in: authorization code + PKCE', () => {
  let c: Cluster;
  let issuer: string;
  let redirectUri: string;
  const password = 'correct horse battery staple';
  before(async () => {
    c = await startCluster();
    issuer = (await c.client.auth.serverInfo()).issuer;
    redirectUri = `${issuer}/callback`;
    await c.client.auth.addUser('alice', { password });
    await c.client.auth.grant('box', 'alice', 'observer');
  });
  after(() => c.stop());

  const authUrl = (p: Record<string, string | undefined>) => {
    const q = new URLSearchParams();
    const all: Record<string, string | undefined> = {
      client_id: 'cmdop-console',
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid offline_access',
      code_challenge_method: 'S256',
      ...p,
    };
    for (const [k, v] of Object.entries(all)) if (v !== undefined) q.set(k, v);
    return `${issuer}/auth?${q}`;
  };

  it('signs in through the sign-in page, gets tokens at /token, uses them on the WebSocket, refreshes with rotation', async () => {
    const b = new Browser();
    const { verifier, challenge } = pkce();
    const state = b64url(crypto.randomBytes(16));
    const login = await b.follow(authUrl({ code_challenge: challenge, state }));
    assert.match(login.url, /\/interaction\/[A-Za-z0-9_-]+$/);
    assert.match(login.html, /<h1>Sign in<\/h1>/);
    assert.match(login.html, /CMDOP console/);
    assert.match(login.html, new RegExp(`Returns to</dt><dd>${issuer.replace(/[.]/g, '\\.')}<`));
    assert.doesNotMatch(login.html, /class="user-code"/);

    const wrong = await b.follow(login.url, { form: { username: 'alice', password: 'nope' } });
    assert.match(wrong.html, /Wrong user name or password/);
    const done = await b.follow(login.url, { form: { username: 'alice', password } });
    const back = new URL(done.url);
    assert.equal(`${back.origin}${back.pathname}`, redirectUri, `landed on ${done.url}`);
    assert.equal(back.searchParams.get('state'), state);
    assert.equal(back.searchParams.get('iss'), issuer);
    const code = back.searchParams.get('code')!;
    assert.ok(code);

    const tok = await postToken(issuer, { grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: 'cmdop-console', code_verifier: verifier });
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal(tok.body.token_type, 'Bearer');
    assert.ok(tok.body.access_token && tok.body.refresh_token && tok.body.id_token);
    assert.ok(tok.body.expires_in > 0);

    const wsUrl = issuer.replace(/^http/, 'ws') + '/ws';
    const conn = new GatewayConnection(wsUrl, tok.body.access_token, Impl);
    await conn.opened;
    assert.equal((await conn.call('whoAmI', {})).user, 'alice');
    const machines = await conn.call('listMachines', {});
    assert.deepEqual(machines.machines.map((m) => m.name), ['box']);
    conn.close();

    // Another origin may not use the console's tokens at /token.
    const foreign = await postToken(issuer, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: 'cmdop-console' }, 'http://evil.example');
    assert.equal(foreign.status, 400);
    assert.match(foreign.body.error_description, /origin http:\/\/evil\.example not allowed/);
    // Refresh rotates; the old refresh token is then spent.
    const fresh = await postToken(issuer, { grant_type: 'refresh_token', refresh_token: tok.body.refresh_token, client_id: 'cmdop-console' });
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.notEqual(fresh.body.refresh_token, tok.body.refresh_token);
    const c2 = new GatewayConnection(wsUrl, fresh.body.access_token, Impl);
    await c2.opened;
    assert.equal((await c2.call('whoAmI', {})).user, 'alice');
    c2.close();
    // Revocation from the page (same origin) works.
    const rev = await fetch(`${issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: issuer },
      body: new URLSearchParams({ token: fresh.body.refresh_token, client_id: 'cmdop-console' }).toString(),
    });
    assert.equal(rev.status, 200);
    const dead = await postToken(issuer, { grant_type: 'refresh_token', refresh_token: fresh.body.refresh_token, client_id: 'cmdop-console' });
    assert.equal(dead.body.error, 'invalid_grant');

    // The same browser, still signed in at the server, gets a new code
    // without the form; the code needs its own verifier.
    const other = pkce();
    const sso = await b.follow(authUrl({ code_challenge: other.challenge, state: 's2' }));
    const code2 = new URL(sso.url).searchParams.get('code');
    assert.ok(code2, `expected a code, got ${sso.url}`);
    const badVerifier = await postToken(issuer, { grant_type: 'authorization_code', code: code2, redirect_uri: redirectUri, client_id: 'cmdop-console', code_verifier: verifier });
    assert.equal(badVerifier.body.error, 'invalid_grant');
    const exchange = () =>
      postToken(issuer, { grant_type: 'authorization_code', code: code2, redirect_uri: redirectUri, client_id: 'cmdop-console', code_verifier: other.verifier });
    const tok2 = await exchange();
    assert.equal(tok2.status, 200, JSON.stringify(tok2.body));
    const c3 = new GatewayConnection(wsUrl, tok2.body.access_token, Impl);
    await c3.opened;
    c3.close();
    // A code is spent once; replaying it revokes what it issued.
    assert.equal((await exchange()).body.error, 'invalid_grant');
    await assert.rejects(new GatewayConnection(wsUrl, tok2.body.access_token, Impl).opened);
  });

  it('refuses a redirect_uri that is not the console callback, without redirecting', async () => {
    const { challenge } = pkce();
    for (const uri of ['http://evil.example/callback', `${issuer}/callback/x`, `${issuer}/`, `${issuer.replace(/:(\d+)$/, (_, p) => `:${Number(p) + 1}`)}/callback`]) {
      const r = await new Browser().request(authUrl({ code_challenge: challenge, state: 's', redirect_uri: uri }));
      assert.equal(r.status, 400, uri);
      assert.equal(r.headers.get('location'), null, uri);
      assert.match(await r.text(), /redirect_uri did not match/, uri);
    }
  });

  it('refuses requests without PKCE, with plain PKCE, or from the CLI client', async () => {
    const noPkce = await new Browser().request(authUrl({ state: 's', code_challenge_method: undefined }));
    assert.ok(noPkce.status >= 300 && noPkce.status < 400, `status ${noPkce.status}`);
    const loc = new URL(noPkce.headers.get('location')!);
    assert.equal(`${loc.origin}${loc.pathname}`, redirectUri);
    assert.equal(loc.searchParams.get('error'), 'invalid_request');
    assert.match(loc.searchParams.get('error_description')!, /PKCE/);
    assert.equal(loc.searchParams.get('code'), null);

    const plain = await new Browser().request(authUrl({ state: 's', code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' }));
    const ploc = new URL(plain.headers.get('location')!);
    assert.equal(ploc.searchParams.get('error'), 'invalid_request');
    assert.match(ploc.searchParams.get('error_description')!, /code_challenge_method/);

    const cli = await new Browser().request(authUrl({ client_id: 'cmdop-cli', code_challenge: pkce().challenge, state: 's' }));
    assert.equal(cli.status, 400);
    assert.equal(cli.headers.get('location'), null);
  });

  it('Cancel on the sign-in page sends the console back with access_denied', async () => {
    const b = new Browser();
    const login = await b.follow(authUrl({ code_challenge: pkce().challenge, state: 'st' }));
    const done = await b.follow(login.url, { form: { deny: 'yes' } });
    const back = new URL(done.url);
    assert.equal(`${back.origin}${back.pathname}`, redirectUri);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), 'st');
  });
});

// ---- cmdop up

describe('cmdop up', () => {
  it('prints a console link whose token signs in as admin on the gateway; Ctrl-C revokes it', async () => {
    const dir = tempDir('cmdop-up-');
    const up = spawn(process.execPath, [CLI, 'up', '--listen', '127.0.0.1:0', '--data-dir', path.join(dir, 'cp'), '--name', 'upbox'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cliEnv(undefined, { CMDOP_AGENT_DIR: path.join(dir, 'agent') }),
    });
    try {
      const [, url, token] = await waitForLine(up, /Console: (http:\/\/127\.0\.0\.1:\d+)\/#token=(cmdop_[\w-]+)\n/, 30_000);
      const conn = new GatewayConnection(`${url.replace(/^http/, 'ws')}/ws`, token, Impl);
      await conn.opened;
      assert.equal((await conn.call('whoAmI', {})).user, 'admin');
      conn.close();
      const exited = new Promise((r) => up.once('exit', r));
      up.kill('SIGINT');
      await exited;
      const db = new Database(path.join(dir, 'cp', 'cmdop.sqlite'), { readonly: true });
      const row = db.prepare("SELECT expires_ms - created_ms AS life, revoked_ms FROM tokens WHERE name = 'console (cmdop up)'").get() as { life: number; revoked_ms: number };
      db.close();
      assert.equal(row.life, 12 * 3600 * 1000);
      assert.ok(row.revoked_ms > 0, 'revoked when up stopped');
    } finally {
      // On failure: Ctrl-C first, so `up` stops its agent (which shares its stderr pipe).
      if (up.exitCode === null && up.signalCode === null) {
        const gone = new Promise((r) => up.once('exit', r));
        up.kill('SIGINT');
        const t = setTimeout(() => up.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
      up.stdout.destroy();
      up.stderr.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
