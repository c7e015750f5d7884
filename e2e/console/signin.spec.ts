// One sign-in for the console's tabs of a browser: Chromium, pages of one
// browser context, a real control plane (its
// OAuth server) and agent. A user signs in once (code + PKCE); a second tab
// and a pasted /watch URL need no sign-in (a live tab hands it over). Both
// tabs made to refresh at the same moment send exactly one refresh request
// (Web Locks; the refresh token rotates and is single-use) and both keep
// working, and the next refresh from the other tab works too (a second use
// of one refresh token would have revoked the grant). Signing out in one tab
// signs out the other, and a tab opened after that asks to sign in.
// Serial: the tests go on from each other's sign-in and tabs.
import assert from 'node:assert/strict';
import type { BrowserContext, Page, Request } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'signin' } });

const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  connected: `[data-testid=machine-row][data-machine="box"] [data-testid=machine-state][data-state=CONNECTED]`,
  /** The page's own connection is up: the control plane took its token. */
  open: '[data-testid=connection-status][data-status=open]',
};

interface Auth {
  accessToken: string;
  refreshToken?: string;
  expiresAtMs?: number;
  sid: string;
  gen: number;
}
const auth = (p: Page) => p.evaluate(() => JSON.parse(sessionStorage.getItem('cmdop.auth') ?? 'null') as Auth | null);
const screen = (p: Page, id: string) => p.evaluate((x) => (globalThis as any).__cmdop.screenText(x) as string, id);

/** Makes the page's access token due for a refresh (it is refreshed when the page next connects). */
const expire = (p: Page) =>
  p.evaluate(() => {
    const a = JSON.parse(sessionStorage.getItem('cmdop.auth')!);
    a.expiresAtMs = Date.now();
    sessionStorage.setItem('cmdop.auth', JSON.stringify(a));
  });

const isRefresh = (r: Request) =>
  r.method() === 'POST' && new URL(r.url()).pathname === '/token' && new URLSearchParams(r.postData() ?? '').get('grant_type') === 'refresh_token';

test.describe('browser console: one sign-in for the tabs of a browser', () => {
  let c: Cluster;
  let context: BrowserContext;
  let web: string;
  let one: Page;
  let two: Page;
  const pageErrors: string[] = [];
  const watch = (p: Page) => {
    // A refused request is logged by Chromium as an error too: not ours to count.
    p.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    return p;
  };
  let refreshes = 0;

  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    web = (await c.client.auth.serverInfo()).webUrl;
    await c.client.auth.addUser('alice', { password: 'alice-password-1' });
    await c.client.auth.grant('box', 'alice', 'operator');
    context = await consoleContext(browser);
    context.on('request', (r) => isRefresh(r) && refreshes++);
  });
  test.afterAll(async () => {
    await context?.close();
  });

  test('signed in once, a second tab and a pasted /watch URL need no sign-in', async () => {
    one = watch(await context.newPage());
    await one.goto(`${web}/`);
    await one.click('[data-testid=sign-in]');
    await one.waitForURL(/\/interaction\//, { timeout: 15_000 });
    await one.fill('input[name=username]', 'alice');
    await one.fill('input[name=password]', 'alice-password-1');
    await one.click('button[type=submit]:not([name=deny])');
    await one.waitForSelector('[data-testid=identity]:text("alice")', { timeout: 15_000 });
    await one.waitForSelector(sel.connected);
    const first = (await auth(one))!;
    assert.ok(first.refreshToken, 'an OAuth sign-in, with its rotating refresh token');

    two = watch(await context.newPage());
    await two.goto(`${web}/`);
    await two.waitForSelector('[data-testid=identity]:text("alice")', { timeout: 15_000 });
    await two.waitForSelector(sel.connected);
    assert.equal(await two.locator('[data-testid=signin-view]').count(), 0);
    const handed = (await auth(two))!;
    assert.equal(handed.sid, first.sid, 'the same sign-in');
    assert.equal(handed.refreshToken, first.refreshToken);
    assert.equal(await two.evaluate(() => localStorage.getItem('cmdop.auth')), null, 'nothing of it on disk');

    // A /watch URL pasted into a new tab: straight to the watch-only view of a terminal of tab one.
    await one.click(`${sel.row('box')} [data-testid=open-terminal]`);
    const id = (await eventually(async () => (await one.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]))[0], 10_000, 'a tab'))!;
    const pasted = watch(await context.newPage());
    try {
      await pasted.goto(`${web}/watch?machine=box&terminal=${id}`);
      await pasted.waitForSelector('[data-testid=observer-banner]', { timeout: 15_000 });
      await one.click(`[data-testid=terminal][data-terminal-id="${id}"]`);
      await one.keyboard.type('echo pasted-$((5*5))\n');
      await eventually(async () => /^pasted-25$/m.test(await screen(pasted, id)), 10_000, 'the watch view shows the output');
    } finally {
      await pasted.close();
    }
  });

  test('two tabs due for a refresh at the same moment: one refresh request, both keep working, and the next refresh works', async () => {
    const before = (await auth(one))!;
    // The token endpoint answers slowly, so the second tab asks while the first tab's refresh is in flight.
    await context.route('**/token', async (route) => {
      if (isRefresh(route.request())) await new Promise((r) => setTimeout(r, 800));
      await route.continue();
    });
    try {
      await expire(one);
      await expire(two);
      refreshes = 0;
      await Promise.all([one.reload(), two.reload()]);
      await Promise.all([one.waitForSelector(sel.open, { timeout: 15_000 }), two.waitForSelector(sel.open, { timeout: 15_000 })]);
      await new Promise((r) => setTimeout(r, 1500)); // a second refresh, if one were coming
      assert.equal(refreshes, 1, 'exactly one refresh request left the browser');
    } finally {
      await context.unroute('**/token');
    }
    const [a1, a2] = [(await auth(one))!, (await auth(two))!];
    assert.equal(a1.gen, before.gen + 1);
    assert.deepEqual(a2, a1, 'both tabs hold the new tokens');
    assert.notEqual(a1.refreshToken, before.refreshToken, 'the refresh token rotated');
    assert.ok(a1.expiresAtMs! > Date.now() + 60_000);
    // Both work: each lists the machine, and tab one's terminal (re-attached after the reload) runs what is typed.
    for (const p of [one, two]) await p.waitForSelector(sel.connected, { state: 'attached', timeout: 10_000 });
    const id = (await one.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]))[0];
    await one.click(`[data-testid=terminal][data-terminal-id="${id}"]`);
    await one.keyboard.type('echo refreshed-$((6*6))\n');
    await eventually(async () => /^refreshed-36$/m.test(await screen(one, id)), 10_000, 'the terminal answers after the refresh');

    // Tab two refreshes alone, with the token tab one got: accepted (a reused one would have revoked the sign-in), and tab one is told.
    await expire(two);
    await two.reload();
    await two.waitForSelector(sel.open, { timeout: 15_000 });
    assert.equal(refreshes, 2);
    const a3 = (await auth(two))!;
    assert.equal(a3.gen, a1.gen + 1);
    await eventually(async () => (await auth(one))?.refreshToken === a3.refreshToken, 5000, 'tab one holds the newest refresh token');
  });

  test('signing out in one tab signs out the other; a tab opened afterwards asks to sign in', async () => {
    const last = (await auth(two))!;
    await one.click('[data-testid=sign-out]');
    await two.waitForSelector('[data-testid=signin-message]:text("Signed out")', { timeout: 10_000 });
    assert.equal(await auth(two), null);
    await one.waitForSelector('[data-testid=sign-in]', { timeout: 10_000 });
    // Revoked at the server, not just forgotten.
    const r = await fetch(`${web}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: last.refreshToken!, client_id: 'cmdop-console' }),
    });
    assert.equal(r.status, 400, 'the refresh token no longer works');
    const three = watch(await context.newPage());
    try {
      await three.goto(`${web}/`);
      await three.waitForSelector('[data-testid=sign-in]', { timeout: 10_000 });
      assert.equal(await auth(three), null);
    } finally {
      await three.close();
    }
  });

  test('ran without an error in the pages', () => assert.deepEqual(pageErrors, []));
});
