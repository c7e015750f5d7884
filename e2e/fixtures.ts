// What the browser tests share, as Playwright fixtures: a real control plane
// on a loopback port with a real agent ("box") behind it, whose shells run in
// real PTYs (test/helpers/cluster.ts, the same processes the node:test suites
// start), and a browser context opened the way the console is used.
//
// The cluster is worker-scoped and set per spec file, at its top level (a
// worker-scoped option cannot be set inside a describe):
// test.use({ clusterSetup: { group: 'name', ...options } }). Playwright gives
// each distinct value a worker of its own, so with a group name per file
// each file gets a fresh control plane, agent and Chromium, stopped when it
// is done; no state leaks from one file's tests into another's.
import { test as base, type Browser, type BrowserContext, type CDPSession, type Page } from '@playwright/test';
import { startCluster, type Cluster, type ClusterOptions } from '../test/helpers/cluster';

export interface ClusterSetup extends ClusterOptions {
  /** Names the spec file's group: files with equal options still get a cluster each. */
  group: string;
  /** The machine the admin's SDK client acts on (client.setMachine). */
  machine?: string;
}

export const test = base.extend<object, { clusterSetup: ClusterSetup; cluster: Cluster }>({
  clusterSetup: [{ group: 'default', machine: 'box' }, { scope: 'worker', option: true }],
  cluster: [
    async ({ clusterSetup }, use) => {
      const { group: _group, machine = 'box', ...options } = clusterSetup;
      const c = await startCluster(options);
      try {
        c.client.setMachine(machine);
        await use(c);
      } finally {
        await c.stop();
      }
    },
    // Starting processes on a busy 2-core machine can take a while.
    { scope: 'worker', timeout: 120_000 },
  ],
});

/**
 * The browser context a spec file's tests share (not Playwright's fresh one
 * per test: each test goes on from the tabs, sign-ins and files the last
 * left, as a person keeps one browser open), in a 1280x800 window.
 * Playwright screenshots its pages and records its trace on a failure like
 * those of its own contexts.
 */
export function consoleContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width: 1280, height: 800 } });
}

/**
 * The page's memory in use, in bytes: the JS heap (CDP Performance.getMetrics'
 * JSHeapUsedSize) plus ArrayBuffer backing stores, which live outside it and
 * are where unbounded output would pile up.
 */
export async function heapUsed(page: Page): Promise<number> {
  let s = cdp.get(page);
  if (!s) {
    s = await page.context().newCDPSession(page);
    await s.send('Performance.enable');
    cdp.set(page, s);
  }
  const { metrics } = await s.send('Performance.getMetrics');
  const usage = (await s.send('Runtime.getHeapUsage')) as { backingStorageSize?: number };
  return (metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN) + (usage.backingStorageSize ?? 0);
}
/** One CDP session per page, opened on first use (sampling often must not open a session each time). */
const cdp = new WeakMap<Page, CDPSession>();
