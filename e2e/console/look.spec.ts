// How the browser console looks and reads (issue 16), end to end: Chromium
// on the console a real control plane serves, with a real agent and shell
// behind it. Underscores show at the default
// font settings (checked in the screenshot's pixels, at every size the
// settings offer); every ANSI colour of both themes reads at 4.5:1 and the
// whole page follows the system's light/dark setting or the user's choice;
// the shell's OSC title names the tab and the window; search counts, searches
// as one types, and has its toggles and a close button; the OAuth sign-in
// page follows the same theme and starts in the user name field; a new
// user's empty machine list says how to enroll a machine.
// Serial: one page and one terminal, the tests going on from each other's.
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from '@playwright/test';
import { PNG } from 'pngjs';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'look' } });

const hook = {
  terminals: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]),
  screen: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.screenText(x) as string, id),
  grid: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.grid(x) as { cols: number; rows: number }, id),
  theme: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.theme(x) as Record<string, string>, id),
  tabs: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.tabs() as { key: string; terminalId: string; renderer: string }[]),
};

const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  tab: (id: string) => `[data-testid=tab][data-terminal-id="${id}"][data-mode=operator]`,
  term: (id: string) => `[data-testid=terminal][data-terminal-id="${id}"][data-mode=operator]`,
};

async function waitScreen(page: Page, id: string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  let last = '';
  try {
    await eventually(async () => re.test((last = await hook.screen(page, id))), timeoutMs, `${re} on ${id}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the screen shows:\n${last.split('\n').slice(-15).join('\n')}`);
  }
  return last;
}

async function typeInto(page: Page, id: string, text: string): Promise<void> {
  await page.click(sel.tab(id));
  await page.click(sel.term(id));
  await page.keyboard.type(text);
}

async function openTab(page: Page, machine = 'box'): Promise<string> {
  const before = await hook.terminals(page);
  await page.click('[data-testid=machines-tab]');
  await page.click(`${sel.row(machine)} [data-testid=open-terminal]`);
  const id = (await eventually(async () => (await hook.terminals(page)).find((t) => !before.includes(t)), 10_000, 'a new attached tab'))!;
  await waitScreen(page, id, /\S/);
  return id;
}

// WCAG 2 relative luminance and contrast ratio, computed here from the
// colours themselves (not from the console's code).
function rgb(color: string): [number, number, number] {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (hex) {
    const n = parseInt(hex[1], 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }
  const fn = /^rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(color);
  assert.ok(fn, `a colour: ${color}`);
  return [Number(fn[1]), Number(fn[2]), Number(fn[3])];
}
function luminance(color: string): number {
  const [r, g, b] = rgb(color).map((v) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}
const ANSI = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];
const ANSI16 = [...ANSI, ...ANSI.map((n) => `bright${n[0].toUpperCase()}${n.slice(1)}`)];
const isDark = (color: string) => luminance(color) < 0.2;
/**
 * A pixel is ink when a channel differs from the background by more than
 * this (of 255): a quarter of the way to the foreground, visible; blank
 * cells differ by 0.
 */
const INK_THRESHOLD = 48;

/** The page's own background (body), and the header's, as the browser computed them. */
const pageColours = (page: Page) =>
  page.evaluate(() => ({
    body: getComputedStyle(document.body).backgroundColor,
    header: getComputedStyle(document.querySelector('header') ?? document.body).backgroundColor,
    text: getComputedStyle(document.body).color,
  }));

test.describe('console look', () => {
  let c: Cluster;
  let context: BrowserContext;
  let web: string;
  let page: Page;
  let id = '';
  const pageErrors: string[] = [];

  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    web = (await c.client.auth.serverInfo()).webUrl;
    context = await consoleContext(browser);
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${web}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
    id = await openTab(page);
    // A plain prompt, so no PS1 or PROMPT_COMMAND of the machine's sets a title or adds text the tests look for.
    await typeInto(page, id, "PROMPT_COMMAND=; PS1='$ '\n");
  });
  test.afterAll(async () => {
    await context?.close();
  });

  /**
   * Ink in the cells [col, col+n) of `row`: for each cell, its pixel rows,
   * each the count of pixels that differ clearly from the terminal's
   * background. From a screenshot of exactly that strip.
   */
  async function inkInCells(row: number, col: number, n: number): Promise<{ rows: number[]; width: number }[]> {
    const { cols, rows } = await hook.grid(page, id);
    const screen = (await page.locator(`${sel.term(id)} .xterm-screen`).boundingBox())!;
    const cw = screen.width / cols;
    const ch = screen.height / rows;
    const png = await page.screenshot({ clip: { x: screen.x + col * cw, y: screen.y + row * ch, width: n * cw, height: ch }, scale: 'css' });
    const bg = rgb((await hook.theme(page, id)).background);
    const img = PNG.sync.read(png);
    const ink: number[][] = [];
    for (let y = 0; y < img.height; y++) {
      const line: number[] = [];
      for (let x = 0; x < img.width; x++) {
        const i = (y * img.width + x) * 4;
        const diff = Math.max(Math.abs(img.data[i] - bg[0]), Math.abs(img.data[i + 1] - bg[1]), Math.abs(img.data[i + 2] - bg[2]));
        line.push(diff > INK_THRESHOLD ? 1 : 0);
      }
      ink.push(line);
    }
    // Per cell (a pixel in from each side, so a neighbour's antialiasing does not count): ink per pixel row.
    const perCell: { rows: number[]; width: number }[] = [];
    for (let k = 0; k < n; k++) {
      const x0 = Math.round(k * cw) + 1;
      const x1 = Math.round((k + 1) * cw) - 1;
      perCell.push({ rows: ink.map((line) => line.slice(x0, x1).reduce((a, v) => a + v, 0)), width: x1 - x0 });
    }
    return perCell;
  }

  /** The underscores on row 0 have a visible stroke in the lower part of their cells; the blank cells after them none. */
  async function assertUnderscores(label: string) {
    const cells = await inkInCells(0, 0, 7);
    for (let k = 0; k < 4; k++) {
      const rowsInk = cells[k].rows;
      const h = rowsInk.length;
      const inked = rowsInk.map((v, y) => (v > 0 ? y : -1)).filter((y) => y >= 0);
      assert.ok(inked.length > 0, `${label}: underscore ${k} has no visible pixel in its cell (ink per pixel row: ${rowsInk.join(',')})`);
      assert.ok(
        inked.every((y) => y >= h / 2),
        `${label}: underscore ${k}'s ink is in the lower half of its ${h} px cell (rows ${inked.join(',')})`,
      );
      // A stroke, not a stray pixel: at least half the cell's width in one pixel row.
      assert.ok(
        Math.max(...rowsInk) >= Math.ceil(cells[k].width / 2),
        `${label}: underscore ${k} is a horizontal stroke (ink per row: ${rowsInk.join(',')} of ${cells[k].width} px)`,
      );
    }
    for (let k = 4; k < 7; k++) assert.equal(cells[k].rows.reduce((a, v) => a + v, 0), 0, `${label}: blank cell ${k} has no ink`);
  }

  test('draws underscores at the default font size and line height, and at every size the settings offer', async () => {
    assert.equal((await hook.tabs(page)).find((t) => t.terminalId === id)?.renderer, 'dom', 'the DOM renderer (no GPU here), where the clipping was');
    assert.equal(await page.evaluate(() => localStorage.getItem('cmdop.settings')), null, 'a fresh profile: the default settings');
    await typeInto(page, id, "clear; printf '%s\\n' ____\n");
    await waitScreen(page, id, /(^|\n)____\n\$ ?$/);
    await assertUnderscores('default settings (14 px)');
    await page.click('[data-testid=settings-button]');
    for (let size = 8; size <= 32; size++) {
      await page.fill('[data-testid=font-size]', String(size));
      // Not a stale frame: the rows are drawn at the new size, then a frame passes.
      await page.waitForFunction(
        ([s, px]) => getComputedStyle(document.querySelector(`${s} .xterm-rows`)!).fontSize === px,
        [sel.term(id), `${size}px`] as const,
        { timeout: 5000 },
      );
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      // xterm refits (and the shell redraws) over a few frames: retried until it holds, for up to 3 s.
      await eventually(async () => (await assertUnderscores(`${size} px`), true), 3000, `underscores at ${size} px`);
    }
    await page.fill('[data-testid=font-size]', '14');
    await page.keyboard.press('Escape');
  });

  test('every ANSI colour reads at 4.5:1 on its background in both themes; page and terminal follow the system, and the setting overrides it', async () => {
    const check = async (want: 'light' | 'dark', why: string) => {
      await eventually(async () => isDark((await hook.theme(page, id)).background) === (want === 'dark'), 5000, `${why}: the terminal is ${want}`);
      const theme = await hook.theme(page, id);
      for (const name of [...ANSI16, 'foreground']) {
        assert.ok(theme[name], `${why}: the theme sets ${name}`);
        const r = contrast(theme[name], theme.background);
        assert.ok(r >= 4.5, `${why}: ${name} ${theme[name]} on ${theme.background} is ${r.toFixed(2)}:1`);
      }
      const colours = await pageColours(page);
      assert.equal(isDark(colours.body), want === 'dark', `${why}: the page's background ${colours.body} is ${want}`);
      assert.equal(isDark(colours.header), want === 'dark', `${why}: the header ${colours.header} is ${want}`);
      assert.ok(contrast(colours.text, colours.body) >= 4.5, `${why}: the page's text ${colours.text} on ${colours.body}`);
    };
    // The default follows the system, and its changes.
    await check('dark', 'system dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await check('light', 'system light');
    // The setting pins a theme against the system's.
    await page.click('[data-testid=settings-button]');
    await page.selectOption('[data-testid=theme]', 'dark');
    await check('dark', 'set dark, system light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.selectOption('[data-testid=theme]', 'light');
    await check('light', 'set light, system dark');
    // It is remembered: a reload comes back light although the system is dark.
    await page.keyboard.press('Escape');
    await page.reload();
    await page.waitForSelector(sel.term(id));
    await waitScreen(page, id, /\$ ?$/);
    await check('light', 'set light, after a reload');
    await page.click('[data-testid=settings-button]');
    await page.selectOption('[data-testid=theme]', 'system');
    await check('dark', 'back to the system (dark)');
    await page.keyboard.press('Escape');
  });

  test("the shell's OSC 0/2 title names the tab, with the machine, and the window", async () => {
    const title = () => page.locator(`${sel.tab(id)} [data-testid=tab-title]`).textContent();
    assert.match((await title()) ?? '', /^box [0-9a-f]{8}$/, 'before: machine and terminal id');
    await typeInto(page, id, "printf '\\e]0;hello\\a'\n");
    await eventually(async () => (await title()) === 'hello — box', 5000, 'the tab shows the OSC 0 title');
    assert.equal(await page.title(), 'hello — box');
    await typeInto(page, id, "printf '\\e]2;vim notes.txt\\a'\n");
    await eventually(async () => (await title()) === 'vim notes.txt — box', 5000, 'the tab shows the OSC 2 title');
    assert.equal(await page.title(), 'vim notes.txt — box');
    // The machines view is not a terminal: the window says what it is.
    await page.click('[data-testid=machines-tab]');
    await eventually(async () => (await page.title()) === 'CMDOP console', 5000, 'the window title on the machines view');
    await page.click(sel.tab(id));
    await eventually(async () => (await page.title()) === 'vim notes.txt — box', 5000, 'the window title back on the tab');
  });

  test('search counts matches as one types, has case / whole-word / regex toggles, and closes by Esc or ×', async () => {
    // 17 × "hit N", 3 × "HIT", 2 × "hitch"; the command line itself spells them with escapes, so it does not match.
    await typeInto(page, id, "clear; printf 'h\\x69t %s\\n' $(seq 17); printf 'H\\x49T%.0s\\n' 1 2 3; printf 'h\\x69tch%.0s\\n' 1 2\n");
    await waitScreen(page, id, /hit 17\n(HIT\n){3}(hitch\n){2}\$ ?$/);
    const result = () => page.locator('[data-testid=search-result]').textContent();
    const expectResult = async (re: RegExp, why: string) => {
      let last = '';
      await eventually(async () => re.test((last = (await result()) ?? '')), 5000, `${why}: ${re} (shows "${last}")`);
    };
    // The addon's highlights are xterm decorations, drawn on the next frame.
    const decorations = () => page.locator(`${sel.term(id)} .xterm-decoration`).count();
    await page.keyboard.press('Control+Shift+F');
    // No Enter: the count comes as the text is typed.
    await page.keyboard.type('hit');
    await expectResult(/^\d+ of 22$/, 'hit, any case, anywhere');
    await eventually(async () => (await decorations()) >= 22, 3000, 'every match is highlighted');
    await page.click('[data-testid=search-case]');
    assert.equal(await page.locator('[data-testid=search-case]').getAttribute('aria-pressed'), 'true');
    await expectResult(/^\d+ of 19$/, 'match case');
    await page.click('[data-testid=search-word]');
    await expectResult(/^\d+ of 17$/, 'match case, whole word');
    // Enter and Shift+Enter step through them.
    await page.keyboard.press('Enter');
    const at = Number(((await result()) ?? '').split(' ')[0]);
    await page.keyboard.press('Enter');
    await expectResult(new RegExp(`^${(at % 17) + 1} of 17$`), 'Enter: the next match');
    await page.keyboard.press('Shift+Enter');
    await expectResult(new RegExp(`^${at} of 17$`), 'Shift+Enter: the previous one');
    await page.click('[data-testid=search-regex]');
    await page.fill('[data-testid=search-input]', 'hit 1[0-9]');
    await expectResult(/^\d+ of 8$/, 'regex hit 1[0-9]');
    await page.fill('[data-testid=search-input]', 'hit (');
    await expectResult(/^invalid regular expression$/, 'a regex that does not compile');
    await page.fill('[data-testid=search-input]', 'nothing-like-this');
    await expectResult(/^no matches$/, 'no match');
    // Esc closes and clears the highlights; the keyboard is back in the terminal.
    await page.fill('[data-testid=search-input]', 'hit');
    await expectResult(/^\d+ of 17$/, 'hit again');
    await page.keyboard.press('Escape');
    await page.waitForSelector('[data-testid=search-bar]', { state: 'detached' });
    await eventually(async () => (await decorations()) === 0, 3000, 'no highlight left after Esc');
    assert.ok(await page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea')), 'focus is back in the terminal');
    // The × button closes it too.
    await page.keyboard.press('Control+Shift+F');
    await page.keyboard.type('hitch');
    await expectResult(/^\d+ of 2$/, 'hitch');
    await page.click('[data-testid=search-close]');
    await page.waitForSelector('[data-testid=search-bar]', { state: 'detached' });
    await eventually(async () => (await decorations()) === 0, 3000, 'no highlight left after ×');
  });

  test('the OAuth sign-in page follows the system theme and starts in the user name; a new user is told how to enroll a machine', async ({ browser }) => {
    await c.client.auth.addUser('newbie', { password: 'newbie-password-1' });
    // A context of its own (its own storage, like another browser): in this one the live console tab would hand over its sign-in (signin.spec.ts).
    const lone = await consoleContext(browser);
    const p = await lone.newPage();
    const errors: string[] = [];
    p.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    try {
      await p.emulateMedia({ colorScheme: 'dark' });
      await p.goto(`${web}/`);
      assert.ok(isDark((await pageColours(p)).body), 'the console sign-in page is dark');
      await p.click('[data-testid=sign-in]');
      await p.waitForURL(/\/interaction\//, { timeout: 15_000 });
      const signIn = async (want: 'light' | 'dark') => {
        const colours = await p.evaluate(() => ({
          body: getComputedStyle(document.body).backgroundColor,
          main: getComputedStyle(document.querySelector('main')!).backgroundColor,
          text: getComputedStyle(document.querySelector('main')!).color,
        }));
        assert.equal(isDark(colours.body), want === 'dark', `sign-in page background ${colours.body} is ${want}`);
        assert.equal(isDark(colours.main), want === 'dark', `sign-in box ${colours.main} is ${want}`);
        assert.ok(contrast(colours.text, colours.main) >= 4.5, `its text ${colours.text} on ${colours.main}`);
      };
      await signIn('dark');
      assert.equal(await p.evaluate(() => document.activeElement?.id), 'username', 'the cursor is in the user name field');
      await p.emulateMedia({ colorScheme: 'light' });
      await signIn('light');
      await p.emulateMedia({ colorScheme: 'dark' });
      // Typing straight away goes into the user name.
      await p.keyboard.type('newbie');
      await p.fill('input[name=password]', 'wrong-password-1');
      await p.click('button[type=submit]:not([name=deny])');
      await p.waitForSelector('.error');
      // After a wrong password the name is kept and the cursor waits in the password.
      assert.equal(await p.inputValue('input[name=username]'), 'newbie');
      assert.equal(await p.evaluate(() => document.activeElement?.id), 'password');
      await p.keyboard.type('newbie-password-1');
      await p.keyboard.press('Enter');
      await p.waitForSelector('[data-testid=identity]:text("newbie")', { timeout: 15_000 });
      // No machine of theirs: how to add one, with the commands as code and the enrollment step.
      const empty = p.locator('[data-testid=machines-empty]');
      await empty.waitFor({ timeout: 10_000 });
      const text = (await empty.textContent()) ?? '';
      assert.doesNotMatch(text, /`/, 'no literal backticks');
      const code = await empty.locator('code').allTextContents();
      assert.ok(code.some((t) => /^cmdop agents enroll --name NAME$/.test(t)), `the enrollment token step: ${code.join(' | ')}`);
      assert.ok(code.some((t) => /^cmdop agent .*--enroll-token TOKEN$/.test(t)), `the enrollment on the machine: ${code.join(' | ')}`);
      assert.ok(code.some((t) => /^cmdop login/.test(t)), `signing the CLI in: ${code.join(' | ')}`);
      assert.equal(await empty.locator('ol > li').count(), 3, 'three steps, in order');
      assert.deepEqual(errors, [], 'no CSP violation or error on the sign-in pages');
    } finally {
      await lone.close();
    }
  });

  test('ran under the console CSP without a single error in the page', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
