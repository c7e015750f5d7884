// The browser console end to end: Debian's Chromium (playwright-core) on the
// console the control plane serves, a real control plane and agent behind
// it. What a person does: open the console with a token, see the machine,
// open tabs and type, watch a terminal read-only (and fail to type into it),
// open a share link, paste 1 MB, flood the screen and stop it with Ctrl-C,
// and see a frozen machine's grace period. Screenshots on failure.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Page } from 'playwright-core';
import { Cluster, eventually, startCluster } from './helpers/cluster';
import { launchChromium, type Browser } from './helpers/chromium';
import { CutProxy } from './helpers/proxy';

/** The console's read-only test hook (app/renderer/src/testHook.ts), read from the page. */
const hook = {
  terminals: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]),
  screen: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.screenText(x) as string, id),
  bytes: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.bytes(x) as number, id),
  written: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.written(x) as number, id),
  tabs: (page: Page) =>
    page.evaluate(() => (globalThis as any).__cmdop.tabs() as { key: string; terminalId: string; mode: 'operator' | 'observer'; renderer: string }[]),
};

/** Waits until the terminal's screen matches; the failure shows what the screen had. */
async function waitScreen(page: Page, id: string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  let last = '';
  try {
    await eventually(async () => re.test((last = await hook.screen(page, id))), timeoutMs, `${re} on ${id}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the screen shows:\n${last.split('\n').slice(-15).join('\n')}`);
  }
  return last;
}

const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  tab: (id: string, mode = 'operator') => `[data-testid=tab][data-terminal-id="${id}"][data-mode=${mode}]`,
  term: (id: string, mode = 'operator') => `[data-testid=terminal][data-terminal-id="${id}"][data-mode=${mode}]`,
  pane: (key: string) => `[data-testid=terminal-pane][data-tab-key="${key}"]`,
};

/** Activates the tab and types into its terminal as keystrokes. */
async function typeInto(page: Page, id: string, text: string, mode = 'operator'): Promise<void> {
  if ((await page.locator(sel.tab(id, mode)).count()) > 0) await page.click(sel.tab(id, mode));
  await page.click(sel.term(id, mode));
  await page.keyboard.type(text);
}

/** Opens a shell from the machines view; returns its terminal id once attached and prompting. */
async function openTab(page: Page, machine = 'box'): Promise<string> {
  const before = await hook.terminals(page);
  await page.click('[data-testid=machines-tab]');
  await page.click(`${sel.row(machine)} [data-testid=open-terminal]`);
  const id = (await eventually(async () => (await hook.terminals(page)).find((t) => !before.includes(t)), 10_000, 'a new attached tab'))!;
  await waitScreen(page, id, /\S/); // the prompt
  return id;
}

/** Input the control plane refused on `terminalId` since `sinceMs` (its refusals are audited). */
async function refusedInputs(c: Cluster, terminalId: string, sinceMs: number) {
  const entries = await c.client.auth.audit({ machine: 'box', sinceMs });
  return entries.filter((e) => e.action === 'input' && !e.ok && e.terminalId === terminalId).map((e) => `${e.actor}: ${e.detail}`);
}

/** Runs `script` on the machine through the SDK (not through the console). */
async function sh(c: Cluster, script: string): Promise<string> {
  const r = await c.client.terminal.execute(['sh', '-c', script]);
  return r.stdout;
}

describe('browser console', () => {
  let c: Cluster;
  let b: Browser;
  let web: string;
  let page: Page;
  let one = '';
  let two = '';
  const pageErrors: string[] = [];

  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    web = (await c.client.auth.serverInfo()).webUrl;
    b = await launchChromium();
    page = await b.newPage();
    // Anything the page logs as an error (a CSP violation, an uncaught exception) fails the last test.
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  });
  after(async () => {
    await b?.close();
    await c?.stop();
  });

  it('opens with the token from the URL fragment, drops it from the URL, and shows box CONNECTED', () =>
    b.step('token-and-machines', async () => {
      await page.goto(`${web}/#token=${c.token}`);
      await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
      assert.equal(new URL(page.url()).hash, '', 'the token is gone from the address bar');
      assert.equal(await page.evaluate(() => JSON.parse(sessionStorage.getItem('cmdop.auth') ?? '{}').accessToken), c.token);
      const row = page.locator(sel.row('box'));
      assert.match((await row.textContent()) ?? '', /linux\/x64|linux\/arm64/);
      assert.ok(await row.locator('[data-testid=open-terminal]').isEnabled());
      // The agent's first heartbeat is in the sparklines.
      await page.waitForSelector(`${sel.row('box')} [data-testid=metric-cpu]:not([data-samples="0"])`, { timeout: 10_000 });
      assert.equal(await page.locator('[data-testid=connection-status]').getAttribute('data-status'), 'open');
    }));

  it('without a token offers sign-in: authorization code with PKCE (S256) on the same origin', () =>
    b.step('sign-in', async () => {
      // A browser of its own: in this one a live tab would hand over its sign-in (test/console-signin.test.ts).
      const lone = await launchChromium();
      const p = await lone.newPage();
      try {
        await p.goto(`${web}/`);
        await p.waitForSelector('[data-testid=sign-in]');
        const [req] = await Promise.all([p.waitForRequest((r) => new URL(r.url()).pathname === '/auth'), p.click('[data-testid=sign-in]')]);
        const q = new URL(req.url()).searchParams;
        assert.equal(new URL(req.url()).origin, new URL(web).origin);
        assert.equal(q.get('client_id'), 'cmdop-console');
        assert.equal(q.get('response_type'), 'code');
        assert.equal(q.get('redirect_uri'), `${new URL(web).origin}/callback`);
        assert.equal(q.get('scope'), 'openid offline_access');
        assert.equal(q.get('code_challenge_method'), 'S256');
        assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
        assert.ok((q.get('state') ?? '').length >= 16);
        // A token the control plane refuses leads back to sign-in, saying why.
        await p.goto(`${web}/#token=cmdop_pat_${'x'.repeat(43)}`);
        await p.waitForSelector('[data-testid=signin-message]', { timeout: 10_000 });
        assert.match((await p.locator('[data-testid=signin-message]').textContent()) ?? '', /refused this token/);
      } finally {
        await lone.close();
      }
    }));

  it('signs a user in through the sign-in page (code + PKCE) and shows what they may reach', () =>
    b.step('oauth-sign-in', async () => {
      await c.client.auth.addUser('alice', { password: 'alice-password-1' });
      await c.client.auth.grant('box', 'alice', 'observer');
      // A browser of its own, where no live tab hands over a sign-in.
      const lone = await launchChromium();
      const p = await lone.newPage();
      try {
        await p.goto(`${web}/`);
        await p.click('[data-testid=sign-in]');
        await p.waitForURL(/\/interaction\//, { timeout: 15_000 });
        await p.fill('input[name=username]', 'alice');
        await p.fill('input[name=password]', 'alice-password-1');
        await p.click('button[type=submit]:not([name=deny])');
        await p.waitForSelector('[data-testid=identity]:text("alice")', { timeout: 15_000 });
        assert.equal(new URL(p.url()).pathname, '/', 'back from /callback, the code gone from the URL');
        assert.equal(new URL(p.url()).search, '');
        const auth = await p.evaluate(() => JSON.parse(sessionStorage.getItem('cmdop.auth') ?? '{}'));
        assert.equal(auth.source, 'oauth');
        assert.ok(auth.accessToken && auth.refreshToken, 'an access token and a refresh token');
        await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`);
        // An access token about to end is refreshed (the refresh token rotates) when the page connects.
        await p.evaluate(() => {
          const a = JSON.parse(sessionStorage.getItem('cmdop.auth')!);
          a.expiresAtMs = Date.now();
          sessionStorage.setItem('cmdop.auth', JSON.stringify(a));
        });
        await p.reload();
        await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`);
        const renewed = await p.evaluate(() => JSON.parse(sessionStorage.getItem('cmdop.auth') ?? '{}'));
        assert.notEqual(renewed.accessToken, auth.accessToken);
        assert.notEqual(renewed.refreshToken, auth.refreshToken);
        assert.ok(renewed.expiresAtMs > Date.now() + 60_000);
        // Signing out revokes the refresh token and leads back to sign-in.
        await p.click('[data-testid=sign-out]');
        await p.waitForSelector('[data-testid=sign-in]');
        const r = await fetch(`${web}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: renewed.refreshToken, client_id: 'cmdop-console' }),
        });
        assert.equal(r.status, 400, 'the refresh token no longer works');
      } finally {
        await lone.close();
      }
    }));

  it('opens two tabs; what is typed into each shows its own output', () =>
    b.step('two-tabs', async () => {
      one = await openTab(page);
      await typeInto(page, one, 'echo one-$((1+1))\n');
      await waitScreen(page, one, /^one-2$/m);
      two = await openTab(page);
      assert.notEqual(one, two);
      await typeInto(page, two, 'echo two-$((2+2))\n');
      await waitScreen(page, two, /^two-4$/m);
      assert.doesNotMatch(await hook.screen(page, one), /two-/);
      assert.doesNotMatch(await hook.screen(page, two), /one-/);
      // The PTY has the size the window gave the terminal, not a default.
      await typeInto(page, one, 'echo "size $(stty size)"\n');
      const screen = await waitScreen(page, one, /^size \d+ \d+$/m);
      const [rows, cols] = screen.match(/^size (\d+) (\d+)$/m)!.slice(1).map(Number);
      assert.ok(cols > 100 && rows > 20, `PTY is ${cols}x${rows}`);
      assert.deepEqual(await hook.terminals(page), [one, two]);
    }));

  it('a watch-only view shows the same bytes and sends nothing that is typed into it; the operator tab counts it', () =>
    b.step('observer', async () => {
      await page.click('[data-testid=machines-tab]');
      await page.click(`${sel.row('box')} [data-testid=machine-terminal][data-terminal-id="${one}"] [data-testid=watch-terminal-tab]`);
      await page.waitForSelector(sel.tab(one, 'observer'));
      const watchKey = (await hook.tabs(page)).find((t) => t.terminalId === one && t.mode === 'observer')!.key;
      assert.ok(await page.locator(`${sel.pane(watchKey)} [data-testid=observer-banner]`).isVisible(), 'clearly marked watch-only');
      await waitScreen(page, watchKey, /^one-2$/m); // the current screen, for a late joiner
      // Live bytes reach both.
      await typeInto(page, one, 'echo live-$((3*3))\n');
      await waitScreen(page, one, /^live-9$/m);
      await waitScreen(page, watchKey, /^live-9$/m);
      // The operator's tab shows one viewer (from the 2 s machine poll).
      await page.waitForSelector(`${sel.tab(one)} [data-testid=viewer-count][data-count="1"]`, { timeout: 6000 });
      // Typing into the watch-only view reaches nothing.
      const marker = `/tmp/cmdop-observer-${crypto.randomBytes(4).toString('hex')}`;
      await page.click(sel.tab(one, 'observer'));
      await page.click(sel.term(one, 'observer'));
      const before = await hook.bytes(page, watchKey);
      const typedAt = Date.now();
      await page.keyboard.type(`touch ${marker}\n`);
      await page.keyboard.press('Control+C');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await sh(c, `test -e ${marker} && echo present || echo absent`)).trim(), 'absent');
      // Not refused by the control plane either: the view never sent anything (its refusals are audited).
      assert.deepEqual(await refusedInputs(c, one, typedAt), [], 'the watch-only view sent no input at all');
      assert.doesNotMatch(await hook.screen(page, one), /cmdop-observer-/);
      assert.equal(await hook.bytes(page, watchKey), before, 'no echo: nothing reached the PTY');
      // Still live after the attempt.
      await typeInto(page, one, 'echo still-$((4*4))\n');
      await waitScreen(page, watchKey, /^still-16$/m);
      await page.click(`${sel.tab(one, 'observer')} [data-testid=tab-close]`);
      await page.waitForSelector(`${sel.tab(one)} [data-testid=viewer-count][data-count="0"]`, { state: 'attached', timeout: 6000 });
    }));

  it('Watch opens a window of its own: marked watch-only, the same bytes, no input path, counted on the operator tab', () =>
    b.step('watch-window', async () => {
      await page.click('[data-testid=machines-tab]');
      const [win] = await Promise.all([
        page.waitForEvent('popup'),
        page.click(`${sel.row('box')} [data-testid=machine-terminal][data-terminal-id="${one}"] [data-testid=watch-terminal]`),
      ]);
      try {
        win.on('pageerror', (e) => pageErrors.push(`watch window: ${String(e)}`));
        assert.equal(new URL(win.url()).pathname, '/watch');
        await win.waitForSelector('[data-testid=observer-banner]', { timeout: 15_000 });
        assert.equal(await win.locator('[data-testid=machines-tab]').count(), 0, 'nothing but the one terminal');
        assert.deepEqual((await hook.tabs(win)).map((t) => [t.terminalId, t.mode]), [[one, 'observer']]);
        await waitScreen(win, one, /^still-16$/m); // the current screen, for a late joiner
        assert.equal((await hook.tabs(page)).filter((t) => t.mode === 'observer').length, 0, 'no tab was opened in the console');
        await typeInto(page, one, 'echo window-$((6*7))\n');
        await waitScreen(win, one, /^window-42$/m);
        await page.waitForSelector(`${sel.tab(one)} [data-testid=viewer-count][data-count="1"]`, { timeout: 6000 });
        // Asking again brings the same window forward instead of opening another.
        await page.click('[data-testid=machines-tab]');
        await page.click(`${sel.row('box')} [data-testid=machine-terminal][data-terminal-id="${one}"] [data-testid=watch-terminal]`);
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(b.context.pages().filter((p) => new URL(p.url()).pathname === '/watch').length, 1);
        // Typing into the window reaches nothing.
        const marker = `/tmp/cmdop-window-${crypto.randomBytes(4).toString('hex')}`;
        const before = await hook.bytes(win, one);
        const typedAt = Date.now();
        await win.click('[data-testid=terminal]');
        await win.keyboard.type(`touch ${marker}\n`);
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal((await sh(c, `test -e ${marker} && echo present || echo absent`)).trim(), 'absent');
        assert.deepEqual(await refusedInputs(c, one, typedAt), [], 'the watch window sent no input at all');
        assert.equal(await hook.bytes(win, one), before, 'no echo: nothing reached the PTY');
      } finally {
        await win.close();
      }
      await page.waitForSelector(`${sel.tab(one)} [data-testid=viewer-count][data-count="0"]`, { state: 'attached', timeout: 6000 });
    }));

  it('a reload brings the tabs back in their order, with their names, screens and the active one', () =>
    b.step('reload', async () => {
      await page.dblclick(`${sel.tab(two)} [data-testid=tab-title]`);
      await page.fill('[data-testid=tab-rename]', 'build box');
      await page.keyboard.press('Enter');
      await typeInto(page, one, 'echo before-reload-$((2*5))\n');
      await waitScreen(page, one, /^before-reload-10$/m);
      await page.reload();
      await eventually(async () => (await hook.terminals(page)).length === 2, 15_000, 'two tabs back');
      assert.deepEqual(await hook.terminals(page), [one, two]);
      assert.deepEqual((await hook.tabs(page)).map((t) => t.mode), ['operator', 'operator']);
      assert.equal(await page.locator(`${sel.tab(two)} [data-testid=tab-title]`).textContent(), 'build box');
      assert.equal(await page.locator(sel.tab(one)).getAttribute('aria-selected'), 'true', 'the active tab is still active');
      await waitScreen(page, one, /^before-reload-10$/m); // the screen as it was
      await typeInto(page, one, 'echo after-reload-$((8+1))\n');
      await waitScreen(page, one, /^after-reload-9$/m);
      // Still one terminal each: the reload re-attached, it opened nothing new.
      const operators = async () => {
        const m = (await c.client.machines.list()).find((x) => x.name === 'box')!;
        return [one, two].map((id) => m.terminals.find((t) => t.terminalId === id)?.operators);
      };
      await eventually(async () => (await operators()).every((n) => n === 1), 5000, 'one operator each');
      assert.equal((await c.client.machines.list()).find((x) => x.name === 'box')!.terminals.filter((t) => !t.exited).length, 2);
    }));

  it('a saved tab list that is corrupt or names bad targets is ignored, not attached', () =>
    b.step('bad-saved-tabs', async () => {
      const p = await b.newPage();
      const errors: string[] = [];
      p.on('pageerror', (e) => errors.push(String(e)));
      try {
        await p.goto(`${web}/#token=${c.token}`);
        await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
        for (const bad of ['{not json', JSON.stringify({ tabs: [{ machine: '../etc', terminalId: 'x', mode: 1 }, 5, { machine: 'box', terminalId: 'a b', mode: 1 }], active: 9 })]) {
          await p.evaluate((v) => sessionStorage.setItem('cmdop.tabs', v), bad);
          await p.reload();
          await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
          assert.deepEqual(await hook.tabs(p), []);
          assert.equal(await p.locator('[data-testid=machines-tab]').getAttribute('aria-selected'), 'true');
        }
        assert.deepEqual(errors, []);
      } finally {
        await p.close();
      }
    }));

  it('the WebGL renderer draws when chosen, and a lost WebGL context falls back to the DOM renderer without losing output', () =>
    b.step('webgl', async () => {
      const p = await b.newPage();
      try {
        await p.goto(`${web}/#token=${c.token}`);
        await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
        await p.evaluate(() => localStorage.setItem('cmdop.settings', JSON.stringify({ ...JSON.parse(localStorage.getItem('cmdop.settings') ?? '{}'), renderer: 'webgl' })));
        await p.reload(); // settings are read when the page loads
        await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
        const id = await openTab(p);
        const tab = () => hook.tabs(p).then((ts) => ts.find((t) => t.terminalId === id)!);
        assert.equal((await tab()).renderer, 'webgl', 'software WebGL was asked for and is there');
        assert.ok((await p.locator(`${sel.term(id)} canvas`).count()) > 0, 'drawn on a canvas');
        await typeInto(p, id, 'echo gl-$((20+1))\n');
        await waitScreen(p, id, /^gl-21$/m);
        // The GPU goes away (driver reset, too many contexts).
        const lost = await p.evaluate((sel) => {
          let n = 0;
          for (const cv of Array.from(document.querySelectorAll<HTMLCanvasElement>(`${sel} canvas`))) {
            const gl = cv.getContext('webgl2');
            const ext = gl?.getExtension('WEBGL_lose_context');
            if (ext) (ext.loseContext(), n++);
          }
          return n;
        }, sel.term(id));
        assert.ok(lost > 0, 'a WebGL context to lose');
        await eventually(async () => (await tab()).renderer === 'dom', 15_000, 'back to the DOM renderer');
        await typeInto(p, id, 'echo dom-$((20+2))\n');
        await waitScreen(p, id, /^dom-22$/m);
        assert.match(await hook.screen(p, id), /^gl-21$/m, 'the screen from before the loss is still there');
      } finally {
        await p.evaluate(() => localStorage.setItem('cmdop.settings', JSON.stringify({ ...JSON.parse(localStorage.getItem('cmdop.settings') ?? '{}'), renderer: 'auto' })));
        await p.close();
      }
    }));

  it('a share link opens straight into the watch-only view with no other token', () =>
    b.step('share-link', async () => {
      const share = await c.client.auth.share('box', one, 600);
      assert.match(share.url, /\/share#cmdop_shr_/);
      const p = await b.newPage();
      try {
        await p.goto(share.url);
        await p.waitForSelector('[data-testid=observer-banner]', { timeout: 15_000 });
        assert.equal(new URL(p.url()).hash, '', 'the share token is gone from the address bar');
        assert.equal(await p.evaluate(() => sessionStorage.getItem('cmdop.auth')), null, 'no other token');
        assert.equal(await p.locator('[data-testid=machines-tab]').count(), 0);
        assert.deepEqual(await hook.terminals(p), [one]);
        await waitScreen(p, one, /^still-16$/m);
        await typeInto(page, one, 'echo shared-$((5+5))\n');
        await waitScreen(p, one, /^shared-10$/m);
        const marker = `/tmp/cmdop-share-${crypto.randomBytes(4).toString('hex')}`;
        const typedAt = Date.now();
        await p.click('[data-testid=terminal]');
        await p.keyboard.type(`touch ${marker}\n`);
        await new Promise((r) => setTimeout(r, 1000));
        assert.equal((await sh(c, `test -e ${marker} && echo present || echo absent`)).trim(), 'absent');
        assert.deepEqual(await refusedInputs(c, one, typedAt), [], 'the share view sent no input at all');
        // Revoking the link ends the view, visibly.
        await c.client.auth.revokeToken(share.info!.id);
        await p.waitForSelector('[data-testid=final-banner]', { timeout: 5000 });
        assert.match((await p.locator('[data-testid=final-banner]').textContent()) ?? '', /revoked/);
      } finally {
        await p.close();
      }
    }));

  it('a 1 MB paste arrives whole and in order, in pieces of at most 64 KiB', () =>
    b.step('paste', async () => {
      // 16384 lines of 63 printable characters: a canonical-mode tty keeps lines under 4096 bytes.
      const rnd = crypto.randomBytes(16384 * 63);
      const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
      let text = '';
      for (let i = 0; i < rnd.length; i++) {
        text += alphabet[rnd[i] % alphabet.length];
        if (i % 63 === 62) text += '\n';
      }
      assert.equal(text.length, 1024 * 1024);
      const file = `/tmp/cmdop-paste-${crypto.randomBytes(4).toString('hex')}`;
      const since = Date.now();
      await typeInto(page, two, `stty -echo; cat > ${file}; stty echo; echo pasted-$((6+6))\n`);
      await new Promise((r) => setTimeout(r, 300));
      // The browser's own paste path: a paste event on xterm's textarea.
      const tabKey = (await hook.tabs(page)).find((t) => t.terminalId === two)!.key;
      await page.evaluate(
        ({ pane, text }) => {
          const ta = document.querySelector(`${pane} textarea`) as HTMLTextAreaElement;
          const dt = new DataTransfer();
          dt.setData('text/plain', text);
          ta.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
        },
        { pane: sel.pane(tabKey), text },
      );
      await page.keyboard.press('Control+D'); // end of cat's input, queued behind the paste
      await waitScreen(page, two, /^pasted-12$/m, 60_000);
      const [size, sum] = (await sh(c, `wc -c < ${file}; sha256sum < ${file}`)).trim().split('\n');
      assert.equal(Number(size), text.length);
      assert.equal(sum.split(' ')[0], crypto.createHash('sha256').update(text).digest('hex'), 'the bytes, in order');
      const inputs = (await c.client.auth.audit({ machine: 'box', sinceMs: since })).filter((e) => e.action === 'input' && e.terminalId === two);
      assert.ok(inputs.length >= 16, `sent in ${inputs.length} inputs (1 MiB in pieces of at most 64 KiB)`);
    }));

  it('a `yes` flood keeps the page responsive and its memory bounded; Ctrl-C ends it within 1 s', (t) =>
    b.step('flood', async () => {
      await typeInto(page, two, 'clear; yes cmdop-flood-line-of-some-length\n');
      const start = await hook.bytes(page, two);
      await eventually(async () => (await hook.bytes(page, two)) > start + 2_000_000, 20_000, 'the flood rendering');
      const heap0 = await b.heapUsed(page);
      let heapMax = heap0;
      let slowest = 0;
      const t0 = Date.now();
      let last = await hook.bytes(page, two);
      while (Date.now() - t0 < 6000) {
        const before = Date.now();
        const n = await hook.bytes(page, two); // a round trip into the page's main thread
        slowest = Math.max(slowest, Date.now() - before);
        heapMax = Math.max(heapMax, await b.heapUsed(page));
        assert.ok(n >= last);
        last = n;
        await new Promise((r) => setTimeout(r, 200));
      }
      const rendered = last - start;
      assert.ok(rendered > 5_000_000, `rendered ${rendered} bytes of the flood`);
      assert.ok(slowest < 1000, `the page answered within ${slowest} ms during the flood`);
      assert.ok(heapMax < 150 * 1024 * 1024 && heapMax - heap0 < 64 * 1024 * 1024, `page memory ${heap0} → max ${heapMax} bytes`);

      const sentAt = Date.now();
      await page.keyboard.press('Control+C');
      let lastGrowth = Date.now();
      const atCtrlC = await hook.bytes(page, two);
      let n = atCtrlC;
      while (Date.now() - lastGrowth < 1000 && Date.now() - sentAt < 15_000) {
        await new Promise((r) => setTimeout(r, 20));
        const m = await hook.bytes(page, two);
        if (m !== n) {
          n = m;
          lastGrowth = Date.now();
        }
      }
      const stoppedMs = lastGrowth - sentAt;
      t.diagnostic(
        `flood: ${(rendered / 6e6).toFixed(2)} MB/s rendered, slowest page round trip ${slowest} ms, memory ${(heap0 / 2 ** 20).toFixed(1)} → max ${(heapMax / 2 ** 20).toFixed(1)} MiB, stopped ${stoppedMs} ms after Ctrl-C (${n - atCtrlC} bytes after it)`,
      );
      assert.ok(stoppedMs < 1000, `the flood stopped ${stoppedMs} ms after Ctrl-C`);
      await typeInto(page, two, 'echo after-$((6*7))\n');
      await waitScreen(page, two, /^after-42$/m);
    }));

  it('the terminal follows the window; copy, paste, search, font size (persisted), rename, reorder and close from the keyboard', () =>
    b.step('keyboard', async () => {
      // Resize: the PTY follows the window.
      await typeInto(page, two, 'echo "size-a $(stty size)"\n');
      const [, cols0] = (await waitScreen(page, two, /^size-a \d+ \d+$/m)).match(/^size-a (\d+) (\d+)$/m)!.slice(1).map(Number);
      await page.setViewportSize({ width: 800, height: 600 });
      await new Promise((r) => setTimeout(r, 500));
      await typeInto(page, two, 'echo "size-b $(stty size)"\n');
      const [rows1, cols1] = (await waitScreen(page, two, /^size-b \d+ \d+$/m)).match(/^size-b (\d+) (\d+)$/m)!.slice(1).map(Number);
      assert.ok(cols1 < cols0 - 20 && rows1 > 10, `PTY ${cols0} columns → ${cols1}x${rows1} after the window shrank`);
      await page.setViewportSize({ width: 1280, height: 800 });
      // Search the scrollback.
      await typeInto(page, two, 'echo needle-$((8*8))\n');
      await waitScreen(page, two, /^needle-64$/m);
      await page.keyboard.press('Control+Shift+F');
      await page.fill('[data-testid=search-input]', 'needle-64');
      await page.keyboard.press('Enter');
      await page.waitForSelector('[data-testid=search-result]:text-matches("^[0-9]+ of [0-9]+$")');
      await page.keyboard.press('Escape');
      await page.waitForSelector('[data-testid=search-bar]', { state: 'detached' });
      // Copy (Ctrl+Shift+C) a word selected with the mouse; paste (Ctrl+Shift+V) runs it.
      await b.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(web).origin });
      await typeInto(page, two, 'clear; echo copyme-$((9+9))\n');
      await waitScreen(page, two, /^copyme-18$/m);
      const key2 = (await hook.tabs(page)).find((t) => t.terminalId === two)!.key;
      await page.locator(`${sel.pane(key2)} .xterm-rows > div`, { hasText: /^copyme-18\s*$/ }).dblclick({ position: { x: 5, y: 5 }, force: true }); // xterm's layers sit over the rows
      await page.keyboard.press('Control+Shift+C');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'copyme-18');
      await page.evaluate(() => navigator.clipboard.writeText('echo pasted-$((7+7))'));
      await page.keyboard.press('Control+Shift+V');
      await page.keyboard.press('Enter'); // bash takes a paste as text (bracketed paste): Enter runs it
      await waitScreen(page, two, /^pasted-14$/m);
      // Font size, kept in localStorage.
      await page.keyboard.press('Alt+Shift+Equal');
      assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('cmdop.settings') ?? '{}').fontSize), 15);
      await page.keyboard.press('Alt+Shift+Minus');
      assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('cmdop.settings') ?? '{}').fontSize), 14);
      await page.click(sel.tab(two));
      await page.keyboard.press('Alt+Shift+PageUp'); // move `two` before `one`
      assert.deepEqual(await hook.terminals(page), [two, one]);
      // And by drag and drop.
      await page.locator(sel.tab(one)).dragTo(page.locator(sel.tab(two)));
      assert.deepEqual(await hook.terminals(page), [one, two]);
      await page.locator(sel.tab(two)).dragTo(page.locator(sel.tab(one)));
      assert.deepEqual(await hook.terminals(page), [two, one]);
      await page.click(sel.tab(two));
      await page.keyboard.press('Alt+Shift+R');
      await page.keyboard.press('Control+A');
      await page.keyboard.type('build logs\n');
      assert.equal(await page.locator(`${sel.tab(two)} [data-testid=tab-title]`).textContent(), 'build logs');
      await page.keyboard.press('Alt+Shift+ArrowRight');
      assert.equal(await page.locator(sel.tab(one)).getAttribute('aria-selected'), 'true');
      await page.keyboard.press('Alt+Shift+W');
      await eventually(async () => !(await hook.terminals(page)).includes(one), 5000, 'tab closed');
      // Closing a tab detaches: the terminal keeps running (test/console-life.test.ts has the rest).
      await new Promise((r) => setTimeout(r, 1000));
      assert.ok((await c.client.terminal.list()).some((t) => t.terminalId === one && !t.exited), 'the terminal still runs');
    }));

  it('ran under the strict CSP without a single error in the page', () =>
    b.step('page-errors', async () => {
      const res = await fetch(`${web}/`);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.deepEqual(pageErrors, []);
    }));
});

describe('browser console: a frozen machine', () => {
  let c: Cluster;
  let b: Browser;
  let page: Page;
  before(async () => {
    c = await startCluster({ serverArgs: ['--grace-period', '4', '--heartbeat-timeout', '1'], agentArgs: ['--heartbeat-interval', '0.25', '--reconnect-min', '10'] });
    c.client.setMachine('box');
    const web = (await c.client.auth.serverInfo()).webUrl;
    b = await launchChromium();
    page = await b.newPage();
    await page.goto(`${web}/#token=${c.token}`);
  });
  after(async () => {
    await b?.close();
    await c?.stop();
  });

  it('shows GRACE_PERIOD with a countdown, keeps the screen, continues after SIGCONT; a longer freeze is DISCONNECTED', () =>
    b.step('grace', async () => {
      const agent = c.agents.get('box')!;
      const id = await openTab(page);
      await typeInto(page, id, 'echo before-$((1+2))\n');
      await waitScreen(page, id, /^before-3$/m);
      // Something that keeps printing while the agent is frozen.
      await typeInto(page, id, 'for i in 1 2 3 4 5 6; do echo tick-$i; sleep 0.5; done\n');
      await waitScreen(page, id, /^tick-1$/m);
      agent.kill('SIGSTOP');
      try {
        await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=GRACE_PERIOD]`, { timeout: 5000 });
        const secs = Number(await page.locator(`${sel.tab(id)} [data-testid=tab-countdown]`).getAttribute('data-seconds'));
        assert.ok(secs >= 1 && secs <= 4, `countdown at ${secs} s`);
        await page.waitForSelector('[data-testid=grace-banner] [data-testid=grace-countdown]');
        assert.match(await hook.screen(page, id), /^before-3$/m, 'the screen is kept');
        await page.click('[data-testid=machines-tab]');
        await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=GRACE_PERIOD]`, { timeout: 4000 });
        await page.waitForSelector(`${sel.row('box')} [data-testid=machine-countdown]`);
        await page.click(sel.tab(id));
      } finally {
        agent.kill('SIGCONT');
      }
      await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=CONNECTED]`, { timeout: 5000 });
      const screen = await waitScreen(page, id, /^tick-6$/m, 10_000);
      const ticks = screen.match(/^tick-\d$/gm) ?? [];
      assert.deepEqual(ticks, ['tick-1', 'tick-2', 'tick-3', 'tick-4', 'tick-5', 'tick-6'], 'every line once, in order');

      // Frozen past the grace period: DISCONNECTED, final.
      agent.kill('SIGSTOP');
      try {
        await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=DISCONNECTED]`, { timeout: 10_000 });
        await page.waitForSelector('[data-testid=final-banner]');
        assert.match((await page.locator('[data-testid=final-banner]').textContent()) ?? '', /box disconnected: its session has ended/);
        assert.match(await hook.screen(page, id), /^tick-6$/m, 'the screen is kept for reading');
      } finally {
        agent.kill('SIGCONT');
      }
    }));
});

describe('browser console: the page loses its own connection', () => {
  let c: Cluster;
  let b: Browser;
  let page: Page;
  let proxy: CutProxy;
  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    // The page reaches the web port through a proxy that can cut it off.
    proxy = await CutProxy.start(new URL((await c.client.auth.serverInfo()).webUrl).host);
    b = await launchChromium();
    page = await b.newPage();
    await page.goto(`http://${proxy.address}/#token=${c.token}`);
  });
  after(async () => {
    await b?.close();
    await proxy?.close();
    await c?.stop();
  });

  it('reconnects, re-attaches from the last byte seen (nothing lost, nothing twice) and says so', () =>
    b.step('reconnect', async () => {
      const id = await openTab(page);
      // More lines than the screen has rows: a redraw of the screen instead of the missing bytes would lose some.
      // (A pause every 10 lines rather than a `sleep` per line: fewer forks on a busy machine.)
      await typeInto(page, id, 'for i in $(seq 1 120); do echo tick-$i; [ $((i % 10)) = 0 ] && sleep 0.3; done\n');
      await waitScreen(page, id, /^tick-3$/m);
      proxy.block();
      await page.waitForSelector('[data-testid=connection-status][data-status=reconnecting]', { timeout: 5000 });
      await new Promise((r) => setTimeout(r, 1500)); // ticks go on while the page is away
      proxy.unblock();
      await page.waitForSelector('[data-testid=reconnect-notice]', { timeout: 10_000 });
      await page.waitForSelector('[data-testid=connection-status][data-status=open]');
      const screen = await waitScreen(page, id, /^tick-120$/m, 30_000);
      const ticks = screen.match(/^tick-\d+$/gm) ?? [];
      assert.deepEqual(ticks, Array.from({ length: 120 }, (_, i) => `tick-${i + 1}`), 'every line exactly once, in order');
      assert.equal(await page.locator('[data-testid=gap-notice]').count(), 0, 'nothing was skipped');
      // Byte-exact: xterm was handed exactly the terminal's byte stream, once (a redraw or a replay would not add up).
      let head = -1;
      await eventually(async () => {
        head = (await c.client.terminal.list()).find((t) => t.terminalId === id)!.headSeq;
        return (await hook.bytes(page, id)) === head;
      }, 5000, "the page at the server's stream position");
      assert.equal(await hook.written(page, id), head);
    }));

  it('output skipped while away (past the control plane buffer) is announced, never silent', () =>
    b.step('gap', async () => {
      const id = (await hook.terminals(page))[0];
      await typeInto(page, id, 'yes cmdop-gap-flood\n');
      const start = await hook.bytes(page, id);
      await eventually(async () => (await hook.bytes(page, id)) > start + 200_000, 10_000, 'the flood');
      proxy.block();
      // Unpaced while no client is attached, yes outruns the 4 MiB the control plane keeps.
      await new Promise((r) => setTimeout(r, 3000));
      proxy.unblock();
      await page.waitForSelector('[data-testid=gap-notice]', { timeout: 10_000 });
      assert.match((await page.locator('[data-testid=gap-notice]').first().textContent()) ?? '', /bytes of output were skipped/);
      await page.click(sel.term(id));
      await page.keyboard.press('Control+C');
      await typeInto(page, id, 'echo after-gap-$((2*21))\n');
      await waitScreen(page, id, /^after-gap-42$/m, 15_000);
    }));
});
