// The hop trace (lib/hopTrace.ts, CMDOP_TRACE_HOPS): a real control plane,
// agent and SDK client each note a keystroke's hops in one file, and the
// bench's join (bench/hops.ts) finds every hop of every keystroke, in order.
// Without the variable nothing is written.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { flushHops, traceHopsTo } from '../lib/hopTrace';
import { KEYSTROKE_HOPS, OUTPUT_HOPS, hopTimes } from '../bench/hops';
import { eventually, startCluster, tempDir, type Cluster } from './helpers/cluster';

describe('hop trace', () => {
  let c: Cluster;
  let dir: string;
  let file: string;
  before(async () => {
    dir = tempDir();
    file = path.join(dir, 'hops.jsonl');
    c = await startCluster({ env: { CMDOP_TRACE_HOPS: file } });
    traceHopsTo(file);
  });
  after(async () => {
    await c?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a keystroke is noted on every hop, client to agent and back, in order; a flood is noted by the MiB', async () => {
    const client = c.newClient({ machine: 'box' });
    const a = await client.terminal.open();
    try {
      let seen = '';
      a.on('output', (d) => (seen += Buffer.from(d).toString()));
      for (const key of ['x', 'y', 'z']) {
        await a.sendInput(key);
        await eventually(() => seen.includes(key), 10_000, `the echo of ${key}`);
      }
      await client.terminal.execute(`head -c ${3 * 1024 * 1024} /dev/zero`, { pty: false });
      // Each process writes its notes every 100 ms.
      flushHops();
      const notes = await eventually(() => {
        const n = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
        const t = hopTimes(n, KEYSTROKE_HOPS);
        return t.complete >= 3 && hopTimes(n, OUTPUT_HOPS).complete >= 3 ? n : undefined;
      }, 10_000, 'the notes of three keystrokes and three MiB');
      const keys = hopTimes(notes, KEYSTROKE_HOPS);
      for (const h of keys.hops) for (const ms of h.ms) assert.ok(ms >= 0 && ms < 10_000, `${h.from} → ${h.to}: ${ms} ms`);
      const out = hopTimes(notes, OUTPUT_HOPS);
      for (const h of out.hops) for (const ms of h.ms) assert.ok(ms >= 0, `${h.from} → ${h.to}: ${ms} ms`);
    } finally {
      a.close();
      client.close();
    }
  });
});
