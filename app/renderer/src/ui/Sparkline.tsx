// A tiny SVG line of the last heartbeats (0-100 %): enough to see a trend
// without a chart library.
const W = 64;
const H = 18;

export function Sparkline({ label, values, testId }: { label: string; values: number[]; testId: string }) {
  const known = values.filter((v) => Number.isFinite(v));
  const last = known.length > 0 ? known[known.length - 1] : undefined;
  const step = values.length > 1 ? W / (values.length - 1) : 0;
  const y = (v: number) => H - 1 - (Math.max(0, Math.min(100, v)) / 100) * (H - 2);
  const points = values
    .map((v, i) => (Number.isFinite(v) ? `${(i * step).toFixed(1)},${y(v).toFixed(1)}` : ''))
    .filter(Boolean)
    .join(' ');
  return (
    <span className="metric" data-testid={testId} data-samples={values.length} title={`${label}: last ${values.length} heartbeats`}>
      <span className="metric-label">{label}</span>
      <svg width={W} height={H} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${label} history`}>
        <rect x="0" y="0" width={W} height={H} className="spark-bg" />
        {known.length === 1 ? <circle cx={W - 2} cy={y(known[0])} r="1.5" className="spark-line" /> : <polyline points={points} className="spark-line" fill="none" />}
      </svg>
      <span className="metric-value">{last === undefined ? '–' : `${Math.round(last)}%`}</span>
    </span>
  );
}
