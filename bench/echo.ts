// Keystroke echo latency: type one byte into a remote shell's terminal and
// time until the terminal's echo of it comes back, the delay a user feels
// on every key. The same procedure runs over a CMDOP terminal (SDK) and over
// `ssh -tt` (a child with pipes), both reached through this process's event
// loop, so the bench's own overhead is on both sides.
import { performance } from 'node:perf_hooks';
import { sleep } from './procs';

/** A byte pipe to an interactive shell in a PTY. */
export interface ShellChannel {
  write(text: string): void;
  /** Subscribes to output (as latin1, one char per byte); returns the unsubscribe. */
  onOutput(cb: (text: string) => void): () => void;
}

/**
 * Resolves with the time (performance.now(), taken in the output callback
 * itself, not after a promise hop) when `needle` first appears in output
 * that arrives from now on.
 */
export function waitForOutput(ch: ShellChannel, needle: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${JSON.stringify(needle)} in the terminal's output within ${timeoutMs} ms; saw ${JSON.stringify(seen.slice(-300))}`));
    }, timeoutMs);
    const off = ch.onOutput((text) => {
      const now = performance.now();
      seen = (seen + text).slice(-4096);
      if (seen.includes(needle)) {
        clearTimeout(timer);
        off();
        resolve(now);
      }
    });
  });
}

/**
 * Turns the shell into a pure echo: `stty -icanon` makes the line discipline
 * echo each byte as it arrives (no shell or readline in the measured path,
 * so both sides measure the transport only), and `cat > /dev/null` reads
 * the bytes so nothing else ever prints. "RE''ADY" is echoed as typed but
 * prints READY, so the marker is the command's output, not its echo.
 */
export async function prepareEchoShell(ch: ShellChannel): Promise<void> {
  const ready = waitForOutput(ch, 'READY', 20_000);
  ch.write("stty -icanon; echo RE''ADY; exec cat > /dev/null\r");
  await ready;
  await sleep(300); // let the prompt and the command's echo settle
}

export interface EchoOptions {
  samples: number;
  /** Samples taken first and thrown away (JIT, first-use allocations on both ends). */
  warmup: number;
}

/** Round-trip times of single keystrokes, ms. */
export async function measureEcho(ch: ShellChannel, opts: EchoOptions): Promise<number[]> {
  const out: number[] = [];
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < opts.warmup + opts.samples; i++) {
    // A different letter each time: a late echo of the previous key cannot count for this one.
    const key = letters[i % letters.length];
    const echoed = waitForOutput(ch, key, 5000);
    const t0 = performance.now();
    ch.write(key);
    const t1 = await echoed;
    if (i >= opts.warmup) out.push(t1 - t0);
    // Typing pace, varied so that samples do not lock onto a timer's phase.
    await sleep(5 + (i % 7) * 2);
  }
  return out;
}
