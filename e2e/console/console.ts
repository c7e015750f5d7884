// What the console's specs share: reading the console's test hook, the
// selectors of its parts, and the steps a person takes (open a tab, type,
// paste).
import type { Page } from '@playwright/test';
import { test } from '../fixtures';
import { type Cluster, eventually } from '../../test/helpers/cluster';

/** The console's read-only test hook (app/renderer/src/testHook.ts), read from the page. */
export const hook = {
  terminals: (page: Page) => page.evaluate(() => (globalThis as any).__cmdop.terminals() as string[]),
  screen: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.screenText(x) as string, id),
  bytes: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.bytes(x) as number, id),
  written: (page: Page, id: string) => page.evaluate((x) => (globalThis as any).__cmdop.written(x) as number, id),
  tabs: (page: Page) =>
    page.evaluate(() => (globalThis as any).__cmdop.tabs() as { key: string; terminalId: string; mode: 'operator' | 'observer'; renderer: string }[]),
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

export const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  tab: (id: string, mode = 'operator') => `[data-testid=tab][data-terminal-id="${id}"][data-mode=${mode}]`,
  term: (id: string, mode = 'operator') => `[data-testid=terminal][data-terminal-id="${id}"][data-mode=${mode}]`,
  pane: (key: string) => `[data-testid=terminal-pane][data-tab-key="${key}"]`,
  rowTerminal: (m: string, id: string) => `[data-testid=machine-row][data-machine="${m}"] [data-testid=machine-terminal][data-terminal-id="${id}"]`,
};

/** Activates the tab and types into its terminal as keystrokes. */
export async function typeInto(page: Page, id: string, text: string, mode = 'operator'): Promise<void> {
  if ((await page.locator(sel.tab(id, mode)).count()) > 0) await page.click(sel.tab(id, mode));
  await page.click(sel.term(id, mode));
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

/** The text of the first element matching `selector`. */
export const text = async (page: Page, selector: string) => (await page.locator(selector).first().textContent()) ?? '';

/** Input the control plane refused on `terminalId` since `sinceMs` (its refusals are audited). */
export async function refusedInputs(c: Cluster, terminalId: string, sinceMs: number) {
  const entries = await c.client.auth.audit({ machine: 'box', sinceMs });
  return entries.filter((e) => e.action === 'input' && !e.ok && e.terminalId === terminalId).map((e) => `${e.actor}: ${e.detail}`);
}

/** A measurement worth keeping with the results: in the report's annotations, and printed. */
export function report(text: string): void {
  test.info().annotations.push({ type: 'measured', description: text });
  console.log(text);
}

/** Runs `script` on the machine through the SDK (not through the console). */
export async function sh(c: Cluster, script: string): Promise<string> {
  const r = await c.client.terminal.execute(['sh', '-c', script]);
  return r.stdout;
}
