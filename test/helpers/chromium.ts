// Debian's Chromium driven by playwright-core (which never downloads a
// browser): headless, a fresh profile per launch, and screenshots of every
// open page when a test step fails, saved where the failure message says.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type CDPSession, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CMDOP_CHROMIUM || '/usr/bin/chromium';

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  // Software WebGL (SwiftShader), so the console's WebGL renderer can be tested without a GPU.
  '--enable-unsafe-swiftshader',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** Where failure screenshots go (created on first use). */
  shotsDir: string;
  newPage(): Promise<Page>;
  /** Runs `fn`; when it throws, screenshots every open page and adds their path to the error. */
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /**
   * The page's memory in use, in bytes: the JS heap (CDP Performance.getMetrics'
   * JSHeapUsedSize) plus ArrayBuffer backing stores, which live outside it and
   * are where unbounded output would pile up.
   */
  heapUsed(page: Page): Promise<number>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (.ci/run does), or set CMDOP_CHROMIUM`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-chromium-'));
  // headless: true makes playwright pass --headless; the profile is ours and fresh.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 800 },
    timeout: 60_000,
  });
  let shotsDir = '';
  const cdp = new Map<Page, CDPSession>();
  const b: Browser = {
    context,
    get shotsDir() {
      if (!shotsDir) shotsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-console-shots-'));
      return shotsDir;
    },
    newPage: () => context.newPage(),
    async step(name, fn) {
      try {
        return await fn();
      } catch (e) {
        const saved: string[] = [];
        const safe = name.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 60);
        for (const [i, page] of context.pages().entries()) {
          if (page.isClosed() || page.url() === 'about:blank') continue;
          const file = path.join(b.shotsDir, `${safe}-page${i}.png`);
          try {
            await page.screenshot({ path: file, timeout: 10_000 });
            saved.push(file);
          } catch {
            // A hung page cannot be captured; the error below still says so.
          }
        }
        const err = e instanceof Error ? e : new Error(String(e));
        err.message += `\n  screenshots (${saved.length}): ${saved.length ? b.shotsDir : 'none could be taken'}`;
        throw err;
      }
    },
    async heapUsed(page) {
      let s = cdp.get(page);
      if (!s) {
        s = await context.newCDPSession(page);
        await s.send('Performance.enable');
        cdp.set(page, s);
      }
      const { metrics } = await s.send('Performance.getMetrics');
      const usage = (await s.send('Runtime.getHeapUsage')) as { backingStorageSize?: number };
      return (metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN) + (usage.backingStorageSize ?? 0);
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
  return b;
}
