// The console when its machine stops answering (issue 16), in Chromium
// against a real control plane, agent and shell: the machine is "not
// responding" before its grace period, whose reason says the agent stopped
// answering; no dead tab for a machine that cannot take one, and errors in
// words with what to do next; input typed while the machine is away waits,
// visibly, and arrives once, in order (bounded); DISCONNECTED offers a new
// terminal and Close. Serial: the second test goes on from the first's tab.
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';
import { hook, openTab, paste, refusedInputs, sel, tabKey, text, typeInto, waitScreen } from './console';

test.describe.configure({ mode: 'serial' });
test.use({
  clusterSetup: {
    group: 'life-frozen',
    // Heartbeats every 0.5 s are late after 2.5 s (protocol/liveness.ts); the heartbeat timeout (6 s) comes well after.
    serverArgs: ['--grace-period', '8', '--heartbeat-timeout', '6'],
    agentArgs: ['--heartbeat-interval', '0.5', '--reconnect-min', '10'],
  },
});

/** A raw error code as the user would see it ("UNAVAILABLE: ..."): never shown. */
const RAW_CODE = /\b(UNAVAILABLE|NOT_FOUND|FAILED_PRECONDITION|PERMISSION_DENIED|DEADLINE_EXCEEDED|INTERNAL)\b/;

test.describe('browser console: a machine that stops answering', () => {
  let c: Cluster;
  let context: BrowserContext;
  let page: Page;
  let id = '';
  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    const web = (await c.client.auth.serverInfo()).webUrl;
    context = await consoleContext(browser);
    page = await context.newPage();
    await page.goto(`${web}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  test.afterAll(async () => {
    await context?.close();
  });

  test('is "not responding" before its grace period, which says it stopped answering; no dead tab; typed input waits and arrives once, in order', async () => {
    const agent = c.agents.get('box')!;
    id = await openTab(page);
    await typeInto(page, id, 'echo before-$((1+2))\n');
    await waitScreen(page, id, /^before-3$/m);
    await page.click('[data-testid=machines-tab]');
    const age = Number(await page.locator(`${sel.row('box')} [data-testid=heartbeat-age]`).getAttribute('data-seconds'));
    assert.ok(age <= 2, `heartbeat ${age} s ago`);
    assert.equal(await page.locator(sel.row('box')).getAttribute('data-responding'), 'yes');
    const tabsBefore = (await hook.tabs(page)).length;
    const key = await tabKey(page, id);
    const typed = 'echo held-$((6*7))\n';
    let frozeAt = 0;
    agent.kill('SIGSTOP');
    try {
      frozeAt = Date.now();
      await page.waitForSelector(`${sel.row('box')}[data-responding=no] [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 5000 });
      await page.waitForSelector(`${sel.row('box')} [data-testid=machine-not-responding]`);
      assert.ok(Number(await page.locator(`${sel.row('box')} [data-testid=heartbeat-age]`).getAttribute('data-seconds')) >= 2);
      await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=NOT_RESPONDING]`, { state: 'attached', timeout: 4000 });
      assert.ok(Date.now() - frozeAt < 5500, `not responding ${Date.now() - frozeAt} ms after the freeze, before the 6 s heartbeat timeout`);

      await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=GRACE_PERIOD]`, { timeout: 8000 });
      await page.click(sel.tab(id));
      const banner = await text(page, `${sel.pane(key)} [data-testid=grace-banner]`);
      assert.match(banner, /box is not answering \(the agent stopped answering: no heartbeat for 6 s\)/);
      assert.doesNotMatch(banner, /closed its stream/);

      // A new terminal now could only die: none is opened, and the console says why and what it can do.
      await page.keyboard.press('Alt+Shift+T');
      await page.waitForSelector('[data-testid=console-message][data-kind=cannot-open]', { timeout: 3000 });
      const why = await text(page, '[data-testid=console-message-text]');
      assert.match(why, /box is not answering/);
      assert.doesNotMatch(why, RAW_CODE);
      assert.equal((await hook.tabs(page)).length, tabsBefore, 'no dead tab');
      await page.click('[data-testid=open-when-back]');
      await page.waitForSelector('[data-testid=console-message][data-kind=waiting-to-open]');

      // Typed now: waits, and says so.
      await typeInto(page, id, typed);
      await page.waitForSelector(`${sel.pane(key)} [data-testid=pending-input][data-bytes="${typed.length}"]`, { timeout: 3000 });
      // More than the bound: dropped whole, said so, and what waits is unchanged.
      await paste(page, key, 'x'.repeat(70_000));
      await page.waitForSelector(`${sel.pane(key)} [data-testid=input-notice]`, { timeout: 3000 });
      const dropped = await text(page, `${sel.pane(key)} [data-testid=input-notice]`);
      assert.ok(Number(dropped.match(/^(\d+) bytes typed were dropped/)?.[1]) >= 70_000, dropped); // the paste, with its bracketed-paste marks
      assert.equal(await page.locator(`${sel.pane(key)} [data-testid=pending-input]`).getAttribute('data-bytes'), String(typed.length));
    } finally {
      agent.kill('SIGCONT');
    }
    await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=CONNECTED]`, { state: 'attached', timeout: 10_000 });
    const screen = await waitScreen(page, id, /^held-42$/m, 10_000);
    assert.equal(screen.match(/^held-42$/gm)?.length, 1, 'sent once');
    assert.doesNotMatch(screen, /xxxxxxxxxx/, 'the dropped paste was not sent');
    await page.waitForSelector(`${sel.pane(key)} [data-testid=pending-input]`, { state: 'detached', timeout: 3000 });
    assert.deepEqual(await refusedInputs(c, id, frozeAt), [], 'held in the page, never sent to be refused');
    // "Open when box is back" did.
    await eventually(async () => (await hook.tabs(page)).length === tabsBefore + 1, 10_000, 'a terminal opened once box was back');
    await page.waitForSelector('[data-testid=console-message]', { state: 'detached' });
  });

  test('past its grace period: DISCONNECTED in words, input never sent said so, "New terminal on box" once it is back, and Close', async () => {
    const agent = c.agents.get('box')!;
    const key = await tabKey(page, id);
    await page.click(sel.tab(id));
    agent.kill('SIGSTOP');
    try {
      await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=GRACE_PERIOD]`, { state: 'attached', timeout: 10_000 });
      await typeInto(page, id, 'echo never\n');
      await page.waitForSelector(`${sel.tab(id)} [data-testid=session-state][data-state=DISCONNECTED]`, { state: 'attached', timeout: 15_000 });
      const banner = await text(page, `${sel.pane(key)} [data-testid=final-banner]`);
      assert.match(banner, /box disconnected/);
      assert.doesNotMatch(banner, RAW_CODE);
      await page.locator(`${sel.pane(key)} [data-testid=input-notice]`, { hasText: /^\d+ bytes typed were never sent: the terminal is gone/ }).waitFor({ timeout: 3000 });
      assert.equal(await page.locator(`${sel.tab(id)} [data-testid=viewer-count]`).count(), 0, 'no watcher count on an ended tab');
      assert.ok(await page.locator(`${sel.pane(key)} [data-testid=final-new-terminal]`).isDisabled(), 'box cannot take a terminal now');
    } finally {
      agent.kill('SIGCONT');
    }
    // The agent comes back with a new session: a new terminal can be opened from the ended tab.
    await page.waitForSelector(`${sel.pane(key)} [data-testid=final-new-terminal]:not([disabled])`, { timeout: 15_000 });
    const before = await hook.terminals(page);
    await page.click(`${sel.pane(key)} [data-testid=final-new-terminal]`);
    const fresh = await eventually(async () => (await hook.terminals(page)).find((t) => !before.includes(t)), 10_000, 'a new tab');
    await typeInto(page, fresh, 'echo back-$((9+9))\n');
    await waitScreen(page, fresh, /^back-18$/m);
    await page.click(sel.tab(id));
    await page.click(`${sel.pane(key)} [data-testid=final-close]`);
    await eventually(async () => !(await hook.terminals(page)).includes(id), 5000, 'the ended tab closed');
  });
});
