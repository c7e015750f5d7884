// Where the time goes between a keystroke and its echo, and between a PTY
// read and the client: each process on the path (client, control plane,
// agent) notes when a keystroke or an output byte passes each of its hops,
// and the bench (`BENCH_ONLY=hops`) joins the notes into a histogram per
// hop. Off unless CMDOP_TRACE_HOPS names a file; then each process appends
// one JSON line per note to it (buffered, written every 100 ms and at
// exit). Every process runs on one machine in the bench, so one clock
// serves all: the system's monotonic clock (process.hrtime, CLOCK_MONOTONIC
// on Linux, shared by every process), in ms. Not the wall clock: each
// process's performance.timeOrigin is its own reading of it, and an NTP
// step between two processes' starts would skew every hop between them.
//
// Keys: a keystroke is its input's `ref` until the control plane names it
// (`cp.in` carries both), then its command_id, which the echo's output
// chunk carries back. An output byte is `o:K`, the byte at offset K MiB of
// its terminal's stream, noted by whichever chunk holds it on each hop, so
// re-chunking along the way does not matter.
import fs from 'node:fs';

const MIB = 1024 * 1024;
const FLUSH_MS = 100;

let file: string | undefined | null = null;
let lines: string[] = [];
let timer: NodeJS.Timeout | undefined;

/** Read once, when first asked (a bench sets the variable before it starts tracing in its own process). */
export function tracing(): boolean {
  if (file === null) {
    file = process.env.CMDOP_TRACE_HOPS || undefined;
    if (file) process.once('exit', flush);
  }
  return file !== undefined;
}

/** Traces this process's notes to `path` from now on (the bench's own process, whose environment was read long before). */
export function traceHopsTo(path: string): void {
  flush();
  if (file === null) process.once('exit', flush);
  file = path;
}

/** Writes what is buffered now. */
export function flushHops(): void {
  flush();
}

function flush(): void {
  if (!file || lines.length === 0) return;
  fs.appendFileSync(file, lines.join(''));
  lines = [];
}

/** The clock notes are taken on (ms on the machine's monotonic clock, ns precision). */
export const hopNow = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Notes that `key` (and `alias`, its other name) passed `hop` now (or `at`, taken earlier with hopNow). */
export function hop(name: string, key: string, alias?: string, at = hopNow()): void {
  if (!tracing()) return;
  lines.push(JSON.stringify({ h: name, k: key, a: alias, t: at }) + '\n');
  if (!timer) {
    timer = setTimeout(() => {
      timer = undefined;
      flush();
    }, FLUSH_MS);
    timer.unref();
  }
}

/** The output-byte key a chunk [seq, seq + length) carries, if it holds a MiB boundary. */
export function outputKey(seq: number, length: number): string | undefined {
  const boundary = Math.ceil(seq / MIB) * MIB;
  return boundary < seq + length ? `o:${boundary / MIB}` : undefined;
}

/**
 * Notes a chunk on `hop`: its echo (the first chunk after a new input, by
 * command id; `last` remembers the previous one per place) and the output
 * byte it holds, if any.
 */
export function hopChunk(name: string, last: { commandId: string }, commandId: string, seq: number, length: number): void {
  if (!tracing()) return;
  if (commandId && commandId !== last.commandId) {
    last.commandId = commandId;
    hop(name, commandId);
  }
  const k = outputKey(seq, length);
  if (k) hop(name, k);
}
