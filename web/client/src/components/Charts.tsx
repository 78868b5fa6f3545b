// Small dependency-free SVG charts for the report page.

export function ScoreRing({ score, label }: { score: number | null; label: string }) {
  const r = 44;
  const c = 2 * Math.PI * r;
  const frac = score == null ? 0 : Math.max(0, Math.min(1, score / 5));
  return (
    <svg className="ring" viewBox="0 0 110 110" role="img" aria-label={`${label}: ${score ?? "-"} / 5`}>
      <circle cx="55" cy="55" r={r} className="ring-bg" />
      {score != null && (
        <circle
          cx="55"
          cy="55"
          r={r}
          className="ring-fg"
          strokeDasharray={`${c * frac} ${c}`}
          transform="rotate(-90 55 55)"
        />
      )}
      <text x="55" y="58" textAnchor="middle" className="ring-value">
        {score == null ? "–" : score.toFixed(1)}
      </text>
      <text x="55" y="76" textAnchor="middle" className="ring-max">
        / 5
      </text>
    </svg>
  );
}

export interface Bar {
  label: string;
  value: number | null;
  title?: string;
}

// Horizontal bars: one row per item, value text at the bar's end; `max` fixes the scale.
export function BarChart({ bars, max, unit = "", testId }: { bars: Bar[]; max: number; unit?: string; testId?: string }) {
  const rowH = 30;
  const labelW = 44;
  const width = 320;
  const plotW = width - labelW - 48;
  const height = bars.length * rowH + 8;
  return (
    <svg className="bars-chart" viewBox={`0 0 ${width} ${height}`} role="img" data-testid={testId}>
      {bars.map((b, i) => {
        const y = 4 + i * rowH;
        const w = b.value == null ? 0 : Math.max(2, (Math.min(b.value, max) / max) * plotW);
        return (
          <g key={i}>
            <title>{b.title ?? b.label}</title>
            <text x={labelW - 8} y={y + 19} textAnchor="end" className="bar-label">
              {b.label}
            </text>
            <rect x={labelW} y={y + 6} width={plotW} height={16} rx={8} className="bar-track" />
            <rect x={labelW} y={y + 6} width={w} height={16} rx={8} className={`bar-fill ${tone(b.value, max)}`} />
            <text x={labelW + w + 6} y={y + 19} className="bar-value">
              {b.value == null ? "–" : `${round(b.value)}${unit}`}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function tone(value: number | null, max: number): string {
  if (value == null || max !== 5) return "neutral";
  return value >= 4 ? "good" : value >= 3 ? "ok" : "low";
}

function round(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
