// Reading a process's memory and CPU time from /proc (Linux only, like the bench).
import fs from 'node:fs';

/** Resident set size in MB (10^6 bytes, like every figure of the bench), or NaN when the process is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (Number(m[1]) * 1024) / 1e6 : NaN; // /proc's kB are KiB
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds (user + system, all threads) the process has used so far.
 * /proc counts in clock ticks; USER_HZ is 100 on every Linux build that Node
 * supports, so it is not looked up.
 */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** CPU seconds the process has used so far in user mode and in the kernel (NaN when it is gone). */
export function cpuTimes(pid: number): { user: number; system: number } {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after it are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 }; // utime, stime (fields 14, 15)
  } catch {
    return { user: NaN, system: NaN };
  }
}

/**
 * From /proc/PID/stat: the parent, the CPU seconds the process itself has
 * used (utime + stime), and those of the children it has waited for
 * (cutime + cstime: a child's whole total is added there when its parent
 * reaps it); undefined when the process is gone. A zombie still reads: its
 * own figures are final.
 */
export function procStat(pid: number): { ppid: number; own: number; reaped: number } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // state ppid ... utime stime cutime cstime (fields 3, 4, ..., 14-17)
    return { ppid: Number(f[1]), own: (Number(f[11]) + Number(f[12])) / 100, reaped: (Number(f[13]) + Number(f[14])) / 100 };
  } catch {
    return undefined;
  }
}

export interface RssSampler {
  /** Stops sampling; resolves with the largest RSS seen per pid, MB. */
  stop(): Map<number, number>;
}

/** Samples the RSS of `pids` every `intervalMs` until stopped. */
export function sampleRss(pids: number[], intervalMs: number): RssSampler {
  const max = new Map<number, number>(pids.map((p) => [p, 0]));
  const sample = () => {
    for (const pid of pids) max.set(pid, Math.max(max.get(pid)!, rssMb(pid) || 0));
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return max;
    },
  };
}
