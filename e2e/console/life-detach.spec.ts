// The console as a terminal user would choose it (issue 16), in Chromium
// against a real control plane, agent and shell: closing a tab detaches (the
// terminal keeps running and can be attached again), and ending a terminal
// is explicit, asked when something runs. A frozen machine:
// life-frozen.spec.ts; the page offline: life-offline.spec.ts.
// Serial: one page, the tests going on from each other's tabs.
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';
import { hook, openTab, sel, tabKey, text, typeInto, waitScreen } from './console';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'life-detach' } });

const running = async (c: Cluster, id: string) => (await c.client.terminal.list()).some((t) => t.terminalId === id && !t.exited);
const foreground = async (c: Cluster, id: string) =>
  (await c.client.machines.list()).find((m) => m.name === 'box')?.terminals.find((t) => t.terminalId === id)?.foreground;

test.describe('browser console: closing a tab detaches; ending a terminal is explicit', () => {
  let c: Cluster;
  let context: BrowserContext;
  let page: Page;
  let kept = '';
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

  test("the tab's × detaches: the terminal keeps running, is listed on its machine, and attaches again with its screen", async () => {
    kept = await openTab(page);
    await typeInto(page, kept, 'echo kept-$((2+3))\n');
    await waitScreen(page, kept, /^kept-5$/m);
    assert.match((await page.locator(`${sel.tab(kept)} [data-testid=tab-close]`).getAttribute('title')) ?? '', /keeps running/);
    await page.click(`${sel.tab(kept)} [data-testid=tab-close]`);
    await eventually(async () => !(await hook.terminals(page)).includes(kept), 5000, 'tab closed');
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(await running(c, kept), 'the terminal still runs');
    // Listed on its machine, detached, with Attach.
    await page.click('[data-testid=machines-tab]');
    await page.waitForSelector(`${sel.rowTerminal('box', kept)}`, { timeout: 5000 });
    await eventually(async () => /0op/.test(await text(page, sel.rowTerminal('box', kept))), 6000, 'no operator attached');
    await page.click(`${sel.rowTerminal('box', kept)} [data-testid=attach-terminal]`);
    await eventually(async () => (await hook.terminals(page)).includes(kept), 10_000, 'attached again');
    await waitScreen(page, kept, /^kept-5$/m);
    await typeInto(page, kept, 'echo again-$((3+4))\n');
    await waitScreen(page, kept, /^again-7$/m);
  });

  test('"End terminal" with only the shell in it ends it at once, without asking, and closes the tab', async () => {
    const id = await openTab(page);
    await eventually(async () => (await foreground(c, id)) === '', 5000, 'the agent reports an idle shell');
    await page.click(`${sel.pane(await tabKey(page, id))} [data-testid=end-terminal]`);
    await eventually(async () => !(await hook.terminals(page)).includes(id), 5000, 'tab closed');
    await eventually(async () => !(await running(c, id)), 5000, 'terminal ended');
    assert.equal(await page.locator('[data-testid=end-dialog]').count(), 0, 'nothing was asked');
  });

  test('"End terminal" asks when something runs in it: "Keep it running" keeps it, yes ends it; the ended tab offers a new terminal', async () => {
    await typeInto(page, kept, 'sleep 600\n');
    await eventually(async () => (await foreground(c, kept)) === 'sleep', 5000, 'the agent reports sleep in the foreground');
    await page.click(`${sel.pane(await tabKey(page, kept))} [data-testid=end-terminal]`);
    await page.waitForSelector('[data-testid=end-dialog]', { timeout: 5000 });
    assert.equal(await text(page, '[data-testid=end-foreground]'), 'sleep');
    await page.click('[data-testid=end-cancel]');
    await page.waitForSelector('[data-testid=end-dialog]', { state: 'detached' });
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(await running(c, kept), 'kept running');
    assert.ok((await hook.terminals(page)).includes(kept), 'the tab stays');
    // From the machine's row this time: what runs is listed there too.
    await page.click('[data-testid=machines-tab]');
    await page.waitForSelector(`${sel.rowTerminal('box', kept)} [data-testid=terminal-foreground]:text("running sleep")`, { timeout: 5000 });
    await page.click(`${sel.rowTerminal('box', kept)} [data-testid=end-terminal-row]`);
    await page.waitForSelector('[data-testid=end-dialog]', { timeout: 5000 });
    await page.click('[data-testid=end-confirm]');
    await eventually(async () => !(await running(c, kept)), 5000, 'terminal ended');
    // Its tab (not the one asked from) tells what happened and what next; no stale watcher count.
    await page.click(sel.tab(kept));
    const pane = sel.pane(await tabKey(page, kept));
    await page.waitForSelector(`${pane} [data-testid=final-banner]`, { timeout: 5000 });
    assert.match(await text(page, `${pane} [data-testid=final-banner]`), /exited/);
    assert.equal(await page.locator(`${sel.tab(kept)} [data-testid=viewer-count]`).count(), 0);
    await page.click(`${pane} [data-testid=final-new-terminal]`);
    const fresh = await eventually(async () => (await hook.tabs(page)).find((t) => t.terminalId && t.terminalId !== kept && t.mode === 'operator')?.terminalId, 10_000, 'a new tab');
    await typeInto(page, fresh, 'echo fresh-$((4+4))\n');
    await waitScreen(page, fresh, /^fresh-8$/m);
    await page.click(sel.tab(kept));
    await page.click(`${sel.pane(await tabKey(page, kept))} [data-testid=final-close]`);
    await eventually(async () => !(await hook.terminals(page)).includes(kept), 5000, 'the ended tab closed');
  });
});
