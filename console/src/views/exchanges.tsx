import { useMemo, useState } from 'preact/hooks';
import { useI18n, type MessageKey } from '../i18n';
import { useQuery } from '../graphql/use-query';
import { ConsoleExchangeOutcomesDocument, type ConsoleExchangeOutcomesQuery, type OutcomeBucketSize } from '../graphql/generated';
import { cstDate, iso, lastDays } from '../period';
import { AppPicker } from '../ui/app-picker';
import { Empty, ErrorState, Loading } from '../ui/states';
import { Badge } from '../ui/badge';
import { StackedBars } from '../charts/stacked-bars';
import type { Answered } from '../graphql/client';

const PERIODS: { key: string; label: MessageKey; bucket: OutcomeBucketSize; range: () => { from: number; to: number } }[] = [
  { key: '24h', label: 'exchanges.period.24h', bucket: 'HOUR', range: () => ({ from: Date.now() - 24 * 3_600_000, to: Date.now() }) },
  { key: '7d', label: 'exchanges.period.7d', bucket: 'DAY', range: () => lastDays(7) },
  { key: '30d', label: 'exchanges.period.30d', bucket: 'DAY', range: () => lastDays(30) },
  { key: '90d', label: 'exchanges.period.90d', bucket: 'DAY', range: () => lastDays(90) },
];

const OUTCOME_COLORS: Record<string, string> = { disclosed: '#16a34a', replayed: '#0ea5e9' };
const CODE_COLORS: Record<string, string> = {
  INVALID_CODE: '#dc2626',
  CODE_ALREADY_USED: '#f97316',
  RATE_LIMITED: '#ca8a04',
  UPSTREAM_UNAVAILABLE: '#9333ea',
  OUTCOME_UNKNOWN: '#475569',
  GATEWAY_MISCONFIGURED: '#be185d',
  CONSENT_WITHDRAWN: '#0891b2',
  SERVICE_UNAVAILABLE: '#7c2d12',
};
const SPARE_COLORS = ['#84cc16', '#6366f1', '#14b8a6', '#f43f5e', '#a16207', '#78716c'];

// What a code usually means for whoever runs the mini program's backend.
const HINTS: Record<string, MessageKey> = {
  INVALID_CODE: 'exchanges.hint.INVALID_CODE',
  CODE_ALREADY_USED: 'exchanges.hint.CODE_ALREADY_USED',
  RATE_LIMITED: 'exchanges.hint.RATE_LIMITED',
  UPSTREAM_UNAVAILABLE: 'exchanges.hint.UPSTREAM_UNAVAILABLE',
  OUTCOME_UNKNOWN: 'exchanges.hint.OUTCOME_UNKNOWN',
  GATEWAY_MISCONFIGURED: 'exchanges.hint.GATEWAY_MISCONFIGURED',
  CONSENT_WITHDRAWN: 'exchanges.hint.CONSENT_WITHDRAWN',
  APP_MISMATCH: 'exchanges.hint.APP_MISMATCH',
  SERVICE_UNAVAILABLE: 'exchanges.hint.SERVICE_UNAVAILABLE',
};

type History = Answered<ConsoleExchangeOutcomesQuery>['exchangeOutcomes'];
// Error codes are upper case, outcomes lower case: the two never collide as keys.
const keyOf = (c: { outcome: string | null; errorCode: string | null }) => c.errorCode ?? (c.outcome ?? 'other').toLowerCase();

/** A rise: the later half of the period has clearly more of the code than the earlier half. */
function rising(h: History, code: string): boolean {
  const half = Math.floor(h.buckets.length / 2);
  const sum = (bs: History['buckets']) => bs.reduce((n, b) => n + b.counts.filter((c) => c.errorCode === code).reduce((m, c) => m + c.count, 0), 0);
  const early = sum(h.buckets.slice(0, half));
  const late = sum(h.buckets.slice(half));
  return late >= 5 && late > early * 1.5;
}

/** Exchange outcomes over time by error code, with what each code usually means. */
export function Exchanges() {
  const { t, num } = useI18n();
  const [appid, setAppid] = useState<string | null>(null);
  const [periodKey, setPeriodKey] = useState('7d');
  const period = PERIODS.find((p) => p.key === periodKey)!;
  const range = useMemo(() => period.range(), [periodKey]);
  const q = useQuery(ConsoleExchangeOutcomesDocument, { appid, from: iso(range.from), to: iso(range.to), bucket: period.bucket });
  const h = q.data?.exchangeOutcomes;

  const series = useMemo(() => {
    if (!h) return [];
    let spare = 0;
    return h.totals.map((c) => {
      const key = keyOf(c);
      const color = c.errorCode ? (CODE_COLORS[c.errorCode] ?? SPARE_COLORS[spare++ % SPARE_COLORS.length]!) : (OUTCOME_COLORS[keyOf(c)] ?? '#94a3b8');
      const label = c.errorCode ?? t(c.outcome === 'DISCLOSED' ? 'outcome.disclosed' : c.outcome === 'REPLAYED' ? 'outcome.replayed' : 'outcome.other');
      return { key, label, color, values: h.buckets.map((b) => b.counts.filter((x) => keyOf(x) === key).reduce((n, x) => n + x.count, 0)) };
    });
  }, [h, t]);

  const total = h?.totals.reduce((n, c) => n + c.count, 0) ?? 0;
  const labelOf = (start: string) => {
    const at = Date.parse(start);
    if (period.bucket === 'DAY') return cstDate(at).slice(5);
    const hour = new Date(at + 8 * 3_600_000).getUTCHours();
    return hour === 0 ? cstDate(at).slice(5) : `${String(hour).padStart(2, '0')}:00`;
  };

  return (
    <section aria-labelledby="exchanges-title">
      <div class="page-head">
        <h1 id="exchanges-title">{t('exchanges.title')}</h1>
      </div>
      <div class="toolbar">
        <label for="exchanges-app">{t('picker.app')}</label>
        <AppPicker id="exchanges-app" value={appid} onChange={setAppid} allowAll />
        <label>
          {t('app.period')}
          <select value={periodKey} onChange={(e) => setPeriodKey((e.currentTarget as HTMLSelectElement).value)}>
            {PERIODS.map((p) => (
              <option key={p.key} value={p.key}>
                {t(p.label)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={q.reload} disabled={q.loading}>
          {t('action.refresh')}
        </button>
      </div>
      <p class="muted small">{t('exchanges.source')}</p>
      {q.error && !h ? (
        <ErrorState error={q.error} retry={q.reload} />
      ) : !h || q.loading ? (
        <Loading />
      ) : total === 0 ? (
        <Empty>{t('exchanges.none')}</Empty>
      ) : (
        <>
          <div class="panel">
            <StackedBars labels={h.buckets.map((b) => labelOf(b.start))} series={series} ariaLabel={t('exchanges.chartLabel', { n: num(total), buckets: h.buckets.length })} format={(n) => num(n)} />
          </div>
          <div class="table-wrap">
            <table class="outcomes">
              <thead>
                <tr>
                  <th scope="col">{t('exchanges.col.outcome')}</th>
                  <th scope="col" class="num">
                    {t('exchanges.col.count')}
                  </th>
                  <th scope="col" class="num">
                    {t('exchanges.col.share')}
                  </th>
                  <th scope="col">{t('exchanges.col.meaning')}</th>
                </tr>
              </thead>
              <tbody>
                {h.totals.map((c) => {
                  const hint = c.errorCode ? HINTS[c.errorCode] : undefined;
                  const up = c.errorCode === 'INVALID_CODE' && rising(h, 'INVALID_CODE');
                  return (
                    <tr key={keyOf(c)} data-outcome={keyOf(c)}>
                      <th scope="row">
                        {c.errorCode ? <code>{c.errorCode}</code> : t(c.outcome === 'DISCLOSED' ? 'outcome.disclosed' : c.outcome === 'REPLAYED' ? 'outcome.replayed' : 'outcome.other')}
                        {up && (
                          <>
                            {' '}
                            <Badge tone="danger">{t('exchanges.rising')}</Badge>
                          </>
                        )}
                      </th>
                      <td class="num">{num(c.count)}</td>
                      <td class="num">{num((100 * c.count) / total, 1)}%</td>
                      <td class={up ? 'warn-text' : 'muted small'}>{hint ? t(hint) : ''}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
