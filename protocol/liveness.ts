// When an agent's heartbeat counts as late: one rule for the control plane
// (the reason it gives when the stream is lost) and for clients (a machine
// "not responding" before the heartbeat timeout starts its grace period).
// The slack covers timer jitter and the metrics a heartbeat waits for; a
// quarter of the interval, at least 2 s, so a 30 s heartbeat is late after
// 39.5 s, against the 60 s the heartbeat timeout waits.
export const HEARTBEAT_SLACK_MIN_MS = 2000;

/** How long after the last heartbeat the next one is late. */
export function heartbeatLateAfterMs(intervalMs: number): number {
  return intervalMs + Math.max(HEARTBEAT_SLACK_MIN_MS, intervalMs / 4);
}

/** True when a heartbeat `ageMs` old means the next one is late. An unknown interval or age (0) is never late. */
export function heartbeatLate(ageMs: number, intervalMs: number): boolean {
  return intervalMs > 0 && ageMs > 0 && ageMs > heartbeatLateAfterMs(intervalMs);
}

/** "45s", "12m", "3h05m", "4d02h": how long an agent has run (the CLI's machines table and the console's machines view). */
export function uptimeText(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}
