// The two pieces under the file-transfer data path that are not about files:
// the sender that keeps chunks from delaying a keystroke's echo, and the
// allocator priming that keeps chunk buffers from costing a page fault each.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { PrioritySender } from '../lib/prioritySender';

/** A stream like a gRPC call's: a Writable that takes one message at a time, each taking `ms`. */
function slowStream(ms: number) {
  const got: string[] = [];
  const stream = new Writable({
    objectMode: true,
    write(msg: string, _enc, cb) {
      setTimeout(() => {
        got.push(msg);
        cb();
      }, ms);
    },
  });
  return { stream, got };
}

/** Ends the stream once the sender has handed it everything, and waits for the stream to finish. */
async function settle(stream: Writable, s?: PrioritySender<string>): Promise<void> {
  while (s && s.queued > 0) await new Promise((r) => setTimeout(r, 2));
  await new Promise<void>((resolve) => stream.end(resolve));
}

describe('PrioritySender', () => {
  it('lets an interactive message pass queued chunks: at most one chunk is ahead of it', async () => {
    const { stream, got } = slowStream(3);
    const s = new PrioritySender<string>(stream);
    for (let i = 0; i < 10; i++) s.sendBulk(`chunk ${i}`);
    s.send('echo');
    await settle(stream, s);
    assert.ok(got.indexOf('echo') <= 1, `echo arrived after ${got.indexOf('echo')} chunks: ${got.join(', ')}`);
    assert.deepEqual(
      got.filter((m) => m !== 'echo'),
      Array.from({ length: 10 }, (_, i) => `chunk ${i}`),
      'chunks keep their order',
    );
  });

  it('is needed: written straight to the stream, the same echo waits for every chunk', async () => {
    const { stream, got } = slowStream(3);
    for (let i = 0; i < 10; i++) stream.write(`chunk ${i}`);
    stream.write('echo');
    await settle(stream);
    assert.equal(got.indexOf('echo'), 10);
  });

  it('hands the stream one chunk at a time', async () => {
    const { stream } = slowStream(2);
    const s = new PrioritySender<string>(stream);
    for (let i = 0; i < 5; i++) s.sendBulk(`chunk ${i}`);
    assert.equal(stream.writableLength, 1, 'one chunk with the stream');
    assert.equal(s.queued, 4, 'four waiting');
    await settle(stream, s);
  });

  it('drops queued chunks and writes nothing more once closed', async () => {
    const { stream, got } = slowStream(2);
    const s = new PrioritySender<string>(stream);
    for (let i = 0; i < 5; i++) s.sendBulk(`chunk ${i}`);
    s.close();
    s.send('late');
    s.sendBulk('late chunk');
    await settle(stream);
    assert.deepEqual(got, ['chunk 0'], 'only the chunk already with the stream');
    assert.equal(s.queued, 0);
  });
});

describe('keepFreedMemoryForReuse', () => {
  const glibc = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
  const why = process.platform !== 'linux' ? 'page-fault counts are read from /proc (Linux)' : !glibc ? 'it tunes glibc malloc, and this is not glibc' : false;

  it('lets a transfer-like churn of 2 MiB buffers reuse pages instead of faulting in new ones', { skip: why }, () => {
    // 512 MiB through fresh 2 MiB buffers, allocated and copied as grpc-js does
    // per chunk. New pages each time would be 2 x 131072 faults; reused ones, a few thousand.
    const script = `
      require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'mallocReuse.js'))}).keepFreedMemoryForReuse();
      const faults = () => Number(require('fs').readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ')[7]);
      const src = Buffer.alloc(2 * 1024 * 1024, 7);
      let n = 0; let f0;
      const step = () => {
        for (let k = 0; k < 8; k++) {
          const framed = Buffer.allocUnsafe(src.length + 5);
          src.copy(framed, 5);
          Buffer.concat([framed.subarray(0, 1 << 20), framed.subarray(1 << 20)]);
        }
        if (++n === 4) f0 = faults(); // after warm-up: the primer has been freed by then
        if (n < 36) setImmediate(step); else console.log(faults() - f0);
      };
      step();`;
    const faults = Number(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim());
    const fresh = (2 * 32 * 8 * 2 * 1024 * 1024) / 4096;
    assert.ok(faults < fresh / 5, `${faults} page faults for 512 MiB of churn (fresh pages every time would be ${fresh})`);
  });
});
