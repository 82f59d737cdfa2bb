import { useState } from 'preact/hooks';
import { useI18n, type MessageKey } from '../i18n';
import { useQuery } from '../graphql/use-query';
import { ConsoleReconciliationDocument, type ConsoleReconciliationQuery } from '../graphql/generated';
import { navigate } from '../router';
import { cstDate, dateRange, DAY_MS, iso } from '../period';
import { AppPicker } from '../ui/app-picker';
import { Empty, ErrorState, Loading } from '../ui/states';
import { Stat } from '../ui/stat';
import { Legend } from '../charts/legend';
import type { Answered } from '../graphql/client';

const PART_COLORS = { confirmed: '#2563eb', unconfirmed: '#d97706', reported: '#0d9488', unexplained: '#dc2626', wechat: '#475569' };

// What usually accounts for charges the gateway's records do not: lost callbacks, extra taps, codes taken elsewhere.
const CAUSES: MessageKey[] = ['recon.cause.extraTaps', 'recon.cause.leftPage', 'recon.cause.unreported', 'recon.cause.elsewhere', 'recon.cause.devVersions'];

type Report = Answered<ConsoleReconciliationQuery>['reconciliation'];

/** 计费误差排查: WeChat's growth over a period beside what the gateway saw and clients reported. */
export function ReconciliationView({ appid }: { appid: string | null }) {
  const { t } = useI18n();
  const today = cstDate(Date.now());
  const [fromDate, setFromDate] = useState(cstDate(Date.now() - 6 * DAY_MS));
  const [toDate, setToDate] = useState(today);
  const [range, setRange] = useState(() => dateRange(fromDate, toDate));
  const report = useQuery(ConsoleReconciliationDocument, { appid: appid ?? '', from: iso(range?.from ?? 0), to: iso(range?.to ?? 1) }, { skip: !appid || !range });

  const apply = (e: Event) => {
    e.preventDefault();
    setRange(dateRange(fromDate, toDate));
  };

  return (
    <section aria-labelledby="recon-title">
      <div class="page-head">
        <h1 id="recon-title">{t('recon.title')}</h1>
      </div>
      <form class="toolbar" onSubmit={apply} autocomplete="off">
        <label for="recon-app">{t('picker.app')}</label>
        <AppPicker id="recon-app" value={appid} onChange={(a) => navigate({ name: 'reconciliation', appid: a })} />
        <label>
          {t('period.from')}
          <input type="date" value={fromDate} max={today} onInput={(e) => setFromDate((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t('period.to')}
          <input type="date" value={toDate} max={today} onInput={(e) => setToDate((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary">
          {t('recon.compare')}
        </button>
      </form>
      {!dateRange(fromDate, toDate) && <p class="warn-text">{t('period.invalid')}</p>}
      {!appid ? (
        <Empty>{t('recon.pickApp')}</Empty>
      ) : report.error ? (
        <ErrorState error={report.error} retry={report.reload} />
      ) : !report.data || report.loading ? (
        <Loading />
      ) : (
        <ReportView r={report.data.reconciliation} />
      )}
    </section>
  );
}

function ReportView({ r }: { r: Report }) {
  const { t, num, dateTime } = useI18n();
  const compared = r.wechatCharged !== null;
  return (
    <div data-report={r.appid}>
      <p class="muted">
        {r.windowFrom && r.windowTo ? t('recon.window', { from: dateTime(r.windowFrom), to: dateTime(r.windowTo) }) : t('recon.noWindow')}
      </p>
      {r.note && (
        <div class="notice notice-warn" role="status">
          {r.exempt ? t('recon.exempt') : compared ? r.note : t('recon.noSnapshots')}
        </div>
      )}
      <div class="stats">
        <Stat label={t('recon.wechatCharged')} value={compared ? num(r.wechatCharged!) : '—'} field="wechat" />
        <Stat label={t('recon.confirmed')} value={num(r.confirmed)} field="confirmed" />
        <Stat label={t('recon.unconfirmed')} value={num(r.unconfirmed)} hint={r.unconfirmedCharged !== null ? t('recon.unconfirmedCharged', { n: num(r.unconfirmedCharged) }) : undefined} field="unconfirmed" />
        <Stat label={t('recon.reportedUnseen')} value={num(r.reportedSuccessUnseen)} field="reported" />
        <Stat label={t('recon.explained')} value={r.explained === null ? '—' : num(r.explained)} field="explained" />
        <Stat label={t('recon.unexplained')} value={r.unexplained === null ? '—' : num(r.unexplained)} field="unexplained" />
      </div>
      {compared && <Bars r={r} />}
      {(r.overCounted ?? 0) > 0 && <p class="muted">{t('recon.overCounted', { n: num(r.overCounted!) })}</p>}

      <h2>{t('recon.reports')}</h2>
      <div class="table-wrap">
        <table class="compact">
          <tbody>
            {(
              [
                ['success', 'recon.report.success'],
                ['userDeny', 'recon.report.userDeny'],
                ['noQuota', 'recon.report.noQuota'],
                ['privacy', 'recon.report.privacy'],
                ['other', 'recon.report.other'],
              ] as const
            ).map(([key, label]) => (
              <tr key={key}>
                <th scope="row">{t(label)}</th>
                <td class="num">{num(r.reported[key])}</td>
                <td class="muted small">{t(`${label}.why` as MessageKey)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h2>{t('recon.causes')}</h2>
      <p class="muted small">{(r.unexplained ?? 0) > 0 ? t('recon.causesIntroUnexplained', { n: num(r.unexplained!) }) : t('recon.causesIntro')}</p>
      <ul class="causes">
        {CAUSES.map((c) => (
          <li key={c}>{t(c)}</li>
        ))}
      </ul>
    </div>
  );
}

/** WeChat's count as one bar, and beneath it what explains it, part by part, with the rest in red. */
function Bars({ r }: { r: Report }) {
  const { t, num } = useI18n();
  const wechat = r.wechatCharged ?? 0;
  let left = r.explained ?? 0;
  const take = (n: number) => {
    const v = Math.max(0, Math.min(n, left));
    left -= v;
    return v;
  };
  const parts = [
    { key: 'confirmed', label: t('recon.confirmed'), color: PART_COLORS.confirmed, value: take(r.confirmed) },
    { key: 'unconfirmed', label: t('recon.unconfirmedChargedShort'), color: PART_COLORS.unconfirmed, value: take(r.unconfirmedCharged ?? 0) },
    { key: 'reported', label: t('recon.reportedUnseen'), color: PART_COLORS.reported, value: take(r.reportedSuccessUnseen) },
    { key: 'unexplained', label: t('recon.unexplained'), color: PART_COLORS.unexplained, value: r.unexplained ?? 0 },
  ];
  const max = Math.max(1, wechat, parts.reduce((s, p) => s + p.value, 0));
  const W = 100;
  let x = 0;
  return (
    <figure class="chart recon-bars">
      <svg viewBox={`0 0 ${W} 24`} preserveAspectRatio="none" role="img" aria-label={t('recon.barsLabel', { wechat: num(wechat), explained: num(r.explained ?? 0), unexplained: num(r.unexplained ?? 0) })}>
        <rect x="0" y="0" height="10" width={(wechat / max) * W} fill={PART_COLORS.wechat}>
          <title>{`${t('recon.wechatCharged')}: ${num(wechat)}`}</title>
        </rect>
        {parts.map((p) => {
          const w = (p.value / max) * W;
          const rect = w > 0 && (
            <rect key={p.key} x={x} y="13" height="10" width={w} fill={p.color}>
              <title>{`${p.label}: ${num(p.value)}`}</title>
            </rect>
          );
          x += w;
          return rect;
        })}
      </svg>
      <Legend items={[{ key: 'wechat', label: t('recon.wechatCharged'), color: PART_COLORS.wechat }, ...parts]} />
    </figure>
  );
}
