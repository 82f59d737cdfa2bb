import { linear, niceTicks } from './scale';
import { useWidth } from './use-width';
import { Legend } from './legend';

const M = { top: 12, right: 16, bottom: 26, left: 56 };
export const COLORS = { synced: '#2563eb', estimate: '#0f766e', forecast: '#b45309' };

/**
 * Units left over time: WeChat's count at each day's last sync, the gateway's estimate now, and
 * the forecast running down to zero on the exhaustion date (cut at the chart's right edge when
 * that date is further off than the period shown).
 */
export function RemainingChart(props: {
  points: { at: number; value: number }[];
  now: { at: number; value: number };
  exhaustionAt: number | null;
  from: number;
  ariaLabel: string;
  labels: { synced: string; estimate: string; forecast: string };
  formatValue: (n: number) => string;
  formatDate: (ms: number) => string;
}) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const height = 240;
  const span = props.now.at - props.from;
  const end = props.exhaustionAt !== null ? Math.min(props.exhaustionAt, props.now.at + span) : props.now.at + span / 6;
  const x = linear(props.from, end, M.left, width - M.right);
  const ticks = niceTicks(Math.max(1, props.now.value, ...props.points.map((p) => p.value)));
  const y = linear(0, ticks[ticks.length - 1]!, height - M.bottom, M.top);
  const visible = props.points.filter((p) => p.at >= props.from - span);
  const line = visible.map((p) => `${x(Math.max(p.at, props.from)).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  let forecastEnd: { at: number; value: number } | null = null;
  if (props.exhaustionAt !== null && props.exhaustionAt > props.now.at) {
    const share = (end - props.now.at) / (props.exhaustionAt - props.now.at);
    forecastEnd = { at: end, value: props.now.value * (1 - share) };
  }
  const tickCount = Math.max(2, Math.min(6, Math.floor(width / 120)));
  const dateTicks = Array.from({ length: tickCount }, (_, i) => props.from + ((end - props.from) * i) / (tickCount - 1));
  return (
    <figure class="chart" ref={ref}>
      <svg width={width} height={height} role="img" aria-label={props.ariaLabel}>
        {ticks.map((v) => (
          <g key={v}>
            <line x1={M.left} x2={width - M.right} y1={y(v)} y2={y(v)} class="grid" />
            <text x={M.left - 6} y={y(v) + 4} text-anchor="end" class="tick">
              {props.formatValue(v)}
            </text>
          </g>
        ))}
        {dateTicks.map((t, i) => (
          <text key={t} x={x(t)} y={height - 8} text-anchor={i === 0 ? 'start' : i === dateTicks.length - 1 ? 'end' : 'middle'} class="tick">
            {props.formatDate(t)}
          </text>
        ))}
        <line x1={x(props.now.at)} x2={x(props.now.at)} y1={M.top} y2={height - M.bottom} class="now" />
        {visible.length > 1 && <polyline points={line} fill="none" stroke={COLORS.synced} stroke-width="2" />}
        {visible.map((p) => (
          <circle key={p.at} cx={x(Math.max(p.at, props.from))} cy={y(p.value)} r="3" fill={COLORS.synced}>
            <title>{`${props.formatDate(p.at)} · ${props.labels.synced}: ${props.formatValue(p.value)}`}</title>
          </circle>
        ))}
        {forecastEnd && <line x1={x(props.now.at)} y1={y(props.now.value)} x2={x(forecastEnd.at)} y2={y(forecastEnd.value)} stroke={COLORS.forecast} stroke-width="2" stroke-dasharray="6 4" />}
        <circle cx={x(props.now.at)} cy={y(props.now.value)} r="4.5" fill={COLORS.estimate}>
          <title>{`${props.labels.estimate}: ${props.formatValue(props.now.value)}`}</title>
        </circle>
      </svg>
      <Legend
        items={[
          { key: 'synced', label: props.labels.synced, color: COLORS.synced },
          { key: 'estimate', label: props.labels.estimate, color: COLORS.estimate },
          ...(props.exhaustionAt !== null ? [{ key: 'forecast', label: props.labels.forecast, color: COLORS.forecast, dashed: true }] : []),
        ]}
      />
    </figure>
  );
}
