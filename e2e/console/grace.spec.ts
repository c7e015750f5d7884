// The console when its machine freezes (the agent stopped with SIGSTOP): the
// tab shows the grace period counting down and keeps the screen, output goes
// on after SIGCONT with nothing lost, and a freeze past the grace period ends
// the session. A control plane with a 4 s grace period and a fast heartbeat.
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import type { Cluster } from '../../test/helpers/cluster';
import { hook, openTab, sel, typeInto, waitScreen } from './console';

test.describe.configure({ mode: 'serial' });
test.use({
  clusterSetup: {
    group: 'grace',
    serverArgs: ['--grace-period', '4', '--heartbeat-timeout', '1'],
    agentArgs: ['--heartbeat-interval', '0.25', '--reconnect-min', '10'],
  },
});

test.describe('browser console: a frozen machine', () => {
  let c: Cluster;
  let context: BrowserContext;
  let page: Page;
  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    const web = (await c.client.auth.serverInfo()).webUrl;
    context = await consoleContext(browser);
    page = await context.newPage();
    await page.goto(`${web}/#token=${c.token}`);
  });
  test.afterAll(async () => {
    await context?.close();
  });

  test('shows GRACE_PERIOD with a countdown, keeps the screen, continues after SIGCONT; a longer freeze is DISCONNECTED', async () => {
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
  });
});
