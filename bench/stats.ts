// Small statistics over repeated measurements.

export function median(xs: number[]): number {
  return percentile(xs, 50);
}

/** Nearest-rank percentile (p in 0..100): always one of the samples, no interpolation. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** MB/s (MB = 10^6 bytes) for `bytes` moved in `ms`. */
export function mbPerS(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}
