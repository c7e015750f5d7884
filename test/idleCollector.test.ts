// lib/idleCollector.ts in a process of its own: a burst of buffers that die
// is collected once the process goes idle, and not when it is turned off.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { SERVER_NODE_FLAGS } from '../cli/relaunch';

const MODULE = path.join(__dirname, '..', 'lib', 'idleCollector.js');

/** Runs a burst (128 MiB of 256 KiB buffers, all dropped) in a node with the control plane's heap flag, idles 5 s; returns the ArrayBuffer MB before and after the idle. */
function burstThenIdle(env: NodeJS.ProcessEnv): { running: boolean; during: number; after: number } {
  const script = `
    const { collectWhenIdle } = require(${JSON.stringify(MODULE)});
    const running = collectWhenIdle();
    // Kept across a few allocations so that some survive young collections, as output chunks do.
    let held = [];
    for (let i = 0; i < 512; i++) { held.push(Buffer.alloc(256 * 1024, i)); if (held.length > 128) held = held.slice(64); }
    held = null;
    const during = process.memoryUsage().arrayBuffers / 1e6;
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ running, during, after: process.memoryUsage().arrayBuffers / 1e6 }));
    }, 5000);
  `;
  return JSON.parse(execFileSync(process.execPath, [...SERVER_NODE_FLAGS, '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' }));
}

describe('idle collector', () => {
  it('gives back the memory of a burst once the process is idle', () => {
    const r = burstThenIdle({});
    assert.equal(r.running, true);
    assert.ok(r.during > 16, `the burst left ${r.during} MB of dead buffers uncollected (nothing to show)`);
    assert.ok(r.after < r.during / 2, `after 5 s idle: ${r.after} MB of ArrayBuffers, ${r.during} MB right after the burst`);
  });

  it('CMDOP_IDLE_GC=0 leaves it to V8', () => {
    const r = burstThenIdle({ CMDOP_IDLE_GC: '0' });
    assert.equal(r.running, false);
    assert.ok(r.after > r.during / 2, `without the collector the dead buffers stay: ${r.after} of ${r.during} MB`);
  });
});
