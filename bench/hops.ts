// Issue 15, "make the path visible first": where a keystroke's round trip
// and an output byte's trip spend their time, hop by hop. The control
// plane, the agent and this process (the SDK client) all note each hop in
// one trace file (lib/hopTrace.ts, CMDOP_TRACE_HOPS); this joins the notes
// by key and prints, per hop, percentiles and a histogram.
//
// A keystroke: client.send → cp.in (the control plane has the message)
// → cp.toAgent (written to the agent's stream) → agent.in → agent.pty (written
// to the PTY) → agent.read (the echo's first byte read) → agent.send →
// cp.out → cp.toClient → client.recv. An output byte (every MiB of a PTY
// flood): agent.flush (in the agent's log) → agent.send → cp.out →
// cp.toClient → client.recv.
//
// Then the floor under them (bench/boundaryFloor.ts): one round trip between
// two bare node processes over TCP and over grpc-js.
import fs from 'node:fs';
import path from 'node:path';
import { flushHops, traceHopsTo } from '../lib/hopTrace';
import { floorReport, measureBoundaryFloor } from './boundaryFloor';
import { sdkShellChannel } from './channels';
import { startCmdop } from './cmdopCluster';
import { measureEcho, prepareEchoShell } from './echo';
import type { ProcessSet } from './procs';
import { sleep } from './procs';
import { percentile } from './stats';

interface Note {
  h: string;
  k: string;
  a?: string;
  t: number;
}

export const KEYSTROKE_HOPS = ['client.send', 'cp.in', 'cp.toAgent', 'agent.in', 'agent.pty', 'agent.read', 'agent.send', 'cp.out', 'cp.toClient', 'client.recv'];
export const OUTPUT_HOPS = ['agent.flush', 'agent.send', 'cp.out', 'cp.toClient', 'client.recv'];

/** Upper bounds (ms) of the histogram's buckets; the last is open. */
const BUCKETS = [0.05, 0.1, 0.2, 0.5, 1, 2, 5, 20, 100];

export interface HopsConfig {
  keystrokes: number;
  floodMb: number;
}

export interface HopTimes {
  /** Per hop "a → b", the times (ms) of every traced item that passed both. */
  hops: { from: string; to: string; ms: number[] }[];
  /** Items traced end to end. */
  complete: number;
}

/** The notes in `file` from byte `from` on. */
function readNotes(file: string, from: number): Note[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file).subarray(from).toString('utf8');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Note);
}

/** Joins notes into timelines (key → hop → time) and the times between consecutive hops. */
export function hopTimes(notes: Note[], order: string[]): HopTimes {
  // A keystroke is known by its ref until cp.in names its command id.
  const renamed = new Map<string, string>();
  for (const n of notes) if (n.h === 'cp.in' && n.a) renamed.set(n.k, n.a);
  const lines = new Map<string, Map<string, number>>();
  for (const n of notes) {
    const key = n.h === 'client.send' ? renamed.get(n.k) : n.h === 'cp.in' ? n.a : n.k;
    if (!key) continue;
    let l = lines.get(key);
    if (!l) lines.set(key, (l = new Map()));
    if (!l.has(n.h)) l.set(n.h, n.t);
  }
  const hops = order.slice(1).map((to, i) => ({ from: order[i], to, ms: [] as number[] }));
  let complete = 0;
  for (const l of lines.values()) {
    if (!order.every((h) => l.has(h))) continue;
    complete++;
    for (const hop of hops) hop.ms.push(l.get(hop.to)! - l.get(hop.from)!);
  }
  return { hops, complete };
}

function histogram(ms: number[]): string {
  const counts = new Array(BUCKETS.length + 1).fill(0) as number[];
  for (const x of ms) {
    const i = BUCKETS.findIndex((b) => x < b);
    counts[i === -1 ? BUCKETS.length : i]++;
  }
  return counts.map((c, i) => (c ? `${i < BUCKETS.length ? `<${BUCKETS[i]}` : `≥${BUCKETS[BUCKETS.length - 1]}`}:${c}` : '')).filter(Boolean).join(' ');
}

export function hopsReport(title: string, t: HopTimes): string {
  const total = t.hops.length ? t.hops[0].ms.map((_, i) => t.hops.reduce((s, h) => s + h.ms[i], 0)) : [];
  const row = (name: string, ms: number[]) =>
    `  ${name.padEnd(26)} p50 ${percentile(ms, 50).toFixed(3).padStart(8)}  p90 ${percentile(ms, 90).toFixed(3).padStart(8)}  p99 ${percentile(ms, 99).toFixed(3).padStart(8)} ms   ${histogram(ms)}`;
  return [
    `${title} (${t.complete} traced end to end; histogram buckets in ms)`,
    ...t.hops.map((h) => row(`${h.from} → ${h.to}`, h.ms)),
    row('total', total),
    '',
  ].join('\n');
}

/** Runs the traced keystrokes and flood against a control plane and agent of their own; returns the report. */
export async function measureHops(o: { dir: string; procs: ProcessSet; cfg: HopsConfig; progress(m: string): void }): Promise<string> {
  const file = path.join(o.dir, 'hops.jsonl');
  fs.mkdirSync(o.dir, { recursive: true });
  const env = { CMDOP_TRACE_HOPS: file };
  o.progress('hops: a control plane and an agent tracing every hop');
  const cmdop = await startCmdop(path.join(o.dir, 'cmdop'), o.procs, 'hops', [], { env }, env);
  traceHopsTo(file);
  const client = cmdop.newClient({ machine: cmdop.machine });
  try {
    // Every process writes its notes every 100 ms: wait for theirs before reading.
    const settle = async () => {
      flushHops();
      await sleep(400);
      return fs.existsSync(file) ? fs.statSync(file).size : 0;
    };
    const a = await client.terminal.open({ cols: 80, rows: 24 });
    let keys: HopTimes;
    try {
      const ch = sdkShellChannel(a);
      await prepareEchoShell(ch);
      const start = await settle();
      o.progress(`hops: ${o.cfg.keystrokes} traced keystrokes`);
      await measureEcho(ch, { samples: o.cfg.keystrokes, warmup: 0 });
      const end = await settle();
      keys = hopTimes(readNotes(file, start), KEYSTROKE_HOPS);
      o.progress(`hops: a ${o.cfg.floodMb} MB PTY flood, every MiB traced`);
      await client.terminal.execute(`head -c ${o.cfg.floodMb * 1024 * 1024} /dev/zero | tr '\\0' x`, { pty: true });
      await settle();
      const out = hopTimes(readNotes(file, end).filter((n) => n.k.startsWith('o:')), OUTPUT_HOPS);
      o.progress(`hops: the floor, ${o.cfg.keystrokes} round trips over bare TCP and over grpc-js between two processes`);
      const floor = await measureBoundaryFloor(o.cfg.keystrokes);
      return (
        hopsReport('Keystroke echo, per hop', keys) +
        '\n' +
        hopsReport(`Output bytes in a ${o.cfg.floodMb} MB PTY flood, per hop`, out) +
        '\n' +
        floorReport(floor).join('\n') +
        '\n'
      );
    } finally {
      a.close();
    }
  } finally {
    client.close();
    await cmdop.stop();
  }
}
