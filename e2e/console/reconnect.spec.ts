// The console when the page loses its own connection (the page reaches the
// control plane through a proxy that cuts it): it reconnects and re-attaches
// from the last byte it saw, and output skipped while it was away is
// announced, never silent. Serial: the second test uses the first's tab.
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';
import { CutProxy } from '../../test/helpers/proxy';
import { hook, openTab, sel, typeInto, waitScreen } from './console';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'reconnect' } });

test.describe('browser console: the page loses its own connection', () => {
  let c: Cluster;
  let context: BrowserContext;
  let page: Page;
  let proxy: CutProxy;
  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    // The page reaches the web port through a proxy that can cut it off.
    proxy = await CutProxy.start(new URL((await c.client.auth.serverInfo()).webUrl).host);
    context = await consoleContext(browser);
    page = await context.newPage();
    await page.goto(`http://${proxy.address}/#token=${c.token}`);
  });
  test.afterAll(async () => {
    await context?.close();
    await proxy?.close();
  });

  test('reconnects, re-attaches from the last byte seen (nothing lost, nothing twice) and says so', async () => {
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
  });

  test('output skipped while away (past the control plane buffer) is announced, never silent', async () => {
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
  });
});
