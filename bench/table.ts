// The report: one row per metric, CMDOP beside its comparisons, the ratios,
// and whether the target from the issue was met.

export type Verdict = 'met' | 'MISSED' | 'n/a' | '';

export interface Row {
  metric: string;
  cmdop: string;
  ssh: string;
  raw: string;
  vsSsh: string;
  vsRaw: string;
  target: string;
  verdict: Verdict;
}

const HEADER: Row = {
  metric: 'metric',
  cmdop: 'CMDOP',
  ssh: 'ssh',
  raw: 'raw PTY',
  vsSsh: 'CMDOP/ssh',
  vsRaw: 'CMDOP/raw',
  target: 'target',
  verdict: '' as Verdict,
};
const COLUMNS: (keyof Row)[] = ['metric', 'cmdop', 'ssh', 'raw', 'vsSsh', 'vsRaw', 'target', 'verdict'];
const NUMERIC = new Set<keyof Row>(['cmdop', 'ssh', 'raw', 'vsSsh', 'vsRaw']);

/** A Markdown table (readable as text, pastes into an issue as is). */
export function renderTable(rows: Row[]): string {
  const all = [{ ...HEADER, verdict: 'result' as Verdict }, ...rows];
  const width = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row) =>
    '| ' + COLUMNS.map((k) => (NUMERIC.has(k) && r !== all[0] ? r[k].padStart(width(k)) : r[k].padEnd(width(k)))).join(' | ') + ' |';
  const rule = '|' + COLUMNS.map((k) => (NUMERIC.has(k) ? '-'.repeat(width(k) + 1) + ':' : '-'.repeat(width(k) + 2))).join('|') + '|';
  return [line(all[0]), rule, ...rows.map(line)].join('\n');
}

/** A figure with `digits` decimals, or "—" when there is none. */
export function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

/** A ratio as "0.93×", or "—". */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '—';
  return `${(a / b).toFixed(2)}×`;
}

/** met when every check that could be made passed; n/a when none could be made. */
export function verdict(checks: (boolean | undefined)[]): Verdict {
  const made = checks.filter((c): c is boolean => c !== undefined);
  if (made.length === 0) return 'n/a';
  return made.every(Boolean) ? 'met' : 'MISSED';
}

/** A column of a free-form table: its title, and whether its figures align right. */
export interface Column<K extends string> {
  key: K;
  title: string;
  numeric?: boolean;
}

/** A Markdown table with any columns (the sessions table has no ssh or raw PTY to compare with). */
export function renderGrid<K extends string>(columns: Column<K>[], rows: Record<K, string>[]): string {
  const header = Object.fromEntries(columns.map((c) => [c.key, c.title])) as Record<K, string>;
  const all = [header, ...rows];
  const width = (k: K) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Record<K, string>) =>
    '| ' + columns.map((c) => (c.numeric && r !== header ? r[c.key].padStart(width(c.key)) : r[c.key].padEnd(width(c.key)))).join(' | ') + ' |';
  const rule = '|' + columns.map((c) => (c.numeric ? '-'.repeat(width(c.key) + 1) + ':' : '-'.repeat(width(c.key) + 2))).join('|') + '|';
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** The columns of a table of figures against their targets (sessions, replicas). */
export type TargetKey = 'metric' | 'cmdop' | 'target' | 'vsTarget' | 'verdict';
export const TARGET_COLUMNS: Column<TargetKey>[] = [
  { key: 'metric', title: 'metric' },
  { key: 'cmdop', title: 'CMDOP', numeric: true },
  { key: 'target', title: 'target' },
  { key: 'vsTarget', title: 'CMDOP/target', numeric: true },
  { key: 'verdict', title: 'result' },
];
