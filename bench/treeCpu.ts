// CPU time of whole process trees (a client and everything it starts, a
// server and the per-connection processes it forks), read from /proc while
// they run: a process that exits is counted up to the last poll before it
// went, so each one may be short by up to one interval of CPU (Linux only,
// like the bench).
import fs from 'node:fs';
import { cpuSeconds } from './procfs';

/** Pids of `pid`'s children (of any of its threads), zombies included until they are reaped. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // gone
  }
  for (const tid of tids) {
    try {
      for (const c of fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}

/** `pid` and all its descendants alive now. */
export function treeOf(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...childrenOf(p));
  }
  return out;
}

/** The command name of a process (/proc/PID/comm), or '' when it is gone. */
export function commOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal) since boot, all cores. */
export function machineBusySeconds(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0)) / 100;
}

/**
 * CPU seconds the kernel's own threads (children of kthreadd, pid 2) have
 * used: kworkers run a PTY's line discipline and other work no process is
 * charged for. A thread that exits between two readings drops out of the sum.
 */
export function kernelThreadSeconds(): number {
  let s = 0;
  for (const pid of childrenOf(2)) {
    const cpu = cpuSeconds(pid);
    if (Number.isFinite(cpu)) s += cpu;
  }
  return s;
}

export interface TreeCpuWatch {
  /** Polls once more, stops, and returns the CPU seconds each named tree used since the watch began. */
  stop(): Record<string, number>;
}

/**
 * Watches named process trees, polling every `intervalMs`. A process already
 * there at the start counts from the start; one that appears later counts
 * from its birth (all of its CPU).
 */
export function watchTreeCpu(roots: Record<string, number | number[]>, intervalMs = 100): TreeCpuWatch {
  const base = new Map<number, number>();
  const last = new Map<number, { label: string; cpu: number }>();
  const poll = (first: boolean) => {
    for (const [label, root] of Object.entries(roots)) {
      for (const pid of [root].flat().flatMap(treeOf)) {
        const cpu = cpuSeconds(pid);
        if (!Number.isFinite(cpu)) continue;
        if (first) base.set(pid, cpu);
        last.set(pid, { label, cpu });
      }
    }
  };
  poll(true);
  const timer = setInterval(() => poll(false), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      poll(false);
      const out: Record<string, number> = Object.fromEntries(Object.keys(roots).map((k) => [k, 0]));
      for (const [pid, { label, cpu }] of last) out[label] += cpu - (base.get(pid) ?? 0);
      return out;
    },
  };
}
