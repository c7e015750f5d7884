// The console as a terminal user would choose it (issue 16), in Debian's
// Chromium against a real control plane, agent and shell: closing a tab
// detaches and ending is explicit (asked when something runs); a frozen
// machine is "not responding" before its grace period, whose reason says
// the agent stopped answering; no dead tab for a machine that cannot take
// one, and errors in words with what to do next; input typed while the
// machine or the page is away waits, visibly, and arrives in order (bounded);
// DISCONNECTED offers a new terminal and Close; reconnect notices do not pile
// up, and tabs are not green while the page is offline.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { Cluster, eventually, startCluster } from './helpers/cluster';
import { launchChromium, type Browser } from './helpers/chromium';
import { hook, openTab, paste, sel, tabKey, typeInto, waitScreen } from './helpers/consolePage';
import { CutProxy } from './helpers/proxy';

/** A raw error code as the user would see it ("UNAVAILABLE: ..."): never shown. */
const RAW_CODE = /\b(UNAVAILABLE|NOT_FOUND|FAILED_PRECONDITION|PERMISSION_DENIED|DEADLINE_EXCEEDED|INTERNAL)\b/;

/** Input the control plane refused on `terminalId` since `sinceMs` (its refusals are audited). */
async function refusedInputs(c: Cluster, terminalId: string, sinceMs: number) {
  const entries = await c.client.auth.audit({ machine: 'box', sinceMs });
  return entries.filter((e) => e.action === 'input' && !e.ok && e.terminalId === terminalId).map((e) => `${e.actor}: ${e.detail}`);
}

const running = async (c: Cluster, id: string) => (await c.client.terminal.list()).some((t) => t.terminalId === id && !t.exited);
const foreground = async (c: Cluster, id: string) =>
  (await c.client.machines.list()).find((m) => m.name === 'box')?.terminals.find((t) => t.terminalId === id)?.foreground;
const text = async (page: Page, selector: string) => (await page.locator(selector).first().textContent()) ?? '';

describe('browser console: closing a tab detaches; ending a terminal is explicit', () => {
  let c: Cluster;
  let b: Browser;
  let page: Page;
  let kept = '';
  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    const web = (await c.client.auth.serverInfo()).webUrl;
    b = await launchChromium();
    page = await b.newPage();
    await page.goto(`${web}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  after(async () => {
    await b?.close();
    await c?.stop();
  });

  it("the tab's × detaches: the terminal keeps running, is listed on its machine, and attaches again with its screen", () =>
    b.step('detach', async () => {
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
    }));

  it('"End terminal" with only the shell in it ends it at once, without asking, and closes the tab', () =>
    b.step('end-idle', async () => {
      const id = await openTab(page);
      await eventually(async () => (await foreground(c, id)) === '', 5000, 'the agent reports an idle shell');
      await page.click(`${sel.pane(await tabKey(page, id))} [data-testid=end-terminal]`);
      await eventually(async () => !(await hook.terminals(page)).includes(id), 5000, 'tab closed');
      await eventually(async () => !(await running(c, id)), 5000, 'terminal ended');
      assert.equal(await page.locator('[data-testid=end-dialog]').count(), 0, 'nothing was asked');
    }));

  it('"End terminal" asks when something runs in it: "Keep it running" keeps it, yes ends it; the ended tab offers a new terminal', () =>
    b.step('end-busy', async () => {
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
    }));
});

describe('browser console: a machine that stops answering', () => {
  let c: Cluster;
  let b: Browser;
  let page: Page;
  let id = '';
  before(async () => {
    // Heartbeats every 0.5 s are late after 2.5 s (protocol/liveness.ts); the heartbeat timeout (6 s) comes well after.
    c = await startCluster({ serverArgs: ['--grace-period', '8', '--heartbeat-timeout', '6'], agentArgs: ['--heartbeat-interval', '0.5', '--reconnect-min', '10'] });
    c.client.setMachine('box');
    const web = (await c.client.auth.serverInfo()).webUrl;
    b = await launchChromium();
    page = await b.newPage();
    await page.goto(`${web}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  after(async () => {
    await b?.close();
    await c?.stop();
  });

  it('is "not responding" before its grace period, which says it stopped answering; no dead tab; typed input waits and arrives once, in order', () =>
    b.step('frozen', async () => {
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
    }));

  it('past its grace period: DISCONNECTED in words, input never sent said so, "New terminal on box" once it is back, and Close', () =>
    b.step('disconnected', async () => {
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
    }));
});

describe('browser console: the page itself offline', () => {
  let c: Cluster;
  let b: Browser;
  let page: Page;
  let proxy: CutProxy;
  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    proxy = await CutProxy.start(new URL((await c.client.auth.serverInfo()).webUrl).host);
    b = await launchChromium();
    page = await b.newPage();
    await page.goto(`http://${proxy.address}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  after(async () => {
    await b?.close();
    await proxy?.close();
    await c?.stop();
  });

  it('tabs are not green while offline; input typed meanwhile waits and arrives; one reconnect notice, in words, that goes away', () =>
    b.step('offline', async () => {
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
    }));
});
