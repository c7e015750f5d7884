// Driving the browser console from a test: its read-only test hook
// (app/renderer/src/testHook.ts), selectors, and what a person does (open a
// shell, type). The same steps as test/console.test.ts's, shared by the
// console-*.test.ts files.
import type { Page } from 'playwright-core';
import { eventually } from './cluster';

export const hook = {
  terminals: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]),
  screen: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.screenText(x) as string, id),
  tabs: (page: Page) =>
    page.evaluate(() => (globalThis as any).__cmdop.tabs() as { key: string; terminalId: string; mode: 'operator' | 'observer'; renderer: string }[]),
};

export const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  rowTerminal: (m: string, id: string) => `[data-testid=machine-row][data-machine="${m}"] [data-testid=machine-terminal][data-terminal-id="${id}"]`,
  tab: (id: string, mode = 'operator') => `[data-testid=tab][data-terminal-id="${id}"][data-mode=${mode}]`,
  term: (id: string, mode = 'operator') => `[data-testid=terminal][data-terminal-id="${id}"][data-mode=${mode}]`,
  pane: (key: string) => `[data-testid=terminal-pane][data-tab-key="${key}"]`,
};

/** Waits until the terminal's screen matches; the failure shows what the screen had. */
export async function waitScreen(page: Page, id: string, re: RegExp, timeoutMs = 10_000): Promise<string> {
  let last = '';
  try {
    await eventually(async () => re.test((last = await hook.screen(page, id))), timeoutMs, `${re} on ${id}`);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the screen shows:\n${last.split('\n').slice(-15).join('\n')}`);
  }
  return last;
}

/** Activates the tab and types into its terminal as keystrokes. */
export async function typeInto(page: Page, id: string, text: string): Promise<void> {
  if ((await page.locator(sel.tab(id)).count()) > 0) await page.click(sel.tab(id));
  await page.click(sel.term(id));
  await page.keyboard.type(text);
}

/** Opens a shell from the machines view; returns its terminal id once attached and prompting. */
export async function openTab(page: Page, machine = 'box'): Promise<string> {
  const before = await hook.terminals(page);
  await page.click('[data-testid=machines-tab]');
  await page.click(`${sel.row(machine)} [data-testid=open-terminal]`);
  const id = (await eventually(async () => (await hook.terminals(page)).find((t) => !before.includes(t)), 10_000, 'a new attached tab'))!;
  await waitScreen(page, id, /\S/); // the prompt
  return id;
}

/** The key of the operator tab showing `terminalId`. */
export async function tabKey(page: Page, terminalId: string): Promise<string> {
  return (await hook.tabs(page)).find((t) => t.terminalId === terminalId && t.mode === 'operator')!.key;
}

/** Pastes `text` into the tab's terminal the way the browser does (a paste event on xterm's textarea). */
export async function paste(page: Page, key: string, text: string): Promise<void> {
  await page.evaluate(
    ({ pane, text }) => {
      const ta = document.querySelector(`${pane} textarea`) as HTMLTextAreaElement;
      const dt = new DataTransfer();
      dt.setData('text/plain', text);
      ta.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    },
    { pane: sel.pane(key), text },
  );
}
