// What the file panel's specs share: selectors, the steps a person takes
// (open the panel, go to a directory, drop files or folders on it), and ways
// to compare what arrived on the machine's disk.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';

export const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
export const MiB = 1024 * 1024;

/** Partial uploads the agent keeps beside a destination (`.NAME.cmdop-ID.part`). */
export const partials = (dir: string) => fs.readdirSync(dir).filter((n) => /\.cmdop-.*\.part$/.test(n));

export const sel = {
  row: (m: string) => `[data-testid=machine-row][data-machine="${m}"]`,
  panel: '[data-testid=files-panel]',
  file: (name: string) => `[data-testid=files-panel] [data-testid=file-row][data-name="${name}"]`,
  transfer: (name: string, state?: string) =>
    `[data-testid=files-panel] [data-testid=file-transfer][data-name="${name}"]${state ? `[data-state=${state}]` : ''}`,
};

/** Opens `machine`'s file panel and waits until it knows the role and has listed `~`. */
export async function openPanel(page: Page, role: 'operator' | 'observer', machine = 'box'): Promise<void> {
  await page.click(`${sel.row(machine)} [data-testid=open-files]`);
  await page.waitForSelector(`${sel.panel}[data-machine="${machine}"][data-role=${role}][data-path="~"][data-loading="0"]`, { timeout: 15_000 });
}

export async function goTo(page: Page, dir: string): Promise<void> {
  await page.fill('[data-testid=files-path]', dir);
  await page.click('[data-testid=files-go]');
  await page.waitForSelector(`${sel.panel}[data-path="${dir}"][data-loading="0"]`);
}

/** Names in the listing, in order. */
export const listed = (page: Page) =>
  page.$$eval('[data-testid=files-panel] [data-testid=file-row]', (rows) => rows.map((r) => (r as HTMLElement).dataset.name ?? ''));

/**
 * Drops files and folders from this machine's disk on the panel, the way the
 * desktop does: through Chromium's own drag and drop (CDP
 * Input.dispatchDragEvent with paths), so a folder arrives as a real
 * FileSystemDirectoryEntry that the page walks, not as a stand-in.
 */
export async function dropPaths(page: Page, paths: string[]): Promise<void> {
  const panel = page.locator(sel.panel);
  await panel.scrollIntoViewIfNeeded();
  const box = (await panel.boundingBox())!;
  const at = { x: Math.round(box.x + box.width / 2), y: Math.round(Math.max(0, box.y) + 12) };
  const cdp = await page.context().newCDPSession(page);
  try {
    const data = { items: [], files: paths, dragOperationsMask: 1 };
    for (const type of ['dragEnter', 'dragOver', 'drop'] as const) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
  } finally {
    await cdp.detach();
  }
}

/** A directory tree as {relative path: 'dir' or the file's SHA-256}, to compare two trees byte for byte. */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      if (fs.statSync(full).isDirectory()) {
        out[r] = 'dir';
        walk(full, r);
      } else out[r] = `${fs.statSync(full).size}:${sha(fs.readFileSync(full))}`;
    }
  };
  walk(root, '');
  return out;
}

/** Partial uploads anywhere under `root`. */
export const partialsUnder = (root: string): string[] =>
  fs.existsSync(root) ? (fs.readdirSync(root, { recursive: true }) as string[]).filter((n) => /\.cmdop-.*\.part$/.test(n)) : [];

/** Drops files (built in the page from these bytes) on the panel, as a drag from the desktop would. */
export async function dropFiles(page: Page, files: { name: string; data: Buffer }[]): Promise<void> {
  const dt = await page.evaluateHandle((fs) => {
    const t = new DataTransfer();
    for (const f of fs) t.items.add(new File([Uint8Array.from(atob(f.b64), (ch) => ch.charCodeAt(0))], f.name));
    return t;
  }, files.map((f) => ({ name: f.name, b64: f.data.toString('base64') })));
  await page.dispatchEvent(sel.panel, 'dragenter', { dataTransfer: dt });
  await page.dispatchEvent(sel.panel, 'dragover', { dataTransfer: dt });
  await page.dispatchEvent(sel.panel, 'drop', { dataTransfer: dt });
}
