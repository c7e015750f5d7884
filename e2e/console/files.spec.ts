// The console's file panel end to end: Chromium on the console a real
// control plane serves, a real agent behind it. What a person does: open
// box's Files, walk into a directory, download a file (the bytes checked),
// drop files on the panel and pick an 8 MiB one (the bytes on disk checked,
// progress seen), drop and pick whole folders (the trees compared byte for
// byte, failures named), make a folder, delete things, rename in place (and
// be told why not); an observer sees download only and is refused an upload.
// Then the HTTP routes themselves, on the files and users the panel's tests
// left: tokens, bad input, size mismatches that leave nothing, downloads
// resumed by Range/If-Range. (The routes in process, against fakes:
// test/fileRoutes.test.ts; uploads across dropped links: files-resume.spec.ts.)
// One person's session in one browser, each test going on from where the
// last left off: serial. Screenshots and a trace are kept on failure.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { BrowserContext, Page } from '@playwright/test';
import { consoleContext, test } from '../fixtures';
import { type Cluster, eventually, tempDir } from '../../test/helpers/cluster';
import { FileType } from '../../protocol';
import { dropFiles, dropPaths, goTo, listed, MiB, openPanel, partials, partialsUnder, sel, sha, snapshot } from './files';

test.describe.configure({ mode: 'serial' });
test.use({ clusterSetup: { group: 'files' } });

test.describe('console file panel', () => {
  let c: Cluster;
  let context: BrowserContext;
  let web: string;
  let page: Page;
  let work: string;
  const big = crypto.randomBytes(3 * MiB + 17);
  const pageErrors: string[] = [];

  const api = (p: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? c.token : init.token;
    if (token) headers.set('authorization', `Bearer ${token}`);
    return fetch(`${web}${p}`, { ...init, headers });
  };
  const q = (o: Record<string, string | number>) => new URLSearchParams(Object.entries(o).map(([k, v]) => [k, String(v)])).toString();

  test.beforeAll(async ({ cluster, browser }) => {
    c = cluster;
    web = (await c.client.auth.serverInfo()).webUrl;
    work = tempDir('cmdop-console-files-');
    fs.writeFileSync(path.join(work, 'small.txt'), 'hello, files\n');
    fs.writeFileSync(path.join(work, 'big.bin'), big);
    fs.mkdirSync(path.join(work, 'sub'));
    fs.writeFileSync(path.join(work, 'sub', 'inner.txt'), 'inside\n');
    context = await consoleContext(browser);
    page = await context.newPage();
    // Uncaught exceptions and CSP violations fail the last test. A refused
    // request (a 409 the panel shows) is logged by Chromium as an error too: not ours to count.
    page.on('console', (m) => m.type() === 'error' && !/Failed to load resource/.test(m.text()) && pageErrors.push(m.text()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(`${web}/#token=${c.token}`);
    await page.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
  });
  test.afterAll(async () => {
    await context?.close();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('opens box’s Files at ~, walks into a directory and back up; directories come first', async () => {
    await openPanel(page, 'operator');
    await goTo(page, work);
    assert.deepEqual(await listed(page), ['sub', 'big.bin', 'small.txt']);
    assert.equal(await page.getAttribute(sel.file('sub'), 'data-type'), 'directory');
    assert.match((await page.textContent(sel.file('big.bin'))) ?? '', /3\.0 MiB/);
    await page.click(`${sel.file('sub')} [data-testid=file-open]`);
    await page.waitForSelector(`${sel.panel}[data-path="${work}/sub"][data-loading="0"]`);
    assert.deepEqual(await listed(page), ['inner.txt']);
    await page.click('[data-testid=file-parent] button');
    await page.waitForSelector(`${sel.panel}[data-path="${work}"][data-loading="0"]`);
    // A path that is not there says so in the panel, and the listing stays where it was.
    await page.fill('[data-testid=files-path]', `${work}/nope`);
    await page.click('[data-testid=files-go]');
    await page.waitForSelector('[data-testid=files-error]');
    assert.match((await page.textContent('[data-testid=files-error]')) ?? '', /nope/);
    assert.equal(await page.getAttribute(sel.panel, 'data-path'), work);
    await page.click('[data-testid=files-error] button');
  });

  test('a big directory shows its first page and loads the rest a page at a time (“Load more (N of M)”)', async () => {
    const many = path.join(work, 'many');
    fs.mkdirSync(many);
    const names = Array.from({ length: 2500 }, (_, i) => `m${String(i).padStart(4, '0')}`);
    for (const n of names) fs.closeSync(fs.openSync(path.join(many, n), 'w'));
    await goTo(page, many);
    const rows = () => page.$$eval('[data-testid=files-panel] [data-testid=file-row]', (r) => r.length);
    assert.equal(await rows(), 1000);
    assert.equal((await page.textContent('[data-testid=files-more]'))?.trim(), 'Load more (1000 of 2500)');
    await page.click('[data-testid=files-more]');
    await page.waitForSelector('[data-testid=files-more]:text("2000 of 2500")');
    assert.equal(await rows(), 2000);
    await page.click('[data-testid=files-more]');
    await page.waitForSelector('[data-testid=files-more]', { state: 'detached' });
    assert.deepEqual(await listed(page), names, 'every name once, in order');
    await goTo(page, work);
    assert.equal(await page.$('[data-testid=files-more]'), null, 'a small directory has no Load more');
  });

  test('downloads a file: the saved bytes are the file’s, and the read is audited', async () => {
    const since = Date.now();
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${sel.file('big.bin')} [data-testid=file-download]`)]);
    assert.equal(dl.suggestedFilename(), 'big.bin');
    const saved = await dl.path();
    assert.equal(sha(fs.readFileSync(saved)), sha(big));
    await page.waitForSelector(sel.transfer('big.bin', 'done'));
    assert.equal(await page.getAttribute(sel.transfer('big.bin'), 'data-loaded'), String(big.length));
    const audit = await c.client.auth.audit({ machine: 'box', sinceMs: since });
    assert.ok(audit.some((e) => e.action === 'file-read' && e.ok && e.detail === path.join(work, 'big.bin')), 'file-read audited');
  });

  test('uploads files dropped on the panel, byte for byte, and lists them', async () => {
    const one = crypto.randomBytes(100_000);
    const two = Buffer.from('dropped text, ünïcödé\n');
    await dropFiles(page, [
      { name: 'dropped-one.bin', data: one },
      { name: 'dropped two ü.txt', data: two },
    ]);
    await page.waitForSelector(sel.transfer('dropped-one.bin', 'done'), { timeout: 15_000 });
    await page.waitForSelector(sel.transfer('dropped two ü.txt', 'done'), { timeout: 15_000 });
    assert.equal(sha(fs.readFileSync(path.join(work, 'dropped-one.bin'))), sha(one));
    assert.deepEqual(fs.readFileSync(path.join(work, 'dropped two ü.txt')), two);
    await page.waitForSelector(sel.file('dropped two ü.txt'));
    assert.deepEqual(partials(work), []);
    // An empty file goes too.
    await dropFiles(page, [{ name: 'empty.txt', data: Buffer.alloc(0) }]);
    await page.waitForSelector(sel.transfer('empty.txt', 'done'));
    assert.equal(fs.statSync(path.join(work, 'empty.txt')).size, 0);
  });

  test('shows an 8 MiB upload’s progress (through the file picker) and it arrives byte for byte', async () => {
    const eight = crypto.randomBytes(8 * MiB);
    // Every progress value the panel shows, as it shows it.
    await page.evaluate(() => {
      const seen: number[] = ((globalThis as any).__progress = []);
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target as HTMLElement;
          if (el.dataset?.testid === 'file-transfer' && el.dataset.name === 'eight.bin') seen.push(Number(el.dataset.loaded));
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-loaded'] });
    });
    // From a file on disk, as a person picks it (a buffer would cross to the browser as base64, slowly).
    const local = path.join(tempDir('cmdop-console-local-'), 'eight.bin');
    fs.writeFileSync(local, eight);
    try {
      await page.setInputFiles('[data-testid=files-input]', local);
      await page.waitForSelector(sel.transfer('eight.bin', 'done'), { timeout: 60_000 });
    } finally {
      fs.rmSync(path.dirname(local), { recursive: true, force: true });
    }
    const seen = (await page.evaluate(() => (globalThis as any).__progress)) as number[];
    assert.ok(
      seen.some((v) => v > 0 && v < eight.length),
      `progress between 0 and ${eight.length} was shown (saw ${seen.slice(0, 20).join(', ')})`,
    );
    assert.equal(seen[seen.length - 1], eight.length);
    assert.equal(sha(fs.readFileSync(path.join(work, 'eight.bin'))), sha(eight));
  });

  test('an upload cancelled part way leaves nothing on the machine', async () => {
    const local = path.join(tempDir('cmdop-console-local-'), 'cancelled.bin');
    fs.writeFileSync(local, crypto.randomBytes(64 * MiB));
    try {
      await page.setInputFiles('[data-testid=files-input]', local);
      await page.click(`${sel.transfer('cancelled.bin', 'running')} [data-testid=file-cancel]`);
      await page.waitForSelector(sel.transfer('cancelled.bin', 'cancelled'));
    } finally {
      fs.rmSync(path.dirname(local), { recursive: true, force: true });
    }
    assert.ok(!fs.existsSync(path.join(work, 'cancelled.bin')));
    await eventually(() => partials(work).length === 0, 10_000, `no partial file (${partials(work).join(', ')})`);
  });

  test('uploads a dropped folder tree (nested folders, an empty one, an empty file, odd sizes) byte for byte, with one progress', async () => {
    const local = tempDir('cmdop-console-tree-');
    const tree = path.join(local, 'dropped-tree');
    fs.mkdirSync(path.join(tree, 'nested', 'deeper', 'deepest'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'empty-folder'));
    fs.writeFileSync(path.join(tree, 'odd.bin'), crypto.randomBytes(3 * MiB + 333));
    fs.writeFileSync(path.join(tree, 'empty.txt'), '');
    fs.writeFileSync(path.join(tree, 'ünï code.txt'), 'named in Unicode\n');
    fs.writeFileSync(path.join(tree, 'nested', 'mid.txt'), 'middle\n');
    fs.writeFileSync(path.join(tree, 'nested', 'deeper', 'deep.bin'), crypto.randomBytes(200_001));
    const bytes = 3 * MiB + 333 + Buffer.byteLength('named in Unicode\n') + 'middle\n'.length + 200_001;
    try {
      await dropPaths(page, [tree]);
      const row = sel.transfer('dropped-tree');
      await page.waitForSelector(`${row}[data-kind=folder][data-state=done]`, { timeout: 60_000 });
      assert.deepEqual(snapshot(path.join(work, 'dropped-tree')), snapshot(tree));
      assert.equal(snapshot(tree)['nested/deeper/deepest'], 'dir', 'the empty folder is in the comparison');
      assert.equal(await page.getAttribute(row, 'data-files-done'), '5');
      assert.equal(await page.getAttribute(row, 'data-files-total'), '5');
      assert.equal(await page.getAttribute(row, 'data-loaded'), String(bytes));
      assert.equal(await page.getAttribute(row, 'data-total'), String(bytes));
      assert.match((await page.textContent(row)) ?? '', /done: 5 of 5 files/);
      assert.deepEqual(partialsUnder(path.join(work, 'dropped-tree')), []);
      await page.waitForSelector(`${sel.file('dropped-tree')}[data-type=directory]`);
    } finally {
      fs.rmSync(local, { recursive: true, force: true });
    }
  });

  test('a folder whose files cannot all go names each one that did not, with why, and uploads the rest', async () => {
    const local = tempDir('cmdop-console-tree-');
    const tree = path.join(local, 'mixed');
    fs.mkdirSync(path.join(tree, 'sub'), { recursive: true });
    fs.mkdirSync(path.join(tree, 'blocked'));
    fs.writeFileSync(path.join(tree, 'taken.txt'), 'from the drop\n');
    fs.writeFileSync(path.join(tree, 'new.bin'), crypto.randomBytes(50_001));
    fs.writeFileSync(path.join(tree, 'sub', 'also.txt'), 'also\n');
    fs.writeFileSync(path.join(tree, 'blocked', 'x.txt'), 'x\n');
    // On the machine: a file of the same name, and a file where a folder must go.
    fs.mkdirSync(path.join(work, 'mixed'));
    fs.writeFileSync(path.join(work, 'mixed', 'taken.txt'), 'already here\n');
    fs.writeFileSync(path.join(work, 'mixed', 'blocked'), 'a file, not a folder\n');
    try {
      await dropPaths(page, [tree]);
      const row = sel.transfer('mixed');
      await page.waitForSelector(`${row}[data-state=failed]`, { timeout: 30_000 });
      assert.match((await page.textContent(row)) ?? '', /2 of 4 files uploaded; 2 not \(3 listed below\)/);
      const failures = await page.$$eval(`${row} [data-testid=file-transfer-failures] li`, (lis) =>
        lis.map((li) => [(li as HTMLElement).dataset.path, li.textContent ?? '']),
      );
      // Files go a few at a time, so the order varies: the set is what counts.
      assert.deepEqual(failures.map(([p]) => p).sort(), ['mixed/blocked/', 'mixed/blocked/x.txt', 'mixed/taken.txt']);
      const why = Object.fromEntries(failures) as Record<string, string>;
      assert.match(why['mixed/blocked/'], /already exists: .*mixed\/blocked/);
      assert.match(why['mixed/blocked/x.txt'], /not uploaded: mixed\/blocked could not be created/);
      assert.match(why['mixed/taken.txt'], /already exists/);
      // What could go went, byte for byte; what was there is untouched.
      assert.deepEqual(fs.readFileSync(path.join(work, 'mixed', 'new.bin')), fs.readFileSync(path.join(tree, 'new.bin')));
      assert.equal(fs.readFileSync(path.join(work, 'mixed', 'sub', 'also.txt'), 'utf8'), 'also\n');
      assert.equal(fs.readFileSync(path.join(work, 'mixed', 'taken.txt'), 'utf8'), 'already here\n');
      assert.equal(fs.readFileSync(path.join(work, 'mixed', 'blocked'), 'utf8'), 'a file, not a folder\n');
      assert.deepEqual(partialsUnder(path.join(work, 'mixed')), []);
    } finally {
      fs.rmSync(local, { recursive: true, force: true });
    }
  });

  test('uploads a folder picked with “Upload folder…”; a cancelled folder upload says what did not arrive and leaves no partial file', async () => {
    const local = tempDir('cmdop-console-tree-');
    const picked = path.join(local, 'picked');
    fs.mkdirSync(path.join(picked, 'a', 'b'), { recursive: true });
    fs.writeFileSync(path.join(picked, 'top.txt'), 'top\n');
    fs.writeFileSync(path.join(picked, 'a', 'b', 'leaf.bin'), crypto.randomBytes(77_777));
    const slow = path.join(local, 'slow');
    fs.mkdirSync(slow);
    fs.writeFileSync(path.join(slow, 'huge.bin'), crypto.randomBytes(64 * MiB));
    try {
      await page.setInputFiles('[data-testid=files-folder-input]', picked);
      await page.waitForSelector(`${sel.transfer('picked')}[data-kind=folder][data-state=done]`, { timeout: 30_000 });
      assert.deepEqual(snapshot(path.join(work, 'picked')), snapshot(picked));

      await dropPaths(page, [slow]);
      await page.click(`${sel.transfer('slow', 'running')} [data-testid=file-cancel]`);
      await page.waitForSelector(sel.transfer('slow', 'cancelled'));
      assert.match((await page.textContent(sel.transfer('slow'))) ?? '', /0 of 1 files were uploaded before the cancel; the others were not/);
      assert.ok(!fs.existsSync(path.join(work, 'slow', 'huge.bin')));
      await eventually(() => partialsUnder(path.join(work, 'slow')).length === 0, 10_000, 'no partial file left');
    } finally {
      fs.rmSync(local, { recursive: true, force: true });
    }
  });

  test('refuses to upload over a file unless “replace” is ticked', async () => {
    await dropFiles(page, [{ name: 'small.txt', data: Buffer.from('new contents\n') }]);
    await page.waitForSelector(sel.transfer('small.txt', 'failed'));
    assert.match((await page.textContent(sel.transfer('small.txt'))) ?? '', /already exists/);
    assert.equal(fs.readFileSync(path.join(work, 'small.txt'), 'utf8'), 'hello, files\n');
    await page.click('[data-testid=files-clear-transfers]');
    await page.check('[data-testid=files-overwrite]');
    await dropFiles(page, [{ name: 'small.txt', data: Buffer.from('new contents\n') }]);
    await page.waitForSelector(sel.transfer('small.txt', 'done'));
    assert.equal(fs.readFileSync(path.join(work, 'small.txt'), 'utf8'), 'new contents\n');
    await page.uncheck('[data-testid=files-overwrite]');
  });

  test('makes a folder and deletes a file and a folder, asking first', async () => {
    await page.click('[data-testid=files-mkdir]');
    await page.fill('[data-testid=files-mkdir-name]', 'a/b');
    await page.click('[data-testid=files-mkdir-ok]');
    await page.waitForSelector('[data-testid=files-error]');
    await page.click('[data-testid=files-error] button');
    await page.fill('[data-testid=files-mkdir-name]', 'made');
    await page.click('[data-testid=files-mkdir-ok]');
    await page.waitForSelector(`${sel.file('made')}[data-type=directory]`);
    assert.ok(fs.statSync(path.join(work, 'made')).isDirectory());
    fs.writeFileSync(path.join(work, 'made', 'x'), 'x');

    await page.click(`${sel.file('empty.txt')} [data-testid=file-delete]`);
    assert.ok(fs.existsSync(path.join(work, 'empty.txt')), 'nothing is deleted before the confirmation');
    await page.click(`${sel.file('empty.txt')} [data-testid=file-delete-confirm]`);
    await page.waitForSelector(sel.file('empty.txt'), { state: 'detached' });
    assert.ok(!fs.existsSync(path.join(work, 'empty.txt')));

    await page.click(`${sel.file('made')} [data-testid=file-delete]`);
    await page.click(`${sel.file('made')} [data-testid=file-delete-confirm]`);
    await page.waitForSelector(sel.file('made'), { state: 'detached' });
    assert.ok(!fs.existsSync(path.join(work, 'made')));
  });

  test('renames in place (its button, then F2); a taken name or a lost right is said, and nothing changes', async () => {
    fs.writeFileSync(path.join(work, 'rename-me.txt'), 'rename me\n');
    await page.click('[data-testid=files-refresh]');
    await page.waitForSelector(sel.file('rename-me.txt'));
    const since = Date.now();

    // The button: the box opens on the old name, Enter renames.
    await page.click(`${sel.file('rename-me.txt')} [data-testid=file-rename]`);
    assert.equal(await page.inputValue('[data-testid=file-rename-input]'), 'rename-me.txt');
    await page.fill('[data-testid=file-rename-input]', 'renamed.txt');
    await page.press('[data-testid=file-rename-input]', 'Enter');
    await page.waitForSelector(sel.file('renamed.txt'));
    await page.waitForSelector(sel.file('rename-me.txt'), { state: 'detached' });
    assert.ok(!fs.existsSync(path.join(work, 'rename-me.txt')));
    assert.equal(fs.readFileSync(path.join(work, 'renamed.txt'), 'utf8'), 'rename me\n');

    // F2 on the row: the stem is selected, so typing keeps the extension.
    await page.focus(sel.file('renamed.txt'));
    await page.keyboard.press('F2');
    await page.waitForSelector(`${sel.file('renamed.txt')} [data-testid=file-rename-input]`);
    await page.keyboard.type('by-f2');
    await page.keyboard.press('Enter');
    await page.waitForSelector(sel.file('by-f2.txt'));
    assert.equal(fs.readFileSync(path.join(work, 'by-f2.txt'), 'utf8'), 'rename me\n');

    // A name that is taken: said beside the row, the box stays open, neither file touched.
    await page.focus(sel.file('by-f2.txt'));
    await page.keyboard.press('F2');
    await page.fill('[data-testid=file-rename-input]', 'small.txt');
    await page.press('[data-testid=file-rename-input]', 'Enter');
    await page.waitForSelector(`${sel.file('by-f2.txt')} [data-testid=file-rename-error]`);
    assert.match((await page.textContent('[data-testid=file-rename-error]')) ?? '', /cannot rename by-f2\.txt to small\.txt: small\.txt already exists/);
    assert.equal(await page.inputValue(`${sel.file('by-f2.txt')} [data-testid=file-rename-input]`), 'small.txt');
    assert.equal(fs.readFileSync(path.join(work, 'small.txt'), 'utf8'), 'new contents\n');
    assert.equal(fs.readFileSync(path.join(work, 'by-f2.txt'), 'utf8'), 'rename me\n');
    await page.press('[data-testid=file-rename-input]', 'Escape');
    await page.waitForSelector('[data-testid=file-rename-input]', { state: 'detached' });

    const audit = await c.client.auth.audit({ machine: 'box', sinceMs: since });
    const renames = audit.filter((e) => e.action === 'file-rename' && e.ok).map((e) => e.detail);
    assert.deepEqual(renames.sort(), [
      `${path.join(work, 'rename-me.txt')} -> ${path.join(work, 'renamed.txt')}`,
      `${path.join(work, 'renamed.txt')} -> ${path.join(work, 'by-f2.txt')}`,
    ].sort());

    // An operator whose grant is lowered to observer while the panel is open: refused, said, nothing moved.
    await c.client.auth.addUser('pete', { password: 'pete-password-1' });
    await c.client.auth.grant('box', 'pete', 'operator');
    const pete = (await c.client.auth.createToken('pete-files', 0, 'pete')).token;
    const p = await context.newPage();
    try {
      p.on('pageerror', (e) => pageErrors.push(String(e)));
      await p.goto(`${web}/#token=${pete}`);
      await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
      await openPanel(p, 'operator');
      await goTo(p, work);
      await c.client.auth.grant('box', 'pete', 'observer');
      await p.click(`${sel.file('by-f2.txt')} [data-testid=file-rename]`);
      await p.fill('[data-testid=file-rename-input]', 'pete.txt');
      await p.press('[data-testid=file-rename-input]', 'Enter');
      await p.waitForSelector('[data-testid=file-rename-error]');
      assert.match((await p.textContent('[data-testid=file-rename-error]')) ?? '', /cannot rename by-f2\.txt to pete\.txt: .*pete may only observe box/);
    } finally {
      await p.close();
    }
    assert.ok(!fs.existsSync(path.join(work, 'pete.txt')));
    assert.equal(fs.readFileSync(path.join(work, 'by-f2.txt'), 'utf8'), 'rename me\n');
  });

  test('an observer sees download only; the control plane refuses their upload (403) and audits it', async () => {
    await c.client.auth.addUser('olga', { password: 'olga-password-1' });
    await c.client.auth.grant('box', 'olga', 'observer');
    const olga = (await c.client.auth.createToken('olga-files', 0, 'olga')).token;
    const p = await context.newPage();
    try {
      p.on('pageerror', (e) => pageErrors.push(String(e)));
      await p.goto(`${web}/#token=${olga}`);
      await p.waitForSelector(`${sel.row('box')} [data-testid=machine-state][data-state=CONNECTED]`, { timeout: 15_000 });
      await openPanel(p, 'observer');
      await goTo(p, work);
      await p.waitForSelector('[data-testid=files-readonly]');
      for (const control of ['files-upload', 'files-input', 'files-upload-folder', 'files-folder-input', 'files-mkdir', 'files-overwrite', 'file-delete', 'file-rename']) {
        assert.equal(await p.locator(`${sel.panel} [data-testid=${control}]`).count(), 0, `no ${control} for an observer`);
      }
      // Nor does F2 open a rename box, and the gateway refuses the call itself.
      await p.focus(sel.file('small.txt'));
      await p.keyboard.press('F2');
      assert.equal(await p.locator('[data-testid=file-rename-input]').count(), 0, 'no rename box for an observer');
      const olgaClient = c.newClient({ token: olga });
      try {
        olgaClient.setMachine('box');
        await assert.rejects(olgaClient.files.rename(path.join(work, 'small.txt'), path.join(work, 'olga.txt')), /olga may only observe box/);
      } finally {
        olgaClient.close();
      }
      assert.ok(fs.existsSync(path.join(work, 'small.txt')));
      // Dropping does nothing for an observer.
      await dropFiles(p, [{ name: 'olga.txt', data: Buffer.from('no') }]);
      assert.equal(await p.locator('[data-testid=file-transfer]').count(), 0);
      const [dl] = await Promise.all([p.waitForEvent('download'), p.click(`${sel.file('small.txt')} [data-testid=file-download]`)]);
      assert.equal(fs.readFileSync(await dl.path(), 'utf8'), 'new contents\n');
    } finally {
      await p.close();
    }
    const since = Date.now();
    const r = await api(`/files/upload?${q({ machine: 'box', path: path.join(work, 'olga.txt'), size: 2 })}`, { method: 'POST', token: olga });
    assert.equal(r.status, 403);
    const body = await r.json();
    assert.equal(body.code, 'PERMISSION_DENIED');
    assert.match(body.message, /olga may only observe box/);
    assert.ok(!fs.existsSync(path.join(work, 'olga.txt')));
    const audit = await c.client.auth.audit({ machine: 'box', sinceMs: since });
    assert.ok(audit.some((e) => e.action === 'file-write' && !e.ok && e.actor === 'olga'), 'the refusal is audited');
    assert.equal((await (await api(`/files/access?${q({ machine: 'box' })}`, { token: olga })).json()).role, 'observer');
  });

  test('HTTP: the token only from the header (401), bad input (400), missing (404), not a file (412), exists (409)', async () => {
    const dl = (o: Record<string, string>, token?: string | null) => api(`/files/download?${q(o)}`, { token });
    let r = await dl({ machine: 'box', path: path.join(work, 'small.txt') }, null);
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await r.json()).code, 'UNAUTHENTICATED');
    r = await dl({ machine: 'box', path: path.join(work, 'small.txt'), token: c.token, access_token: c.token }, null);
    assert.equal(r.status, 401, 'a token in the URL is not read');
    await r.body?.cancel();
    r = await api(`/files/download?${q({ machine: 'box', path: 'x' })}`, { token: null, headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } });
    assert.equal(r.status, 401);
    await r.body?.cancel();

    for (const [o, status, code] of [
      [{ machine: 'box', path: `${work}/a\0b` }, 400, 'INVALID_ARGUMENT'],
      [{ machine: 'box', path: '' }, 400, 'INVALID_ARGUMENT'],
      [{ machine: 'box', path: 'x'.repeat(5000) }, 400, 'INVALID_ARGUMENT'],
      [{ path: path.join(work, 'small.txt') }, 400, 'INVALID_ARGUMENT'],
      [{ machine: '../box', path: path.join(work, 'small.txt') }, 400, 'INVALID_ARGUMENT'],
      [{ machine: 'nobox', path: path.join(work, 'small.txt') }, 404, 'NOT_FOUND'],
      [{ machine: 'box', path: path.join(work, 'missing.txt') }, 404, 'NOT_FOUND'],
      [{ machine: 'box', path: work }, 412, 'FAILED_PRECONDITION'],
    ] as const) {
      r = await dl(o as Record<string, string>);
      const body = await r.json();
      assert.equal(r.status, status, `${JSON.stringify(o).slice(0, 80)}: ${JSON.stringify(body)}`);
      assert.equal(body.code, code);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.equal(r.headers.get('cache-control'), 'no-store');
    }

    // A good one: the headers a download needs.
    r = await dl({ machine: 'box', path: path.join(work, 'dropped two ü.txt') });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(r.headers.get('content-length'), String(Buffer.byteLength('dropped text, ünïcödé\n')));
    assert.equal(r.headers.get('content-disposition'), `attachment; filename="dropped two _.txt"; filename*=UTF-8''dropped%20two%20%C3%BC.txt`);
    assert.equal(await r.text(), 'dropped text, ünïcödé\n');

    const open = (o: Record<string, string | number>) => api(`/files/upload?${q({ machine: 'box', ...o })}`, { method: 'POST' });
    for (const [o, status, code] of [
      [{ path: path.join(work, 'n.txt'), size: 'ten' }, 400, 'INVALID_ARGUMENT'],
      [{ path: path.join(work, 'n.txt'), size: -1 }, 400, 'INVALID_ARGUMENT'],
      [{ path: path.join(work, 'n.txt'), size: 1, overwrite: 'yes' }, 400, 'INVALID_ARGUMENT'],
      [{ path: path.join(work, 'small.txt'), size: 1 }, 409, 'ALREADY_EXISTS'],
      [{ path: path.join(work, 'nodir', 'n.txt'), size: 1 }, 404, 'NOT_FOUND'],
      [{ path: work, size: 1, overwrite: 1 }, 412, 'FAILED_PRECONDITION'],
    ] as const) {
      r = await open(o);
      const body = await r.json();
      assert.equal(r.status, status, `${JSON.stringify(o)}: ${JSON.stringify(body)}`);
      assert.equal(body.code, code);
    }
    r = await api('/files/download', { method: 'DELETE' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET');
    await r.body?.cancel();
    r = await api('/files/upload/nosuchupload?offset=0', { method: 'PUT', body: 'x' });
    assert.equal(r.status, 404);
    await r.body?.cancel();
    assert.deepEqual(partials(work), []);
  });

  test('HTTP: a cut download resumes with Range + If-Range (206 from byte N); a changed file comes whole (200); If-Match and past-the-end ranges are refused', async () => {
    const file = path.join(work, 'range.bin');
    const data = crypto.randomBytes(MiB + 123);
    fs.writeFileSync(file, data);
    const url = `/files/download?${q({ machine: 'box', path: file })}`;
    const get = async (headers: Record<string, string> = {}) => {
      const r = await api(url, { headers });
      return { r, body: Buffer.from(await r.arrayBuffer()) };
    };

    let { r, body } = await get();
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('accept-ranges'), 'bytes');
    const etag = r.headers.get('etag') ?? '';
    assert.match(etag, /^"[0-9a-z]+-[0-9a-z]+"$/, 'a strong ETag');
    assert.deepEqual(body, data);

    // Cut part way (as a dropped link does), then resumed from what arrived, as curl -C - or a download manager does.
    const head = await new Promise<Buffer>((resolve, reject) => {
      const got: Buffer[] = [];
      let n = 0;
      const req = http.get(`${web}${url}`, { headers: { authorization: `Bearer ${c.token}` } }, (res) => {
        res.on('data', (d: Buffer) => {
          got.push(d);
          n += d.length;
          if (n >= 200_000) {
            req.destroy();
            resolve(Buffer.concat(got));
          }
        });
        res.on('error', () => {});
      });
      req.on('error', (e) => (n >= 200_000 ? undefined : reject(e)));
    });
    assert.ok(head.length < data.length, `cut short (${head.length} of ${data.length})`);
    ({ r, body } = await get({ range: `bytes=${head.length}-`, 'if-range': etag }));
    assert.equal(r.status, 206);
    assert.equal(r.headers.get('content-range'), `bytes ${head.length}-${data.length - 1}/${data.length}`);
    assert.equal(r.headers.get('content-length'), String(data.length - head.length));
    assert.equal(r.headers.get('etag'), etag);
    assert.deepEqual(Buffer.concat([head, body]), data, 'the two parts make the file, byte for byte');

    // Without If-Range the range is served too; bytes=0-, other range forms and an If-Range date get the whole file.
    ({ r, body } = await get({ range: 'bytes=1000000-' }));
    assert.equal(r.status, 206);
    assert.deepEqual(body, data.subarray(1_000_000));
    for (const headers of [{ range: 'bytes=0-' }, { range: 'bytes=10-20' }, { range: 'bytes=-100' }, { range: 'bytes=5-', 'if-range': new Date().toUTCString() }] as Record<string, string>[]) {
      ({ r, body } = await get(headers));
      assert.equal(r.status, 200, JSON.stringify(headers));
      assert.deepEqual(body, data);
    }
    ({ r, body } = await get({ range: `bytes=${data.length}-`, 'if-range': etag }));
    assert.equal(r.status, 416);
    assert.equal(r.headers.get('content-range'), `bytes */${data.length}`);
    assert.equal(JSON.parse(body.toString()).code, 'OUT_OF_RANGE');
    ({ r, body } = await get({ range: `bytes=${data.length + 10}-`, 'if-range': etag }));
    assert.equal(r.status, 416, 'past the end of the same file');
    ({ r, body } = await get({ 'if-match': etag }));
    assert.equal(r.status, 200);
    assert.deepEqual(body, data);

    // The file changes (same size, new bytes): the old ETag's range is not spliced onto it.
    const changed = crypto.randomBytes(data.length);
    fs.writeFileSync(file, changed);
    fs.utimesSync(file, new Date(), new Date(Date.now() + 5000));
    ({ r, body } = await get({ range: `bytes=${head.length}-`, 'if-range': etag }));
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-range'), null);
    assert.notEqual(r.headers.get('etag'), etag);
    assert.deepEqual(body, changed, 'the whole new file');
    ({ r, body } = await get({ range: `bytes=${head.length}-`, 'if-match': etag }));
    assert.equal(r.status, 412);
    assert.equal(JSON.parse(body.toString()).code, 'FAILED_PRECONDITION');
    const newTag = r.headers.get('etag') ?? '';
    assert.notEqual(newTag, etag);
    ({ r } = await get({ range: `bytes=${head.length}-`, 'if-unmodified-since': new Date(Date.now() - 60_000).toUTCString() }));
    assert.equal(r.status, 412, 'modified since');
    ({ r } = await get({ range: `bytes=${head.length}-`, 'if-unmodified-since': new Date(Date.now() + 60_000).toUTCString() }));
    assert.equal(r.status, 206, 'not modified since');

    // It shrinks below the old range's start: still the whole new file, not a 416.
    fs.writeFileSync(file, data.subarray(0, 500));
    fs.utimesSync(file, new Date(), new Date(Date.now() + 10_000));
    ({ r, body } = await get({ range: `bytes=${head.length}-`, 'if-range': newTag }));
    assert.equal(r.status, 200);
    assert.deepEqual(body, data.subarray(0, 500));
  });

  test('HTTP: an upload in parts; a part longer than the rest is refused alone; given up part way, it leaves nothing', async () => {
    const open = async (name: string, size: number) => {
      const r = await api(`/files/upload?${q({ machine: 'box', path: path.join(work, name), size })}`, { method: 'POST' });
      assert.equal(r.status, 200);
      return (await r.json()) as { id: string; offset: number };
    };
    const put = (id: string, offset: number, body: Buffer) => api(`/files/upload/${id}?${q({ offset })}`, { method: 'PUT', body: new Uint8Array(body) });

    // Two parts, then the file with its entry and MD5.
    const data = crypto.randomBytes(300_000);
    let u = await open('parts.bin', data.length);
    let r = await put(u.id, 0, data.subarray(0, 100_000));
    assert.deepEqual(await r.json(), { offset: 100_000, size: data.length });
    r = await put(u.id, 0, data.subarray(0, 10));
    assert.equal(r.status, 412, 'a part must start where the upload is');
    assert.equal((await r.json()).offset, 100_000);
    // Where it is, for a page whose part failed.
    r = await api(`/files/upload/${u.id}`);
    assert.deepEqual(await r.json(), { offset: 100_000, size: data.length, state: 'open', resumes: 0 });
    assert.ok(!fs.existsSync(path.join(work, 'parts.bin')), 'nothing under the name before the last part');
    r = await put(u.id, 100_000, data.subarray(100_000));
    const done = await r.json();
    assert.equal(r.status, 200);
    assert.equal(done.entry.size, data.length);
    assert.equal(done.entry.type, FileType.FILE_TYPE_FILE);
    assert.equal(done.md5, crypto.createHash('md5').update(data).digest('hex'));
    assert.deepEqual(fs.readFileSync(path.join(work, 'parts.bin')), data);
    r = await put(u.id, data.length, Buffer.alloc(0));
    assert.equal(r.status, 404, 'a finished upload takes no more parts');
    await r.body?.cancel();
    // A page that lost the last part's answer learns that the file arrived.
    r = await api(`/files/upload/${u.id}`);
    const after = await r.json();
    assert.equal(r.status, 200);
    assert.equal(after.offset, data.length);
    assert.equal(after.md5, done.md5);
    assert.equal(after.entry.size, data.length);

    // Longer than announced (Content-Length says so): that part is refused at once, before any byte; the upload stays where it was.
    u = await open('long.bin', 10);
    r = await put(u.id, 0, Buffer.alloc(20, 1));
    assert.equal(r.status, 400);
    assert.equal((await r.json()).code, 'INVALID_ARGUMENT');
    r = await put(u.id, 0, Buffer.alloc(10, 1));
    assert.equal(r.status, 200);
    assert.deepEqual(fs.readFileSync(path.join(work, 'long.bin')), Buffer.alloc(10, 1));
    fs.rmSync(path.join(work, 'long.bin'));

    // Longer than announced, found out as it streams (chunked, no Content-Length): refused; given up, it leaves nothing.
    u = await open('long2.bin', 100_000);
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = chunkedPut(`${web}/files/upload/${u.id}?offset=0`, c.token, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 30; i++) req.write(Buffer.alloc(10_000, i));
      req.end();
    });
    assert.equal(streamed.status, 400, streamed.body);
    assert.match(JSON.parse(streamed.body).message, /more bytes than the announced size/);
    r = await api(`/files/upload/${u.id}`, { method: 'DELETE' });
    assert.equal(r.status, 204);

    // Shorter: the upload waits for the rest; given up, it leaves nothing.
    u = await open('short.bin', 100_000);
    r = await put(u.id, 0, Buffer.alloc(10_000, 7));
    assert.deepEqual(await r.json(), { offset: 10_000, size: 100_000 });
    await eventually(() => partials(work).length === 1, 10_000, 'the partial file of the open upload');
    r = await api(`/files/upload/${u.id}`, { method: 'DELETE' });
    assert.equal(r.status, 204);

    // Someone else's upload is not there for another user.
    u = await open('mine.bin', 5);
    const olga = (await c.client.auth.createToken('olga-files-2', 0, 'olga')).token;
    r = await api(`/files/upload/${u.id}?offset=0`, { method: 'PUT', body: 'hello', token: olga });
    assert.equal(r.status, 404);
    await r.body?.cancel();
    r = await api(`/files/upload/${u.id}`, { method: 'DELETE' });
    assert.equal(r.status, 204);

    for (const name of ['long.bin', 'long2.bin', 'short.bin', 'mine.bin']) assert.ok(!fs.existsSync(path.join(work, name)), `no ${name}`);
    await eventually(() => partials(work).length === 0, 10_000, `no partial files (${partials(work).join(', ')})`);
  });

  test('HTTP: a refused request answers only itself: a share link, other users and the owner’s own malformed parts leave the upload to finish byte for byte', async () => {
    const name = 'refusals.bin';
    const data = crypto.randomBytes(300_000);
    let r = await api(`/files/upload?${q({ machine: 'box', path: path.join(work, name), size: data.length })}`, { method: 'POST' });
    assert.equal(r.status, 200);
    const { id } = (await r.json()) as { id: string };
    const put = (offset: number | string, body: Buffer, token?: string, headers?: Record<string, string>) =>
      api(`/files/upload/${id}?${q({ offset })}`, { method: 'PUT', body: new Uint8Array(body), token, headers });
    const where = async () => {
      const s = await api(`/files/upload/${id}`);
      assert.equal(s.status, 200);
      return s.json();
    };
    r = await put(0, data.subarray(0, 100_000));
    assert.deepEqual(await r.json(), { offset: 100_000, size: data.length });
    const since = Date.now();

    // A share (watch-only) link the same admin made: it carries the admin's user, and is still refused everything, alone.
    const t = await c.client.terminal.create();
    const share = (await c.client.auth.share('box', t.terminalId, 600)).token;
    for (const [method, status] of [['PUT', 403], ['GET', 403], ['DELETE', 403]] as const) {
      r = method === 'PUT' ? await put(100_000, data.subarray(100_000, 200_000), share) : await api(`/files/upload/${id}`, { method, token: share });
      const body = await r.json();
      assert.equal(r.status, status, `${method} by a share link: ${JSON.stringify(body)}`);
      assert.equal(body.code, 'PERMISSION_DENIED');
      assert.deepEqual(await where(), { offset: 100_000, size: data.length, state: 'open', resumes: 0 }, `after the share link's ${method}`);
    }
    r = await api(`/files/upload?${q({ machine: 'box', path: path.join(work, 'share.bin'), size: 1 })}`, { method: 'POST', token: share });
    assert.equal(r.status, 403, 'nor may a share link open one');
    await r.body?.cancel();
    const audit = await c.client.auth.audit({ machine: 'box', sinceMs: since });
    assert.ok(audit.some((e) => e.action === 'file-write' && !e.ok && e.actor.startsWith('share:')), 'the refusals are audited');

    // Another user with no right on box, and one who may only watch: the upload is not there for them.
    await c.client.auth.addUser('rita', { password: 'rita-password-1' });
    await c.client.auth.addUser('otto', { password: 'otto-password-1' });
    await c.client.auth.grant('box', 'otto', 'observer');
    const others = [(await c.client.auth.createToken('rita-files', 0, 'rita')).token, (await c.client.auth.createToken('otto-files', 0, 'otto')).token];
    for (const token of others) {
      for (const method of ['PUT', 'GET', 'DELETE'] as const) {
        r = method === 'PUT' ? await put(100_000, Buffer.alloc(10), token) : await api(`/files/upload/${id}`, { method, token });
        assert.equal(r.status, 404, `${method} by another user`);
        await r.body?.cancel();
      }
    }

    // The owner's own malformed parts are refused and change nothing: a wrong offset, no offset, a body longer than what is left.
    r = await put(5, data.subarray(5, 100));
    assert.equal(r.status, 412);
    assert.equal((await r.json()).offset, 100_000);
    r = await put('abc', data.subarray(100_000, 100_010));
    assert.equal(r.status, 400);
    await r.body?.cancel();
    r = await put(100_000, Buffer.concat([data.subarray(100_000), Buffer.alloc(10)]));
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), {
      offset: 100_000,
      size: data.length,
      code: 'INVALID_ARGUMENT',
      message: `a part of ${data.length - 100_000 + 10} bytes from byte 100000 goes past the announced size of ${data.length}: refused, the upload is still at byte 100000`,
    });
    assert.deepEqual(await where(), { offset: 100_000, size: data.length, state: 'open', resumes: 0 });

    // The owner finishes it.
    r = await put(100_000, data.subarray(100_000, 200_000));
    assert.deepEqual(await r.json(), { offset: 200_000, size: data.length });
    r = await put(200_000, data.subarray(200_000));
    assert.equal(r.status, 200, JSON.stringify(await r.clone().json()));
    assert.equal((await r.json()).md5, crypto.createHash('md5').update(data).digest('hex'));
    assert.deepEqual(fs.readFileSync(path.join(work, name)), data, 'byte for byte');
    assert.deepEqual(partials(work).filter((n) => n.includes(name)), []);
    assert.ok(!fs.existsSync(path.join(work, 'share.bin')));
  });

  test('logged no errors in the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});

/** A PUT with a chunked body (no Content-Length), which fetch cannot send from a Buffer. */
function chunkedPut(url: string, token: string, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
  return http.request(url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' } }, onResponse);
}
