// The browser and Electron end-to-end tests (e2e/); everything else is
// node:test (test/). `npm test` runs both. Chromium: the one
// test/helpers/chromium.ts finds (CMDOP_CHROMIUM, else Playwright's own,
// else the system's), installed by the `chromium` setup project where it
// may be; Playwright's `npx playwright install` is not needed.
import os from 'node:os';
import { defineConfig } from '@playwright/test';
import { CHROMIUM_FLAGS, chromiumPath } from './test/helpers/chromium';

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'test-results/e2e',
  // 2-core machines: two workers at most, each a browser plus a control plane, an agent and shells.
  workers: Math.max(1, Math.min(2, os.availableParallelism())),
  // A flaky test shows as a failure, not as a pass on the second try.
  retries: 0,
  forbidOnly: !!process.env.CI,
  // As node:test's --test-timeout: CI machines are busy. Each test's own waits are tighter.
  timeout: 300_000,
  reporter: [['list']],
  use: {
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    actionTimeout: 60_000,
    navigationTimeout: 60_000,
  },
  projects: [
    { name: 'chromium', testMatch: 'chromium.setup.ts' },
    {
      name: 'console',
      testDir: 'e2e/console',
      dependencies: ['chromium'],
      use: {
        browserName: 'chromium',
        headless: true,
        viewport: { width: 1280, height: 800 },
        launchOptions: { executablePath: chromiumPath(), args: CHROMIUM_FLAGS, timeout: 60_000 },
      },
    },
    // Skipped, saying why, where the Electron binary is not installed (it cannot be downloaded here).
    { name: 'electron', testDir: 'e2e/electron' },
  ],
});
