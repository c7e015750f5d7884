// Console uploads across dropped connections: the agent reaches the control
// plane through one proxy and the page its web port through another, so
// either link can be cut mid-upload; the agent is also killed and started
// again. Each upload must go on from where it was, byte for byte, or say
// why it gave up. Serial: one page, one panel, uploads one after another.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, tempDir } from '../../test/helpers/cluster';
import { CutProxy } from '../../test/helpers/proxy';
import { goTo, MiB, openPanel, partials, sel, sha } from './files';

/** How long the control plane waits for the machine here (--upload-resume): short, so giving up can be seen. */
const RESUME_S = 6;

test.describe.configure({ mode: 'serial' });
// No agent of the cluster's own: the test starts it, behind a proxy that can cut its link.
test.use({ clusterSetup: { group: 'files-resume', agent: false, serverArgs: ['--upload-resume', String(RESUME_S)] } });

test.describe('console uploads across a dropped connection', () => {
  let c: Cluster;
  let agentLink: CutProxy;
  let pageLink: CutProxy;
  let context: BrowserContext;
  let page: Page;
  let work: string;
  let local: string;
  const AGENT_ARGS = ['--reconnect-min', '50', '--reconnect-max', '200'];
  const pageErrors: string[] = [];

  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    // The agent reaches the control plane through one proxy, the page its web port through another: either link can be cut.
    agentLink = await CutProxy.start(c.server);
    await c.startAgent('box', ['--server', agentLink.address, ...AGENT_ARGS]);
    pageLink = await CutProxy.start(new URL((await c.client.auth.serverInfo()).webUrl).host);
    work = tempDir('cmdop-console-resume-');
    local = tempDir('cmdop-console-resume-local-');
    context = await consoleContext(browser);
    page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`http://${pageLink.address}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
    await openPanel(page, 'operator');
    await goTo(page, work);
    // Every (loaded, note) a transfer row shows, in order, by name.
    await page.evaluate(() => {
      const seen: Record<string, [number, string][]> = ((globalThis as any).__rows = {});
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target as HTMLElement;
          if (el.dataset?.testid !== 'file-transfer') continue;
          (seen[el.dataset.name ?? ''] ??= []).push([Number(el.dataset.loaded), el.dataset.note ?? '']);
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-loaded', 'data-note'] });
    });
  });
  test.afterAll(async () => {
    await context?.close();
    await pageLink?.close();
    await agentLink?.close();
    for (const d of [work, local]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  /** Starts uploading a fresh 64 MiB file through the picker; resolves with its bytes once a quarter has gone. */
  async function startUpload(name: string): Promise<Buffer> {
    const data = crypto.randomBytes(64 * MiB);
    fs.writeFileSync(path.join(local, name), data);
    await page.setInputFiles('[data-testid=files-input]', path.join(local, name));
    await page.waitForFunction(
      (row) => {
        const el = document.querySelector(row) as HTMLElement | null;
        return !!el && Number(el.dataset.loaded) > Number(el.dataset.total) / 4;
      },
      sel.transfer(name, 'running'),
      { timeout: 30_000, polling: 10 },
    );
    return data;
  }

  const rows = async (name: string) => ((await page.evaluate(() => (globalThis as any).__rows)) as Record<string, [number, string][]>)[name] ?? [];

  /**
   * It went on from where it was, not from 0. The bar steps back on a drop:
   * it had counted bytes the browser handed to its socket, and goes on from
   * what the machine acknowledged, which trails that by what was in transit.
   */
  async function resumedMidway(name: string): Promise<void> {
    const seen = await rows(name);
    const from = seen.findIndex(([, note]) => note === 'reconnecting…');
    assert.ok(from >= 0, `"reconnecting…" was shown (${JSON.stringify(seen.slice(-5))})`);
    const after = seen.slice(from).map(([loaded]) => loaded);
    assert.ok(Math.min(...after) >= MiB, `went on from the middle, not from 0 (lowest after the drop: ${Math.min(...after)}; before it: ${seen[from - 1]?.[0]})`);
    assert.ok(Number(await page.getAttribute(sel.transfer(name), 'data-resumes')) >= 1, 'the row counts the resume');
  }

  async function arrived(name: string, data: Buffer): Promise<void> {
    // Done, or failed (said at once, with the row's reason, rather than after a timeout).
    await page.waitForSelector(`${sel.transfer(name, 'done')}, ${sel.transfer(name, 'failed')}`, { timeout: 90_000 });
    assert.equal(await page.getAttribute(sel.transfer(name), 'data-state'), 'done', (await page.textContent(sel.transfer(name))) ?? '');
    assert.equal(sha(fs.readFileSync(path.join(work, name))), sha(data), 'byte for byte');
    assert.deepEqual(partials(work), []);
  }

  test('the machine’s link drops mid-upload for 1.5 s: the row says “reconnecting…”, then the upload goes on from what the agent kept', async () => {
    const data = await startUpload('link.bin');
    agentLink.block();
    await page.waitForSelector(`${sel.transfer('link.bin', 'running')}[data-note="reconnecting…"]`, { timeout: 10_000 });
    assert.match((await page.textContent(sel.transfer('link.bin'))) ?? '', /reconnecting…/);
    await new Promise((r) => setTimeout(r, 1500));
    agentLink.unblock();
    await arrived('link.bin', data);
    await resumedMidway('link.bin');
    assert.equal(await page.getAttribute(sel.transfer('link.bin'), 'data-note'), '');
  });

  test('the agent is killed mid-upload and started again: the upload goes on from its partial file', async () => {
    const data = await startUpload('restart.bin');
    const agent = c.agents.get('box')!;
    const gone = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGKILL');
    await gone;
    await page.waitForSelector(`${sel.transfer('restart.bin', 'running')}[data-note="reconnecting…"]`, { timeout: 10_000 });
    await c.startAgent('box', ['--server', agentLink.address, ...AGENT_ARGS]);
    await arrived('restart.bin', data);
    await resumedMidway('restart.bin');
  });

  test('the page’s own connection is cut under a part: it asks where the upload is and goes on from there', async () => {
    const data = await startUpload('page.bin');
    assert.ok(pageLink.cut() > 0, 'the part request (and the page’s WebSocket) were cut');
    await arrived('page.bin', data);
    await resumedMidway('page.bin');
  });

  test(`a machine that stays away past the resume window (${RESUME_S} s here): the upload fails and says why; nothing is under the name`, async () => {
    await startUpload('away.bin');
    agentLink.block();
    try {
      await page.waitForSelector(`${sel.transfer('away.bin')}[data-note="reconnecting…"]`, { timeout: 10_000 });
      await page.waitForSelector(sel.transfer('away.bin', 'failed'), { timeout: (RESUME_S + 20) * 1000 });
      const text = (await page.textContent(sel.transfer('away.bin'))) ?? '';
      assert.match(text, new RegExp(`machine box did not come back within ${RESUME_S} s: the upload of .*away\\.bin was given up at byte \\d+ of ${64 * MiB}`));
      assert.equal(await page.getAttribute(sel.transfer('away.bin'), 'data-note'), '', 'no longer “reconnecting…”');
    } finally {
      agentLink.unblock();
    }
    assert.ok(!fs.existsSync(path.join(work, 'away.bin')));
  });

  test('logged no errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
