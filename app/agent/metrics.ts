// Heartbeat metrics: cpu, memory and disk use, and the battery where there is one.
import si from 'systeminformation';

export interface Metrics {
  cpuPercent: number;
  memoryPercent: number;
  diskPercent: number;
  batteryPercent: number | undefined;
  charging: boolean | undefined;
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Measuring spawns `df` and reads /proc: done at most this often, however often heartbeats go. */
const REFRESH_MS = 5000;
let cached: { at: number; value: Promise<Metrics> } | undefined;

export function collectMetrics(): Promise<Metrics> {
  if (!cached || Date.now() - cached.at >= REFRESH_MS) cached = { at: Date.now(), value: measure() };
  return cached.value;
}

async function measure(): Promise<Metrics> {
  const [load, mem, disks, battery] = await Promise.all([
    si.currentLoad().catch(() => undefined),
    si.mem().catch(() => undefined),
    si.fsSize().catch(() => []),
    si.battery().catch(() => undefined),
  ]);
  const root = disks.find((d) => d.mount === '/') ?? disks[0];
  return {
    cpuPercent: round(load?.currentLoad ?? 0),
    memoryPercent: mem ? round(((mem.total - mem.available) / mem.total) * 100) : 0,
    diskPercent: root ? round(root.use) : 0,
    batteryPercent: battery?.hasBattery ? battery.percent : undefined,
    charging: battery?.hasBattery ? battery.isCharging : undefined,
  };
}
