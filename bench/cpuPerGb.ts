// CPU-seconds per GB of output for each process of a throughput run (issue
// 15: "Every throughput line of the bench shows CPU-seconds per GB for each
// process"): the client, the control plane, the agent or sshd, and the
// remote `cat`, per timed run.
//
// Why /proc is polled during the run rather than read once before and once
// after it: most of these processes are born and die inside the run (the
// client, sshd's per-connection processes, the remote cat), so there is no
// "after" to read them at, and which role a process has (sshd, or the
// command it runs) can only be told while it lives. Every POLL_MS each
// watched tree is walked and each process's own CPU (utime + stime) since
// the last poll goes to its role. What a process used after its last poll
// is recovered when its parent reaps it: the parent's cutime + cstime then
// grow by the child's whole total, and what of it was not counted yet goes
// to the child's role. So nothing is short by a poll interval, and the roles
// add up to the CPU of the trees (Linux only, like the bench). Polling a
// control plane, an agent and a client costs the bench about 1 % of a core.
import os from 'node:os';
import { procStat } from './procfs';
import { sleep } from './procs';
import { Column, fmt, renderGrid } from './table';
import { childrenOf, commOf, kernelThreadSeconds, machineBusySeconds } from './treeCpu';

export type Role = 'client' | 'control plane' | 'agent' | 'sshd' | 'remote command';

/** What to watch during a contestant's timed run. */
export interface CpuPlan {
  /** Long-lived trees already running (the control plane, the agent, sshd); each process's role from its command name. */
  readonly trees: { pid: number; role(comm: string, isRoot: boolean): Role }[];
  /** The role of what the run spawns (the client; raw PTY's cat) and of its descendants, counted from birth. */
  readonly spawned: Role;
  /** The bench process works in the run itself (raw node-pty reads the PTY here): its CPU goes to this role. */
  readonly self?: Role;
  /** The roles this contestant reports, in order. */
  readonly roles: Role[];
  /** How a role is named in this contestant's line, where not by its role name. */
  readonly names?: Partial<Record<Role, string>>;
}

export interface RunCpu {
  /** CPU seconds per role during the run. */
  byRole: Partial<Record<Role, number>>;
  /** CPU seconds of the kernel's threads over the same window (a PTY's line discipline runs in kworkers; anyone else's too). */
  kernel: number;
  /** Busy CPU seconds of the whole machine over the same window (the bench's polling and anyone else's load included). */
  machine: number;
}

export interface RunCpuWatch {
  /** The run has just spawned `pid`: its tree is watched from its birth. */
  spawned(pid: number): void;
  /** Waits until every process born during the watch is gone (reaped), polls a last time and stops. */
  stop(): Promise<RunCpu>;
}

const POLL_MS = 100;
/** Longest wait for the run's processes to be gone after it (sshd's per-connection ones exit after the client). */
const SETTLE_MS = 3000;

interface Proc {
  role: Role;
  parent: number;
  /** own + reaped at first sight: 0 for a process born during the watch. */
  base: number;
  lastOwn: number;
  /** CPU counted for this process and its descendants during the watch. */
  counted: number;
  born: boolean;
  gone: boolean;
  /** The role of a child of this one that came and went between two polls, unseen. */
  unseen: Role;
}

/** A parent's reaped-children CPU not yet matched with the children that were seen to exit. */
interface Reaper {
  lastReaped: number;
  unmatched: number;
  /** The children seen to exit last: what `unmatched` goes to. */
  recent: number[];
}

export function watchRunCpu(plan: CpuPlan): RunCpuWatch {
  const byRole: Partial<Record<Role, number>> = Object.fromEntries(plan.roles.map((r) => [r, 0]));
  const roots = plan.trees.map((t) => ({ pid: t.pid, role: t.role }));
  const procs = new Map<number, Proc>();
  // The bench reaps what the run spawns: its own cutime + cstime complete those.
  const reapers = new Map<number, Reaper>([[process.pid, { lastReaped: procStat(process.pid)?.reaped ?? 0, unmatched: 0, recent: [] }]]);
  const machine0 = machineBusySeconds();
  const kernel0 = kernelThreadSeconds();
  const self0 = process.cpuUsage();
  let first = true;
  let seen = new Set<number>();

  const credit = (pid: number, role: Role, cpu: number) => {
    if (!(cpu > 0)) return;
    byRole[role] = (byRole[role] ?? 0) + cpu;
    for (let p = procs.get(pid); p; p = procs.get(p.parent)) p.counted += cpu;
  };

  const poll = () => {
    const now = new Set<number>();
    for (const root of roots) {
      const todo: [number, number | undefined][] = [[root.pid, undefined]];
      while (todo.length) {
        const [pid, parent] = todo.pop()!;
        if (now.has(pid)) continue;
        const st = procStat(pid);
        if (!st) continue; // gone: settled below
        now.add(pid);
        const role = root.role(commOf(pid), pid === root.pid);
        let p = procs.get(pid);
        if (!p) {
          const born = !first;
          p = {
            role,
            parent: parent ?? st.ppid,
            base: born ? 0 : st.own + st.reaped,
            lastOwn: born ? 0 : st.own,
            counted: 0,
            born,
            gone: false,
            unseen: root.role('', false),
          };
          procs.set(pid, p);
          reapers.set(pid, { lastReaped: born ? 0 : st.reaped, unmatched: 0, recent: [] });
        }
        p.role = role; // a forked child takes its role once it has exec'd
        credit(pid, role, st.own - p.lastOwn);
        p.lastOwn = st.own;
        const r = reapers.get(pid)!;
        r.unmatched += st.reaped - r.lastReaped;
        r.lastReaped = st.reaped;
        for (const c of childrenOf(pid)) todo.push([c, pid]);
      }
    }
    const bench = reapers.get(process.pid)!;
    const reaped = procStat(process.pid)?.reaped ?? bench.lastReaped;
    bench.unmatched += reaped - bench.lastReaped;
    bench.lastReaped = reaped;

    // Exited since the last poll: their totals are (or soon will be) in their parents' reaped CPU.
    const exited = new Map<number, number[]>();
    for (const [pid, p] of procs) {
      if (p.gone || now.has(pid)) continue;
      p.gone = true;
      const r = reapers.get(p.parent);
      if (!r) continue;
      r.unmatched -= p.base + p.counted;
      exited.set(p.parent, [...(exited.get(p.parent) ?? []), pid]);
    }
    for (const [parent, r] of reapers) {
      const gone = exited.get(parent);
      if (gone) r.recent = gone;
      // Negative: a child is gone from /proc but not yet in its parent's figures; the next poll evens it out.
      if (r.unmatched <= 0) continue;
      const lost = r.unmatched;
      r.unmatched = 0;
      if (r.recent.length === 0) {
        // A child that came and went between two polls (none of the bench's own: they are not this run's).
        const unseen = procs.get(parent)?.unseen;
        if (unseen) credit(parent, unseen, lost);
        continue;
      }
      const kids = r.recent.map((pid) => procs.get(pid)!);
      const sum = kids.reduce((s, k) => s + k.counted, 0);
      r.recent.forEach((pid, i) => credit(pid, kids[i].role, sum > 0 ? (lost * kids[i].counted) / sum : lost / kids.length));
    }
    seen = now;
    first = false;
  };

  poll();
  const timer = setInterval(poll, POLL_MS);
  return {
    spawned(pid) {
      roots.push({ pid, role: () => plan.spawned });
      poll();
    },
    async stop() {
      clearInterval(timer);
      const deadline = Date.now() + SETTLE_MS;
      for (;;) {
        poll();
        const running = [...procs].some(([pid, p]) => p.born && seen.has(pid));
        if (!running || Date.now() > deadline) break;
        await sleep(POLL_MS / 5);
      }
      // Once more: a child reaped between its parent's reading and its own is in the parent's figures now.
      poll();
      if (plan.self) {
        const u = process.cpuUsage(self0);
        byRole[plan.self] = (byRole[plan.self] ?? 0) + (u.user + u.system) / 1e6;
      }
      return { byRole, kernel: kernelThreadSeconds() - kernel0, machine: machineBusySeconds() - machine0 };
    },
  };
}

// ---------------------------------------------------------------- report

/** Median CPU seconds per timed run, per role; what a contestant's line and row are made of. */
export interface CpuSummary {
  readonly byRole: Partial<Record<Role, number>>;
  readonly kernel: number;
  readonly machine: number;
  readonly roles: Role[];
  readonly names: Partial<Record<Role, string>>;
}

const ROLE_NAMES: Record<Role, string> = {
  client: 'client',
  'control plane': 'control plane',
  agent: 'agent',
  sshd: 'sshd',
  'remote command': 'cat',
};

/** Seconds of CPU per GB (10^9 bytes) of payload. */
const perGb = (seconds: number, payloadBytes: number) => seconds / (payloadBytes / 1e9);

const total = (c: CpuSummary) => c.roles.reduce((s, r) => s + (c.byRole[r] ?? 0), 0);

/** e.g. "CPU per GB: client 7.1 s, control plane 6.5 s, agent 8.0 s, cat 14.9 s (total 36.5 s); kernel threads 1.2 s, whole machine 38.0 s". */
export function cpuLine(c: CpuSummary, payloadBytes: number): string {
  const s = (x: number) => `${fmt(perGb(x, payloadBytes))} s`;
  const parts = c.roles.map((r) => `${c.names[r] ?? ROLE_NAMES[r]} ${s(c.byRole[r] ?? 0)}`);
  return `CPU per GB: ${parts.join(', ')} (total ${s(total(c))}); kernel threads ${s(c.kernel)}, whole machine ${s(c.machine)}`;
}

type Key = 'contestant' | 'client' | 'controlPlane' | 'server' | 'remote' | 'total' | 'kernel' | 'machine' | 'ceiling';
const COLUMNS: Column<Key>[] = [
  { key: 'contestant', title: 'contestant' },
  { key: 'client', title: 'client', numeric: true },
  { key: 'controlPlane', title: 'control plane', numeric: true },
  { key: 'server', title: 'agent / sshd', numeric: true },
  { key: 'remote', title: 'remote cat', numeric: true },
  { key: 'total', title: 'total', numeric: true },
  { key: 'kernel', title: 'kernel threads', numeric: true },
  { key: 'machine', title: 'whole machine', numeric: true },
  { key: 'ceiling', title: `MB/s at that cost on ${os.availableParallelism()} cores`, numeric: true },
];

/** One row per contestant, one column per role: "CPU-seconds per GB of output, by process". */
export function cpuTable(rows: { label: string; payloadBytes: number; cpu?: CpuSummary }[]): string {
  return renderGrid(
    COLUMNS,
    rows.map(({ label, payloadBytes, cpu }) => {
      const g = (r: Role[]) => {
        const has = cpu && r.find((x) => cpu.roles.includes(x));
        return has ? fmt(perGb(cpu.byRole[has] ?? 0, payloadBytes)) : '—';
      };
      return {
        contestant: label,
        client: g(['client']),
        controlPlane: g(['control plane']),
        server: g(['agent', 'sshd']),
        remote: g(['remote command']),
        total: cpu ? fmt(perGb(total(cpu), payloadBytes)) : '—',
        kernel: cpu ? fmt(perGb(cpu.kernel, payloadBytes)) : '—',
        machine: cpu ? fmt(perGb(cpu.machine, payloadBytes)) : '—',
        // The cost model's bound: every core busy with nothing but this, at the whole machine's CPU per GB.
        ceiling: cpu ? fmt((os.availableParallelism() * 1000) / perGb(cpu.machine, payloadBytes)) : '—',
      };
    }),
  );
}
