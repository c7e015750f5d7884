// What the browser tests share, as Playwright fixtures: a real control plane
// on a loopback port with a real agent ("box") behind it, whose shells run in
// real PTYs (test/helpers/cluster.ts, the same processes the node:test suites
// start), and a browser context opened the way the console is used.
//
// The cluster is worker-scoped and set per group with
// test.use({ clusterSetup: { group, ...options } }): a worker-scoped option
// given a value of its own puts that group in a worker of its own, so each
// group gets a fresh control plane, agent and Chromium, stopped when the
// group is done; no state leaks from one group's tests into another's.
import { test as base, type Browser, type BrowserContext, type CDPSession, type Page } from '@playwright/test';
import { startCluster, type Cluster, type ClusterOptions } from '../test/helpers/cluster';

export interface ClusterSetup extends ClusterOptions {
  /** Names the group: groups with equal options still get a cluster each. */
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

export { expect } from '@playwright/test';

/**
 * A context as the console tests used before Playwright's runner: a
 * 1280x800 window. Tests in a serial group share one, as a person keeps one
 * browser open; Playwright screenshots its pages and records its trace on a
 * failure like any other.
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
