// The real desktop app in the real Electron binary, driven by Playwright's
// Electron support, under a virtual display. It needs the binary, which these
// machines cannot download (npm run electron:fetch): where it is missing the
// test is skipped and says why. Everything it exercises through Electron is
// also covered under plain Node by test/desktop.test.ts; this checks the
// wiring to Electron itself: hardened windows, the preload bridge, window.open.
// Playwright records Electron's window neither in screenshots nor in traces
// by itself (its recorder follows browsers only): this test keeps both on
// failure itself, as the config asks of every test.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { _electron, test } from '@playwright/test';
import { ROOT } from '../../test/helpers/cluster';

const MAIN = path.join(ROOT, 'dist', 'app', 'main', 'main.js');

function electronBinary(): string | undefined {
  try {
    const p = require('electron') as unknown as string; // the binary's path, when it was downloaded
    return fs.existsSync(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

/** A display: the one there is, or a private Xvfb. */
async function display(): Promise<{ env: NodeJS.ProcessEnv; xvfb?: ChildProcess } | string> {
  if (process.env.DISPLAY) return { env: {} };
  if (spawnSync('sh', ['-c', 'command -v Xvfb']).status !== 0) return 'no DISPLAY and no Xvfb (apt-get install xvfb)';
  const n = 90 + Math.floor(Math.random() * 100);
  const xvfb = spawn('Xvfb', [`:${n}`, '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  return { env: { DISPLAY: `:${n}` }, xvfb };
}

const binary = electronBinary();

test.describe('desktop app in Electron', () => {
  test.skip(!binary, 'the Electron binary is not installed here (no internet; npm run electron:fetch gets it): the Electron wiring is not exercised by this run');

  test('opens a hardened console window on the embedded control plane; window.open and navigation stay inside the console', async ({}, testInfo) => {
    const d = await display();
    test.skip(typeof d === 'string', typeof d === 'string' ? d : '');
    if (typeof d === 'string') return;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cmdop-electron-'));
    fs.writeFileSync(path.join(home, 'settings.json'), JSON.stringify({ listen: '127.0.0.1:0', machineName: 'electron-box' }));
    const app = await _electron.launch({
      executablePath: binary!,
      args: ['--no-sandbox', MAIN],
      env: { ...process.env, ...d.env, CMDOP_DESKTOP_HOME: home, CMDOP_DATA_DIR: path.join(home, 'cp'), CMDOP_LOG_LEVEL: 'warn' },
      timeout: 60_000,
    });
    await app.context().tracing.start({ screenshots: true, snapshots: true });
    let page: Awaited<ReturnType<typeof app.firstWindow>> | undefined;
    try {
      page = await app.firstWindow({ timeout: 60_000 });
      await page.waitForSelector('[data-testid=machine-row][data-machine="electron-box"] [data-testid=machine-state][data-state=CONNECTED]', { timeout: 30_000 });
      // Behaviour, not settings: no Node in the page, and the preload's world is not the page's (context isolation).
      assert.equal(await page.evaluate(() => typeof (globalThis as any).require), 'undefined', 'no Node in the page');
      assert.equal(await page.evaluate(() => typeof (globalThis as any).process), 'undefined', 'no process object in the page');
      assert.equal(await page.evaluate(() => Object.isFrozen((globalThis as any).cmdopDesktop)), true);
      assert.deepEqual(await page.evaluate(() => (globalThis as any).cmdopDesktop?.desktop), true, 'the narrow bridge is there');
      const before = app.windows().length;
      await page.evaluate(() => window.open('https://example.invalid/', '_blank'));
      await page.evaluate(() => (location.href = 'https://example.invalid/'));
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(app.windows().length, before, 'no window for another origin');
      assert.equal(new URL(page.url()).hostname, '127.0.0.1', 'navigation to another origin refused');
      await app.context().tracing.stop();
    } catch (e) {
      // The failure's evidence, where Playwright keeps its own (test-results/).
      if (page) await page.screenshot({ path: testInfo.outputPath('test-failed-1.png') }).catch(() => {});
      await app.context().tracing.stop({ path: testInfo.outputPath('trace.zip') }).catch(() => {});
      for (const name of ['test-failed-1.png', 'trace.zip']) {
        const file = testInfo.outputPath(name);
        if (fs.existsSync(file)) await testInfo.attach(name.endsWith('.zip') ? 'trace' : 'screenshot', { path: file });
      }
      throw e;
    } finally {
      await app.close();
      d.xvfb?.kill();
    }
  });
});
