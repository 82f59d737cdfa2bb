import { linear, niceTicks, spreadIndexes } from './scale';
import { useWidth } from './use-width';
import { Legend } from './legend';

export interface BarSeries {
  key: string;
  label: string;
  color: string;
  values: number[];
}

const M = { top: 10, right: 12, bottom: 26, left: 48 };

/**
 * Bars stacked per category (days, hours), drawn as plain SVG, with an optional horizontal
 * reference line (an average). Each segment names its series and value on hover.
 */
export function StackedBars(props: { labels: string[]; series: BarSeries[]; reference?: { value: number; label: string; color: string }; height?: number; ariaLabel: string; format: (n: number) => string }) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const height = props.height ?? 220;
  const n = props.labels.length;
  const totals = props.labels.map((_, i) => props.series.reduce((s, se) => s + (se.values[i] ?? 0), 0));
  const ticks = niceTicks(Math.max(1, ...totals, props.reference?.value ?? 0));
  const top = ticks[ticks.length - 1]!;
  const y = linear(0, top, height - M.bottom, M.top);
  const band = (width - M.left - M.right) / Math.max(1, n);
  const barWidth = Math.max(1, band * 0.78);
  const x = (i: number) => M.left + i * band + (band - barWidth) / 2;
  const shown = new Set(spreadIndexes(n, Math.max(2, Math.floor((width - M.left) / 70))));
  return (
    <figure class="chart" ref={ref}>
      <svg width={width} height={height} role="img" aria-label={props.ariaLabel}>
        {ticks.map((v) => (
          <g key={v}>
            <line x1={M.left} x2={width - M.right} y1={y(v)} y2={y(v)} class="grid" />
            <text x={M.left - 6} y={y(v) + 4} text-anchor="end" class="tick">
              {props.format(v)}
            </text>
          </g>
        ))}
        {props.labels.map((label, i) => {
          let base = 0;
          return (
            <g key={label}>
              {props.series.map((s) => {
                const v = s.values[i] ?? 0;
                if (!v) return null;
                const y0 = y(base);
                base += v;
                return (
                  <rect key={s.key} x={x(i)} y={y(base)} width={barWidth} height={Math.max(0.5, y0 - y(base))} fill={s.color}>
                    <title>{`${label} · ${s.label}: ${props.format(v)}`}</title>
                  </rect>
                );
              })}
              {shown.has(i) && (
                <text x={x(i) + barWidth / 2} y={height - 8} text-anchor="middle" class="tick">
                  {label}
                </text>
              )}
            </g>
          );
        })}
        {props.reference && props.reference.value > 0 && (
          <line x1={M.left} x2={width - M.right} y1={y(props.reference.value)} y2={y(props.reference.value)} stroke={props.reference.color} stroke-width="2" stroke-dasharray="5 4">
            <title>{`${props.reference.label}: ${props.format(props.reference.value)}`}</title>
          </line>
        )}
      </svg>
      <Legend items={[...props.series.map((s) => ({ key: s.key, label: s.label, color: s.color })), ...(props.reference ? [{ key: 'ref', label: props.reference.label, color: props.reference.color, dashed: true }] : [])]} />
    </figure>
  );
}
