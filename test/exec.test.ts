// cmdop exec and SDK execute: byte-exact output with and without a PTY,
// stdout/stderr kept apart, exit codes, stdin.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, runCli, startCluster } from './helpers/cluster';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('exec', () => {
  let c: Cluster;
  let big: string;
  let bigHash: string;
  let binary: string;
  let text: string;

  before(async () => {
    c = await startCluster();
    big = path.join(c.dir, 'big.bin');
    const data = randomBytes(50 * 1024 * 1024);
    fs.writeFileSync(big, data);
    bigHash = sha(data);
    binary = path.join(c.dir, 'all-bytes.bin');
    const all = Buffer.alloc(256 * 64);
    for (let i = 0; i < all.length; i++) all[i] = i % 256;
    fs.writeFileSync(binary, all);
    text = path.join(c.dir, 'text.txt');
    fs.writeFileSync(text, randomBytes(3 * 1024 * 1024).toString('base64').replace(/(.{76})/g, '$1\n'));
  });
  after(() => c.stop());

  it('delivers 50 MB of binary stdout byte-exact without a PTY', async () => {
    const r = await runCli(['exec', 'box', '--', 'cat', big], { server: c.server });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 50 * 1024 * 1024);
    assert.equal(sha(r.stdout), bigHash);
  });

  it('keeps every byte value intact and stdout apart from stderr', async () => {
    const r = await runCli(['exec', 'box', '--', `cat ${binary}; echo to-stderr >&2`], { server: c.server });
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout, fs.readFileSync(binary));
    assert.equal(r.stderr, 'to-stderr\n');
  });

  for (const code of [0, 7]) {
    it(`returns the remote exit code ${code}`, async () => {
      const r = await runCli(['exec', 'box', '--', `exit ${code}`], { server: c.server });
      assert.equal(r.code, code);
    });
  }

  it('exits 127 like a shell for a missing program, with and without a shell', async () => {
    const direct = await runCli(['exec', 'box', '--', 'no-such-program-xyz', 'arg'], { server: c.server });
    assert.equal(direct.code, 127);
    assert.match(direct.stderr, /no-such-program-xyz: command not found/);
    const viaShell = await runCli(['exec', 'box', '--', 'no-such-program-xyz'], { server: c.server });
    assert.equal(viaShell.code, 127);
    const viaPty = await runCli(['exec', '-t', 'box', '--', 'no-such-program-xyz', 'x'], { server: c.server });
    assert.equal(viaPty.code, 127);
  });

  it('reports death by signal as 128+N', async () => {
    const r = await runCli(['exec', 'box', '--', 'kill -TERM $$'], { server: c.server });
    assert.equal(r.code, 128 + 15);
  });

  it('forwards stdin byte-exact and closes it at the end', async () => {
    const input = fs.readFileSync(binary);
    const r = await runCli(['exec', 'box', '--', 'cat'], { server: c.server, input });
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout, input);
  });

  it('delivers 50 MB through a PTY byte-exact (-t, raw mode)', async () => {
    const r = await runCli(['exec', '-t', 'box', '--', `stty raw -echo; cat ${big}`], { server: c.server });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 50 * 1024 * 1024);
    assert.equal(sha(r.stdout), bigHash);
  });

  it('never loses the last bytes of a PTY child that writes a lot and exits at once (repeated)', async () => {
    // node-pty can report exit before the final output; a paused reader makes it likelier.
    const expected = fs.readFileSync(text);
    for (let i = 0; i < 8; i++) {
      const r = await c.client.terminal.execute(`stty -opost; cat ${text}; exit 3`, { machine: 'box', pty: true });
      assert.equal(r.exitCode, 3);
      assert.equal(r.stdoutBytes.length, expected.length, `run ${i}: ${expected.length - r.stdoutBytes.length} bytes short`);
      assert.ok(r.stdoutBytes.equals(expected), `run ${i}: content differs`);
      assert.deepEqual(r.gaps, []);
    }
  });

  it('SDK execute returns exit code, stdout and stderr, and streams output', async () => {
    const seen: string[] = [];
    const r = await c.client.terminal.execute('echo out; echo err >&2; exit 5', {
      machine: 'box',
      onOutput: (d, stream) => seen.push(`${stream}:${Buffer.from(d).toString()}`),
    });
    assert.equal(r.exitCode, 5);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.deepEqual(seen.sort(), ['stderr:err\n', 'stdout:out\n']);
  });
});
