// Gives memory back once a burst is over, in the long-lived CMDOP processes
// (the control plane, the agent; also when the desktop app embeds them).
//
// Why: V8 collects when it allocates, never when it idles. After a flood or
// a file transfer the young generation stays grown (~18 MB) and the output
// chunks that died last stay counted until the next collection, which an
// idle server may never reach: the control plane sat at 206 MB after eight
// 100 MB `cat`s and took 150 MB with one collection (bench issue2's idle RSS
// row; it started at 112 MB). The server's heap flag (cli/relaunch.ts,
// --initial-old-space-size=128) makes that wait longer on purpose, so that
// chunks promoted mid-transfer do not set off full collections then.
//
// How: every CHECK_MS, if the event loop was nearly idle over that time and
// the heap plus ArrayBuffer memory has grown by GROWTH_BYTES since the last
// collection, collect once. A burst costs one full collection after it ends
// (~10-30 ms on a 30 MB heap, when nothing is waiting); a busy or a steady
// process is never touched. No library does this: it is V8's gc() behind
// the --expose-gc flag, which Node lets a running process set for a new
// context (v8.setFlagsFromString, then vm.runInNewContext('gc')).
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

const CHECK_MS = 2000;
/** Below this share of the last CHECK_MS spent running, the process is idle. */
const IDLE_UTILIZATION = 0.05;
const GROWTH_BYTES = 16 * 1024 * 1024;

let started = false;

/** The heap and the ArrayBuffers it keeps alive (or dead, until collected). */
function held(): number {
  const m = process.memoryUsage();
  return m.heapTotal + m.arrayBuffers;
}

function exposedGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts watching (once per process; later calls do nothing). CMDOP_IDLE_GC=0
 * turns it off, to measure what it is worth. Returns whether it runs.
 */
export function collectWhenIdle(env: NodeJS.ProcessEnv = process.env): boolean {
  if (started) return true;
  if (env.CMDOP_IDLE_GC === '0') return false;
  const gc = exposedGc();
  if (!gc) return false;
  started = true;
  let base = held();
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy < IDLE_UTILIZATION && held() - base > GROWTH_BYTES) {
      gc();
      base = held();
    }
  }, CHECK_MS);
  timer.unref(); // never keeps a process alive
  return true;
}
