import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../protocol/backoff';

describe('Backoff (protocol/backoff.ts)', () => {
  it('doubles up to the cap without jitter, and starts over on reset', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 2000, jitter: false });
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(() => b.next()), [100, 200, 400, 800, 1600, 2000, 2000]);
    b.reset();
    assert.equal(b.next(), 100);
  });

  it('with jitter, each delay lies between half the ceiling and the ceiling, and they differ', () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 1000 });
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const d = b.next();
      assert.ok(d >= 500 && d <= 1000, `${d}`);
      seen.add(d);
    }
    assert.ok(seen.size > 50, `jittered: ${seen.size} distinct delays of 200`);
  });

  it('a tighter cap for one call wins (the agent with a session to resume)', () => {
    const b = new Backoff({ initialMs: 250, maxMs: 30_000, jitter: false });
    for (let i = 0; i < 10; i++) b.next();
    assert.equal(b.next(2000), 2000);
    assert.equal(b.next(), 30_000);
  });

  it('never overflows, however long it retries', () => {
    const b = new Backoff({ initialMs: 1, maxMs: 5000, jitter: false });
    for (let i = 0; i < 5000; i++) assert.equal(Number.isFinite(b.next()), true);
    assert.equal(b.next(), 5000);
  });
});
