// The console when the page itself goes offline (issue 16; the page reaches
// the control plane through a proxy that cuts it): tabs are not green while
// offline, input typed meanwhile waits and arrives, and reconnect notices do
// not pile up.
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';
import { CutProxy } from '../../test/helpers/proxy';
import { openTab, sel, tabKey, text, typeInto, waitScreen } from './console';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'life-offline' } });

test.describe('browser console: the page itself offline', () => {
  let c: Cluster;
  let context: BrowserContext;
  let page: Page;
  let proxy: CutProxy;
  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    proxy = await CutProxy.start(new URL((await c.client.auth.serverInfo()).webUrl).host);
    context = await consoleContext(browser);
    page = await context.newPage();
    await page.goto(`http://${proxy.address}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  test.afterAll(async () => {
    await context?.close();
    await proxy?.close();
  });

  test('tabs are not green while offline; input typed meanwhile waits and arrives; one reconnect notice, in words, that goes away', async () => {
    const id = await openTab(page);
    const key = await tabKey(page, id);
    await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=CONNECTED]`);
    proxy.block();
    await page.waitForSelector('[data-testid=connection-status][data-status=reconnecting]', { timeout: 5000 });
    await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=OFFLINE]`, { timeout: 2000 });
    await page.waitForSelector(`${sel.pane(key)} [data-testid=offline-banner]`);
    const typed = 'echo offline-$((5*5))\n';
    await typeInto(page, id, typed);
    await page.waitForSelector(`${sel.pane(key)} [data-testid=pending-input][data-bytes="${typed.length}"]`, { timeout: 3000 });
    proxy.unblock();
    await page.waitForSelector('[data-testid=connection-status][data-status=open]', { timeout: 10_000 });
    const screen = await waitScreen(page, id, /^offline-25$/m);
    assert.equal(screen.match(/^offline-25$/gm)?.length, 1);
    await page.waitForSelector(`${sel.pane(key)} [data-testid=pending-input]`, { state: 'detached', timeout: 3000 });
    await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=CONNECTED]`, { state: 'attached' });
    await page.waitForSelector(`${sel.pane(key)} [data-testid=reconnect-notice]`, { timeout: 5000 });
    assert.doesNotMatch(await text(page, `${sel.pane(key)} [data-testid=reconnect-notice]`), /byte/);
    assert.equal(await text(page, '[data-testid=connection-status]'), 'reconnected');
    // Again: still one notice.
    proxy.block();
    await page.waitForSelector('[data-testid=connection-status][data-status=reconnecting]', { timeout: 5000 });
    proxy.unblock();
    await page.waitForSelector('[data-testid=connection-status][data-status=open]', { timeout: 10_000 });
    await typeInto(page, id, 'echo twice-$((2*2))\n');
    await waitScreen(page, id, /^twice-4$/m);
    assert.equal(await page.locator(`${sel.pane(key)} [data-testid=reconnect-notice]`).count(), 1, 'one reconnect notice, not two');
    // And it goes, as does "reconnected" in the header.
    await page.waitForSelector(`${sel.pane(key)} [data-testid=reconnect-notice]`, { state: 'detached', timeout: 7000 });
    await eventually(async () => (await text(page, '[data-testid=connection-status]')) === 'connected', 7000, 'the header back to "connected"');
  });
});
