// The console from the keyboard alone: Chromium on the console a real
// control plane serves, a real agent and shell behind
// it. The tab strip is one tab stop moved with the arrow keys (WAI-ARIA
// tabs: tablist/tab, aria-selected, roving tabindex, Left/Right/Home/End);
// a renamed tab gives the keyboard back to its terminal (checked by typing
// into it); the file rows are one tab stop with a roving focus
// (Up/Down/Home/End, Enter opens), F2 and Delete work on the focused row and
// the focus comes back to it after a rename, a refused rename and a cancel;
// a taken name is said beside the row without the "overwrite" rename does
// not have; the columns do not move when the rename box opens.
// Serial: one page, the tests going on from each other's tabs and files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually, tempDir } from '../../test/helpers/cluster';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'keys' } });

const hook = {
  terminals: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]),
  screen: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.screenText(x) as string, id),
  tabs: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.tabs() as { key: string; terminalId: string }[]),
};

async function waitScreen(page: Page, id: string, re: RegExp, timeoutMs = 10_000): Promise<void> {
  let last = '';
  try {
    await eventually(async () => re.test((last = await hook.screen(page, id))), timeoutMs, `${re} on ${id}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the screen shows:\n${last.split('\n').slice(-15).join('\n')}`);
  }
}

/** Where the keyboard is: the focused element, described. */
interface Focus {
  tag: string;
  role: string | null;
  testid: string | null;
  tabKey: string | null;
  name: string | null;
  /** The tab key of the terminal pane it is in, if any. */
  pane: string | null;
  /** xterm's input (the terminal has the keyboard). */
  xterm: boolean;
}

/** The focused element after two frames (focus that moves in a requestAnimationFrame has moved). */
const focused = (page: Page): Promise<Focus> =>
  page.evaluate(async () => {
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const a = document.activeElement as HTMLElement;
    return {
      tag: a.tagName,
      role: a.getAttribute('role'),
      testid: a.dataset.testid ?? null,
      tabKey: a.dataset.tabKey ?? null,
      name: a.dataset.name ?? null,
      pane: a.closest<HTMLElement>('[data-testid=terminal-pane]')?.dataset.tabKey ?? null,
      xterm: a.classList.contains('xterm-helper-textarea'),
    };
  });

/** Presses Tab until the focus is on an element matching `is` (at most `max` presses); returns how many. */
async function tabUntil(page: Page, is: (f: Focus) => boolean, max = 20): Promise<number> {
  for (let n = 1; n <= max; n++) {
    await page.keyboard.press('Tab');
    if (is(await focused(page))) return n;
  }
  throw new Error(`Tab never reached it; the focus is on ${JSON.stringify(await focused(page))}`);
}

/** Every tab of the strip: key, aria-selected, tabindex. */
const strip = (page: Page) =>
  page.$$eval('[role=tablist] [role=tab]', (els) =>
    els.map((e) => ({ key: (e as HTMLElement).dataset.tabKey, selected: e.getAttribute('aria-selected'), tabindex: e.getAttribute('tabindex') })),
  );

const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  panel: '[data-testid=files-panel]',
  file: (name: string) => `[data-testid=files-panel] [data-testid=file-row][data-name="${name}"]`,
};

/** The x and width of each column of the file list, from its header cells. */
const columns = (page: Page) =>
  page.$$eval(`${sel.panel} .files-list thead th`, (ths) =>
    ths.map((th) => {
      const r = th.getBoundingClientRect();
      return { x: Math.round(r.x * 10) / 10, width: Math.round(r.width * 10) / 10 };
    }),
  );

test.describe('browser console from the keyboard', () => {
  let c: Cluster;
  let context: BrowserContext;
  let web: string;
  let page: Page;
  let work: string;
  const pageErrors: string[] = [];

  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    web = (await c.client.auth.serverInfo()).webUrl;
    work = tempDir('cmdop-keys-');
    fs.writeFileSync(path.join(work, 'a.txt'), 'aaa\n');
    fs.writeFileSync(path.join(work, 'taken.txt'), 'taken\n');
    fs.mkdirSync(path.join(work, 'sub'));
    fs.writeFileSync(path.join(work, 'sub', 'inner.txt'), 'inner\n');
    context = await consoleContext(browser);
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${web}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  test.afterAll(async () => {
    await context?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the tab strip is one tab stop: arrows, Home and End select tabs and keep the focus in the strip; Enter goes into the terminal', async () => {
    // Two shells, opened from the keyboard.
    await page.keyboard.press('Alt+Shift+T');
    const one = (await eventually(async () => (await hook.terminals(page))[0], 10_000, 'a first tab'))!;
    await waitScreen(page, one, /\S/);
    await page.keyboard.press('Alt+Shift+T');
    const two = (await eventually(async () => (await hook.terminals(page))[1], 10_000, 'a second tab'))!;
    await waitScreen(page, two, /\S/);
    const [k1, k2] = (await hook.tabs(page)).map((t) => t.key);
    assert.equal((await focused(page)).pane, k2, 'a new tab has the keyboard');

    // The machines view: its pane is shown, the terminal's hidden (and with it its focus).
    await page.keyboard.press('Alt+Shift+M');
    assert.equal(await page.getAttribute('[role=tablist]', 'aria-label'), 'Terminals');
    // Tab from the top of the page reaches the strip once, on the selected tab ...
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await tabUntil(page, (f) => f.role === 'tab');
    assert.equal((await focused(page)).tabKey, 'machines');
    const tabbable = (await strip(page)).filter((t) => t.tabindex === '0');
    assert.deepEqual(tabbable, [{ key: 'machines', selected: 'true', tabindex: '0' }], 'one tab stop: the selected tab');
    // ... and one more Tab leaves it (the other tabs and the close buttons are not tab stops); Shift+Tab comes back.
    await page.keyboard.press('Tab');
    assert.notEqual((await focused(page)).role, 'tab');
    await page.keyboard.press('Shift+Tab');
    assert.equal((await focused(page)).tabKey, 'machines');

    // The arrows select and move the focus along the strip, wrapping; the shown terminal does not take the focus.
    const expectAt = async (key: string) => {
      const f = await focused(page);
      assert.equal(f.tabKey, key, `the focus is on ${key}, not ${JSON.stringify(f)}`);
      assert.deepEqual(
        (await strip(page)).map((t) => [t.key, t.selected, t.tabindex]),
        ['machines', k1, k2].map((k) => [k, String(k === key), k === key ? '0' : '-1']),
      );
    };
    await page.keyboard.press('ArrowRight');
    await expectAt(k1);
    assert.equal(await page.isVisible(`[data-testid=terminal-pane][data-tab-key="${k1}"]`), true);
    assert.equal(await page.getAttribute(`[data-testid=terminal-pane][data-tab-key="${k1}"]`, 'role'), 'tabpanel');
    await page.keyboard.press('ArrowRight');
    await expectAt(k2);
    await page.keyboard.press('ArrowRight');
    await expectAt('machines');
    await page.keyboard.press('ArrowLeft');
    await expectAt(k2);
    await page.keyboard.press('Home');
    await expectAt('machines');
    await page.keyboard.press('End');
    await expectAt(k2);
    await page.keyboard.press('ArrowLeft');
    await expectAt(k1);

    // Enter: into that tab's terminal; what is typed runs there.
    await page.keyboard.press('Enter');
    assert.equal((await focused(page)).pane, k1);
    await page.keyboard.type('echo typed-$((6*7))\n');
    await waitScreen(page, one, /^typed-42$/m);
    assert.doesNotMatch(await hook.screen(page, two), /typed-42/);
  });

  test('renaming a tab (Enter, or Escape to cancel; Alt+Shift+R or F2 on the tab) gives the keyboard back to its terminal', async () => {
    const [t1, t2] = await hook.tabs(page);
    const title = (key: string) => page.textContent(`[data-testid=tab][data-tab-key="${key}"] [data-testid=tab-title]`);
    // From the terminal: Alt+Shift+R, a name, Enter. The keyboard is in the terminal again: typing runs there.
    assert.equal((await focused(page)).pane, t1.key);
    await page.keyboard.press('Alt+Shift+R');
    assert.equal((await focused(page)).testid, 'tab-rename');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('logs\n');
    assert.equal(await title(t1.key), 'logs');
    const f = await focused(page);
    assert.ok(f.xterm && f.pane === t1.key, `the terminal has the keyboard, not ${JSON.stringify(f)}`);
    await page.keyboard.type('echo after-rename-$((2+3))\n');
    await waitScreen(page, t1.terminalId, /^after-rename-5$/m);

    // Escape cancels: the name stays, the terminal has the keyboard.
    await page.keyboard.press('Alt+Shift+R');
    await page.keyboard.type('not this');
    await page.keyboard.press('Escape');
    assert.equal(await title(t1.key), 'logs');
    assert.equal((await focused(page)).xterm, true);
    await page.keyboard.type('echo after-escape-$((3+4))\n');
    await waitScreen(page, t1.terminalId, /^after-escape-7$/m);

    // From the strip: F2 on the focused tab renames it; Enter, and its terminal has the keyboard.
    await page.keyboard.press('Alt+Shift+M');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await tabUntil(page, (x) => x.role === 'tab');
    await page.keyboard.press('End');
    assert.equal((await focused(page)).tabKey, t2.key);
    await page.keyboard.press('F2');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('build\n');
    assert.equal(await title(t2.key), 'build');
    assert.equal((await focused(page)).pane, t2.key);
    await page.keyboard.type('echo after-f2-$((4+4))\n');
    await waitScreen(page, t2.terminalId, /^after-f2-8$/m);

    // Delete on the focused tab closes it (the terminal keeps running: closing detaches); the focus stays in the strip.
    await page.keyboard.press('Alt+Shift+M');
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    await tabUntil(page, (x) => x.role === 'tab');
    await page.keyboard.press('End');
    await page.keyboard.press('Delete');
    await eventually(async () => !(await hook.terminals(page)).includes(t2.terminalId), 5000, 'tab closed');
    assert.equal((await focused(page)).tabKey, t1.key, 'the tab now selected has the focus');
    assert.ok((await c.client.terminal.list()).some((t) => t.terminalId === t2.terminalId && !t.exited), 'the terminal still runs after its tab closed');
  });

  test('file rows are one tab stop: Up/Down/Home/End move, Enter enters a directory, goes up or downloads', async () => {
    await page.keyboard.press('Alt+Shift+M');
    // Opening the panel and typing its path is the set-up; from here on it is keys only.
    await page.click(`${sel.row('box')} [data-testid=open-files]`);
    await page.waitForSelector(`${sel.panel}[data-role=operator][data-path="~"][data-loading="0"]`, { timeout: 15_000 });
    await page.fill('[data-testid=files-path]', work);
    await page.press('[data-testid=files-path]', 'Enter');
    await page.waitForSelector(`${sel.panel}[data-path="${work}"][data-loading="0"]`);
    await page.waitForSelector(sel.file('taken.txt'));

    // Tab from the path bar reaches the rows once, on `..`; one more Tab leaves them.
    const inRows = (f: Focus) => f.tag === 'TR';
    await tabUntil(page, inRows);
    assert.equal((await focused(page)).testid, 'file-parent');
    const stops = await page.$$eval(`${sel.panel} tbody [tabindex="0"], ${sel.panel} tbody button:not([tabindex="-1"])`, (els) => els.length);
    assert.equal(stops, 1, 'one tab stop in the rows');
    await page.keyboard.press('Tab');
    assert.ok(!inRows(await focused(page)), 'Tab leaves the rows');
    await page.keyboard.press('Shift+Tab');
    assert.equal((await focused(page)).testid, 'file-parent');

    // Down: directories first, then files by name; Home and End; Up stops at the top.
    const at = async () => (await focused(page)).name;
    await page.keyboard.press('ArrowDown');
    assert.equal(await at(), 'sub');
    await page.keyboard.press('ArrowDown');
    assert.equal(await at(), 'a.txt');
    assert.deepEqual(
      await page.$$eval(`${sel.panel} tbody tr[tabindex="0"]`, (rs) => rs.map((r) => (r as HTMLElement).dataset.row)),
      ['a.txt'],
      'the tab stop moved with the focus',
    );
    await page.keyboard.press('End');
    assert.equal(await at(), 'taken.txt');
    await page.keyboard.press('Home');
    assert.equal((await focused(page)).testid, 'file-parent');
    await page.keyboard.press('ArrowUp');
    assert.equal((await focused(page)).testid, 'file-parent');

    // Enter on a directory enters it (the focus on its `..`); Enter on `..` comes back, the focus on the directory left.
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`${sel.panel}[data-path="${work}/sub"][data-loading="0"]`);
    await page.waitForSelector(sel.file('inner.txt'));
    assert.equal((await focused(page)).testid, 'file-parent');
    await page.keyboard.press('Enter');
    await page.waitForSelector(`${sel.panel}[data-path="${work}"][data-loading="0"]`);
    await eventually(async () => (await focused(page)).name === 'sub', 5000, 'the focus on sub');

    // Enter on a file downloads it.
    await page.keyboard.press('ArrowDown');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    assert.equal(dl.suggestedFilename(), 'a.txt');
    assert.equal(fs.readFileSync((await dl.path())!, 'utf8'), 'aaa\n');
  });

  test('F2 renames the focused row in place without moving the columns; a taken name is said beside it; the focus comes back to the row', async () => {
    assert.equal((await focused(page)).name, 'a.txt');
    // Narrow, where the name column has the least room to spare (a roomy window hides a shift of a few pixels).
    await page.setViewportSize({ width: 800, height: 600 });
    const before = await columns(page);
    await page.keyboard.press('F2');
    assert.equal((await focused(page)).testid, 'file-rename-input');
    assert.deepEqual(await columns(page), before, 'the columns stay where they were when the rename box opens');

    // A taken name: said beside the row, without a word about "overwrite"; the box keeps what was typed.
    await page.keyboard.type('taken'); // the stem was selected: taken.txt
    await page.keyboard.press('Enter');
    const why = page.locator(`${sel.file('a.txt')} [data-testid=file-rename-error]`);
    await why.waitFor();
    assert.match((await why.textContent()) ?? '', /^cannot rename a\.txt to taken\.txt: taken\.txt already exists here; choose another name$/);
    assert.doesNotMatch((await why.textContent()) ?? '', /overwrite/i);
    assert.equal(await page.locator('[data-testid=files-error]').count(), 0, 'not at the top of the panel');
    assert.equal(await page.inputValue(`${sel.file('a.txt')} [data-testid=file-rename-input]`), 'taken.txt');
    assert.equal((await focused(page)).testid, 'file-rename-input', 'the box keeps the keyboard to correct the name');
    assert.deepEqual(await columns(page), before, 'nor does the error move them');
    assert.equal(fs.readFileSync(path.join(work, 'a.txt'), 'utf8'), 'aaa\n');
    assert.equal(fs.readFileSync(path.join(work, 'taken.txt'), 'utf8'), 'taken\n');

    // Escape: the box closes and the row has the focus again.
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=file-rename-input]', { state: 'detached' });
    assert.equal((await focused(page)).name, 'a.txt');

    // F2, a free name, Enter: renamed, and the row under its new name has the focus.
    await page.keyboard.press('F2');
    await page.keyboard.type('renamed');
    await page.keyboard.press('Enter');
    await page.waitForSelector(sel.file('renamed.txt'));
    await eventually(async () => (await focused(page)).name === 'renamed.txt', 5000, 'the focus on the renamed row');
    assert.equal(fs.readFileSync(path.join(work, 'renamed.txt'), 'utf8'), 'aaa\n');
    assert.ok(!fs.existsSync(path.join(work, 'a.txt')));
    assert.deepEqual(await columns(page), before);

    // Delete asks, its answer focused; Escape keeps the file and gives the row the focus; Delete, Enter deletes.
    await page.keyboard.press('Delete');
    assert.equal((await focused(page)).testid, 'file-delete-confirm');
    await page.keyboard.press('Escape');
    assert.equal((await focused(page)).name, 'renamed.txt');
    assert.ok(fs.existsSync(path.join(work, 'renamed.txt')));
    await page.keyboard.press('Delete');
    await page.keyboard.press('Enter');
    await page.waitForSelector(sel.file('renamed.txt'), { state: 'detached' });
    assert.ok(!fs.existsSync(path.join(work, 'renamed.txt')));
    await eventually(async () => (await focused(page)).tag === 'TR', 5000, 'a row has the focus after the delete');
    assert.equal((await focused(page)).name, 'taken.txt');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('ran without an error in the page', () => assert.deepEqual(pageErrors, []));
});
