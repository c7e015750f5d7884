// Runs once, before the console project (its dependency in
// playwright.config.ts; a run of only the Electron project skips it): make
// sure the Chromium the config points at is there, installing Debian's as
// root where it may (test/helpers/chromium.ts). Failing here stops the
// browser tests with the one command to run, instead of each failing alone.
import { test } from '@playwright/test';
import { ensureChromium } from '../test/helpers/chromium';

test('a Chromium for the console tests', () => {
  // apt-get update and install on a fresh machine: minutes, on a slow mirror.
  test.setTimeout(20 * 60_000);
  const path = ensureChromium();
  test.info().annotations.push({ type: 'chromium', description: path });
});
