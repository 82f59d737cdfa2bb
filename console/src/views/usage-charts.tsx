import type { ConsoleAppQuery } from '../graphql/generated';
import type { Answered } from '../graphql/client';
import { useI18n } from '../i18n';
import { RemainingChart } from '../charts/remaining-chart';
import { StackedBars } from '../charts/stacked-bars';
import { cstMidnight } from '../period';
import { Empty } from '../ui/states';

export const USE_COLORS = { confirmed: '#2563eb', unconfirmed: '#d97706', unseen: '#9333ea', average: '#dc2626' };

/** Units left over the period with the forecast, and each day's use with the observed average. */
export function UsageCharts({ data, from, now }: { data: Answered<ConsoleAppQuery>; from: number; now: number }) {
  const { t, num, date } = useI18n();
  const q = data.quota;
  const h = data.usageHistory;
  const used = h.days.some((d) => d.confirmed || d.unconfirmed || d.unseen);
  const exhaustionAt = q.forecastExhaustionDate ? cstMidnight(q.forecastExhaustionDate) : null;
  return (
    <div class="charts">
      <div class="panel">
        <h3>{t('app.chart.remaining')}</h3>
        <RemainingChart
          points={h.snapshots.map((s) => ({ at: Date.parse(s.syncedAt), value: s.remaining }))}
          now={{ at: now, value: q.estimatedRemaining }}
          exhaustionAt={q.exempt ? null : exhaustionAt}
          from={from}
          ariaLabel={t('app.chart.remainingLabel', { remaining: num(q.estimatedRemaining), date: q.forecastExhaustionDate ?? t('app.noForecast') })}
          labels={{ synced: t('app.chart.synced'), estimate: t('app.chart.estimate'), forecast: t('app.chart.forecast') }}
          formatValue={(n) => num(n)}
          formatDate={(ms) => date(ms)}
        />
        {!h.snapshots.length && <p class="muted small">{t('app.chart.noSnapshots')}</p>}
      </div>
      <div class="panel">
        <h3>{t('app.chart.daily')}</h3>
        {used || q.dailyAverage > 0 ? (
          <StackedBars
            labels={h.days.map((d) => d.date.slice(5))}
            series={[
              { key: 'confirmed', label: t('app.chart.confirmed'), color: USE_COLORS.confirmed, values: h.days.map((d) => d.confirmed) },
              { key: 'unconfirmed', label: t('app.chart.unconfirmed'), color: USE_COLORS.unconfirmed, values: h.days.map((d) => d.unconfirmed) },
              { key: 'unseen', label: t('app.chart.unseen'), color: USE_COLORS.unseen, values: h.days.map((d) => d.unseen) },
            ]}
            reference={{ value: q.dailyAverage, label: t('app.chart.average'), color: USE_COLORS.average }}
            ariaLabel={t('app.chart.dailyLabel', { days: h.days.length, average: num(q.dailyAverage, 1) })}
            format={(n) => num(n)}
          />
        ) : (
          <Empty>{q.exempt ? t('app.chart.exemptNoUse') : t('app.chart.noUse')}</Empty>
        )}
      </div>
    </div>
  );
}
