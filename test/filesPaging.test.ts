// Directory listings a page at a time, end to end: a real control plane and
// agent on loopback, a directory of 120,005 entries listed completely by
// `cmdop ls` (plain and --json) and by the SDK's page iterator, with every
// name checked (none twice, none missing, in bytewise order); entries added
// and removed between pages; bad page tokens and page sizes; and an older
// client's request, which gets the whole directory in one reply as before
// paging, or RESOURCE_EXHAUSTED (never a first page it would take for all).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, Cluster, cliEnv, runCli, startCluster, tempDir } from './helpers/cluster';
import { FileType, InvalidArgumentError, ResourceExhaustedError, type FileEntry } from '../sdk';
import { FilePathRequest, LIST_DEFAULT_PAGE, LIST_MAX_PAGE, ListFilesRequest } from '../protocol';

const BIG = 120_000;
const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const numbered = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

function touchAll(dir: string, names: string[]): void {
  for (const n of names) fs.closeSync(fs.openSync(path.join(dir, n), 'w'));
}

/** Fails with the first duplicate or the size difference, rather than a 120k-line diff. */
function assertSameNames(got: string[], want: string[], what: string): void {
  const seen = new Set<string>();
  for (const n of got) {
    assert.ok(!seen.has(n), `${what}: ${n} listed twice`);
    seen.add(n);
  }
  const missing = want.filter((n) => !seen.has(n));
  assert.deepEqual(missing.slice(0, 5), [], `${what}: ${missing.length} missing`);
  assert.equal(got.length, want.length, `${what}: ${got.length} listed, ${want.length} expected`);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], want[i], `${what}: entry ${i} out of order`);
}

describe('files: listing a directory a page at a time', () => {
  let c: Cluster;
  let work: string;
  let big: string;
  /** Every name in `big`, in the order a listing must give them. */
  let all: string[];

  before(async () => {
    c = await startCluster();
    c.client.setMachine('box');
    work = tempDir('cmdop-paging-');
    big = path.join(work, 'big');
    fs.mkdirSync(big);
    const t0 = Date.now();
    // Created out of order; dotted names (hidden without -a) and directories (shown with '/') among them.
    const files = numbered(BIG, 'f-').reverse();
    touchAll(big, files);
    touchAll(big, ['.hidden-a', '.hidden-b', 'Zeta']);
    fs.mkdirSync(path.join(big, 'dir-1'));
    fs.mkdirSync(path.join(big, 'zz-dir'));
    all = [...files, '.hidden-a', '.hidden-b', 'Zeta', 'dir-1', 'zz-dir'].sort(bytewise);
    console.log(`# ${all.length} entries made in ${Date.now() - t0} ms`);
  });
  after(async () => {
    await c?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it(`cmdop ls lists all ${BIG + 5} entries once each, in order, plain and --json`, async () => {
    const dirs = new Set(['dir-1', 'zz-dir']);
    const visible = all.filter((n) => !n.startsWith('.'));
    let t0 = Date.now();
    const r = await runCli(['ls', `box:${big}`], { server: c.server, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    assertSameNames(lines, visible.map((n) => (dirs.has(n) ? `${n}/` : n)), 'cmdop ls');
    console.log(`# cmdop ls: ${lines.length} names in ${Date.now() - t0} ms`);

    t0 = Date.now();
    const j = await runCli(['ls', '-a', '--json', `box:${big}`], { server: c.server, timeoutMs: 120_000 });
    assert.equal(j.code, 0, j.stderr);
    const parsed = JSON.parse(j.stdout.toString()) as { name: string; type: string; size: number }[];
    assertSameNames(parsed.map((e) => e.name), all, 'cmdop ls -a --json');
    assert.deepEqual(parsed.find((e) => e.name === 'dir-1')?.type, 'directory');
    assert.deepEqual(parsed.find((e) => e.name === 'f-000007')?.size, 0);
    console.log(`# cmdop ls -a --json: ${parsed.length} entries in ${Date.now() - t0} ms`);
  });

  it('cmdop ls into a reader that goes away (| head) stops quietly with status 0', async () => {
    const p = spawn(process.execPath, [CLI, '--server', c.server, 'ls', `box:${big}`], { env: cliEnv(c.server), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const first = await new Promise<string>((resolve) => p.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    p.stdout.destroy(); // what head does after its first lines
    const [code] = (await once(p, 'exit')) as [number | null];
    assert.match(first, /^Zeta\ndir-1\/\nf-000000\n/);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, '');
  });

  it('the SDK: pages() and listAll() walk every page; list() without paging options still returns everything', async () => {
    let t0 = Date.now();
    const names: string[] = [];
    let pages = 0;
    for await (const p of c.client.files.pages(big)) {
      pages++;
      assert.equal(p.totalEntries, all.length);
      assert.ok(p.entries.length === LIST_DEFAULT_PAGE || !p.nextPageToken, `page ${pages}: ${p.entries.length} entries`);
      names.push(...p.entries.map((e) => e.name));
    }
    assert.equal(pages, Math.ceil(all.length / LIST_DEFAULT_PAGE));
    assertSameNames(names, all, 'pages()');
    console.log(`# pages(): ${pages} pages in ${Date.now() - t0} ms`);

    t0 = Date.now();
    const viaIterator: FileEntry[] = [];
    for await (const e of c.client.files.listAll(big, { pageSize: LIST_MAX_PAGE })) viaIterator.push(e);
    assertSameNames(viaIterator.map((e) => e.name), all, 'listAll()');
    assert.equal(viaIterator.find((e) => e.name === 'zz-dir')?.type, FileType.FILE_TYPE_DIRECTORY);
    console.log(`# listAll(): ${viaIterator.length} entries in ${Date.now() - t0} ms`);

    const everything = await c.client.files.list(big);
    assert.ok(Array.isArray(everything));
    assertSameNames(everything.map((e) => e.name), all, 'list()');
  });

  it('one page at a time with list(path, {pageSize, pageToken}); the page size is bounded', async () => {
    const first = await c.client.files.list(big, { pageSize: 7 });
    assert.deepEqual(first.entries.map((e) => e.name), all.slice(0, 7));
    assert.equal(first.totalEntries, all.length);
    const second = await c.client.files.list(big, { pageSize: 7, pageToken: first.nextPageToken });
    assert.deepEqual(second.entries.map((e) => e.name), all.slice(7, 14));
    // The default, the cap (asking for more is not an error), and sizes the SDK refuses before sending.
    assert.equal((await c.client.files.list(big, { pageToken: '' })).entries.length, LIST_DEFAULT_PAGE);
    assert.equal((await c.client.files.list(big, { pageSize: 0 })).entries.length, LIST_DEFAULT_PAGE, 'the SDK sends 0 as the default');
    assert.equal((await c.client.files.list(big, { pageSize: 1_000_000 })).entries.length, LIST_MAX_PAGE);
    for (const pageSize of [-1, 1.5, 2 ** 32, NaN]) {
      await assert.rejects(c.client.files.list(big, { pageSize }), (e: Error) => e instanceof InvalidArgumentError && /pageSize/.test(e.message), String(pageSize));
    }
  });

  it('entries added and removed between pages: those there throughout come exactly once, the removed never', async () => {
    const d = path.join(work, 'changing');
    fs.mkdirSync(d);
    const names = numbered(50, 'n');
    touchAll(d, names);
    const listed: string[] = [];
    let pages = 0;
    for await (const p of c.client.files.pages(d, { pageSize: 20 })) {
      listed.push(...p.entries.map((e) => e.name));
      if (++pages === 1) {
        await new Promise((r) => setTimeout(r, 20)); // past a coarse clock tick, so the directory's mtime shows the change
        for (const n of ['n000005', 'n000019', 'n000030']) fs.rmSync(path.join(d, n));
        touchAll(d, ['a-behind', 'n000019b', 'z-ahead']);
      }
    }
    assert.equal(new Set(listed).size, listed.length, 'no name twice');
    const expected = [...names.filter((n) => n !== 'n000030'), 'n000019b', 'z-ahead'].sort(bytewise);
    assert.deepEqual(listed, expected, 'every name there throughout once; n000030 (removed ahead) not; a-behind (added behind the cursor) not');
  });

  it('a bad page token is refused with a clear message and changes nothing', async () => {
    const first = await c.client.files.list(big, { pageSize: 3 });
    const other = path.join(work, 'changing');
    const bad: [string, RegExp][] = [
      ['garbage!', /invalid page token for .*big: not a page token; list again without a token/],
      [first.nextPageToken.slice(0, -2) + (first.nextPageToken.endsWith('AA') ? 'BB' : 'AA'), /invalid page token for .*big/],
      ['A'.repeat(5000), /page_token is longer than 4096/],
    ];
    for (const [token, re] of bad) {
      await assert.rejects(c.client.files.list(big, { pageToken: token }), (e: Error) => e instanceof InvalidArgumentError && re.test(e.message), token.slice(0, 20));
    }
    await assert.rejects(c.client.files.list(other, { pageToken: first.nextPageToken }), (e: Error) => e instanceof InvalidArgumentError && /another directory/.test(e.message));
    // The good token still continues where it did.
    const next = await c.client.files.list(big, { pageSize: 3, pageToken: first.nextPageToken });
    assert.deepEqual(next.entries.map((e) => e.name), all.slice(3, 6));
  });

  it('an older client (ListFiles took FilePathRequest) gets a whole directory in one reply, or a clear error: never a silent first page', async () => {
    const oldRequest = (dir: string) => {
      const old = FilePathRequest.encode({ machine: 'box', path: dir }).finish();
      assert.deepEqual(ListFilesRequest.decode(old), { machine: 'box', path: dir, pageSize: 0, pageToken: '' });
      return c.client.unary('listFiles', ListFilesRequest.decode(old));
    };
    // More than a default page, small enough for one reply: all of it, as before paging.
    const mid = path.join(work, 'mid');
    fs.mkdirSync(mid);
    const names = numbered(LIST_DEFAULT_PAGE + 500, 'm-');
    touchAll(mid, names);
    const r = await oldRequest(mid);
    assert.deepEqual(r.entries.map((e) => e.name), names);
    assert.equal(r.nextPageToken, '');
    // Too big for one reply: refused, as before paging, and saying why.
    await assert.rejects(oldRequest(big), (e: Error) => e instanceof ResourceExhaustedError && /predates paging/.test(e.message));
  });
});
