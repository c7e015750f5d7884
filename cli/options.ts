// Option parsers shared by the commands: a clear error for bad values.
import { InvalidArgumentError } from 'commander';

export function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * "90s", "15m", "1h", "7d", "2w" -> seconds; "never" -> 0. Parsed here
 * rather than by a library because commander needs the exact error text
 * and "never" has to mean no expiry.
 */
export function duration(value: string): number {
  if (value === 'never') return 0;
  const m = /^(\d+)([smhdw]?)$/.exec(value.trim());
  if (!m || Number(m[1]) === 0) throw new InvalidArgumentError('expected a duration such as 30m, 1h, 7d (or "never")');
  return Number(m[1]) * UNIT_S[m[2] || 's'];
}

/** An instant: a duration ago ("1h") or an ISO 8601 date; returns epoch ms. */
export function since(value: string): number {
  const m = /^(\d+)([smhdw])$/.exec(value.trim());
  if (m) return Date.now() - Number(m[1]) * UNIT_S[m[2]] * 1000;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgumentError('expected a duration ago (30m, 2h, 7d) or a date (2026-11-26T10:00)');
  return t;
}
