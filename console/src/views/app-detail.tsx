import { useMemo, useState } from 'preact/hooks';
import { useI18n } from '../i18n';
import { useConsole } from '../context';
import { useQuery, useRequest } from '../graphql/use-query';
import { GatewayError } from '../graphql/client';
import { ConsoleAppDocument, ConsoleProcurementOrdersDocument, ConsoleRequestRefundDocument, ConsoleSyncUsageDocument, type ConsolePackFieldsFragment } from '../graphql/generated';
import { can } from '../session';
import { hrefOf } from '../router';
import { iso, lastDays } from '../period';
import { ErrorState, Loading } from '../ui/states';
import { Stat } from '../ui/stat';
import { Badge } from '../ui/badge';
import { ConfirmDialog } from '../ui/confirm-dialog';
import { AlertSummary, EXEMPTION_RULE, QuotaBadges, SyncAge } from './quota-labels';
import { UsageCharts } from './usage-charts';
import { PacksTable, REFUND_RULE } from './packs-table';
import { ProcurementTables } from './procurement-tables';

const PERIODS = [30, 90, 180] as const;

type Notice = { tone: 'ok' | 'warn' | 'danger'; text: string; detail?: string };

/** One app: its figures, usage over time with the forecast, packs in draw order, 集采, sync now. */
export function AppDetail({ appid }: { appid: string }) {
  const i18n = useI18n();
  const { t, num, dateTime } = i18n;
  const { session } = useConsole();
  const send = useRequest();
  const [days, setDays] = useState<(typeof PERIODS)[number]>(30);
  // The period is fixed when chosen, so a re-render does not move it (and re-query).
  const period = useMemo(() => lastDays(days), [days]);
  const app = useQuery(ConsoleAppDocument, { appid, from: iso(period.from), to: iso(period.to) });
  const hasAssignments = (app.data?.packAssignments.length ?? 0) > 0;
  const orders = useQuery(ConsoleProcurementOrdersDocument, {}, { skip: !hasAssignments });
  const [syncing, setSyncing] = useState(false);
  const [notice, setNotice] = useState<Notice | null>(null);
  const [refundOf, setRefundOf] = useState<ConsolePackFieldsFragment | null>(null);
  const [refunding, setRefunding] = useState(false);
  const now = useMemo(() => Date.now(), [app.data]);

  const syncNow = async () => {
    setSyncing(true);
    setNotice(null);
    try {
      const r = (await send(ConsoleSyncUsageDocument, { appid })).syncUsage;
      if (r.__typename === 'UsageSynced') setNotice({ tone: 'ok', text: t('app.sync.done') });
      else setNotice({ tone: 'warn', text: t('app.sync.failed'), detail: r.message });
      app.reload();
    } catch (e) {
      setNotice({ tone: 'danger', text: t('error.generic'), detail: (e as GatewayError).message });
    } finally {
      setSyncing(false);
    }
  };

  const refund = async (pack: ConsolePackFieldsFragment) => {
    setRefunding(true);
    try {
      const r = (await send(ConsoleRequestRefundDocument, { packId: pack.packId })).requestPackRefund;
      if (r.__typename === 'RefundRequested') setNotice({ tone: 'ok', text: t('refund.requested', { pack: pack.wechatPkgId ?? pack.packId }) });
      else if (r.__typename === 'RefundRefused') setNotice({ tone: 'warn', text: t('refund.refused', { rule: t(REFUND_RULE[r.rule]) }), detail: `${r.rule}: ${r.message}` });
      else setNotice({ tone: 'warn', text: t('refund.notPossible'), detail: r.message });
      app.reload();
    } catch (e) {
      setNotice({ tone: 'danger', text: t('error.generic'), detail: (e as GatewayError).message });
    } finally {
      setRefunding(false);
      setRefundOf(null);
    }
  };

  if (app.error && !app.data) return <ErrorState error={app.error} retry={app.reload} />;
  if (!app.data) return <Loading />;
  const d = app.data;
  const q = d.quota;
  return (
    <section aria-labelledby="app-title">
      <nav class="crumbs" aria-label={t('nav.breadcrumb')}>
        <a href={hrefOf({ name: 'overview' })}>{t('nav.overview')}</a> › <span>{appid}</span>
      </nav>
      <div class="page-head">
        <h1 id="app-title">
          {appid} <QuotaBadges q={q} />
        </h1>
        <div class="actions">
          <a class="button" href={hrefOf({ name: 'reconciliation', appid })}>
            {t('app.reconcile')}
          </a>
          {can(session, 'billing:admin') && (
            <button type="button" class="primary" onClick={syncNow} disabled={syncing} data-action="sync">
              {syncing ? t('app.sync.running') : t('app.sync.now')}
            </button>
          )}
        </div>
      </div>
      {notice && (
        <div class={`notice notice-${notice.tone}`} role="status" data-notice={notice.tone}>
          <strong>{notice.text}</strong>
          {notice.detail && <div class="muted small">{notice.detail}</div>}
        </div>
      )}
      <div class="stats">
        <Stat label={t('app.stat.remaining')} value={num(q.remaining)} hint={t('app.stat.remainingHint')} field="remaining" />
        <Stat label={t('app.stat.estimated')} value={num(q.estimatedRemaining)} hint={t('app.stat.estimatedHint', { n: num(q.chargesSinceSync) })} field="estimated" />
        <Stat label={t('app.stat.daysLeft')} value={q.daysLeft === null ? '—' : num(q.daysLeft)} hint={q.forecastExhaustionDate ?? (q.exempt ? t('badge.exempt') : t('app.noForecast'))} field="days-left" />
        <Stat label={t('app.stat.daily')} value={num(q.dailyAverage, 1)} hint={q.wechatMonthlyAverageBound === null ? t('app.stat.noWechatBound') : t('app.stat.wechatBound', { n: num(q.wechatMonthlyAverageBound) })} />
        <Stat label={t('app.stat.inEffect')} value={num(q.unitsInEffect)} hint={t('app.stat.trialPacks', { trial: num(q.trialRemaining), packs: num(q.packsRemaining) })} />
        <Stat label={t('app.stat.sync')} value={<SyncAge syncedAt={q.syncedAt} ageSeconds={q.syncAgeSeconds} />} hint={q.lastSyncError ? <span class="warn-text">{q.lastSyncError}</span> : q.basis === 'LEDGER' ? t('app.stat.ledgerBasis') : q.syncedAt ? dateTime(q.syncedAt) : undefined} />
      </div>
      <p class="muted small">
        {t('app.exemption')}: {d.exemption.rule ? t(EXEMPTION_RULE[d.exemption.rule]) : t('exemption.none')} · {t('app.subject', { type: d.exemption.subjectType.toLowerCase().replace('_', '-'), category: d.exemption.category ?? '—' })} · {t('app.lastAlert')}:{' '}
        <AlertSummary alert={q.lastWechatAlert} now={now} />
      </p>

      <div class="section-head">
        <h2>{t('app.usage')}</h2>
        <label>
          {t('app.period')}{' '}
          <select value={days} onChange={(e) => setDays(Number((e.currentTarget as HTMLSelectElement).value) as (typeof PERIODS)[number])}>
            {PERIODS.map((p) => (
              <option key={p} value={p}>
                {t('period.lastDays', { n: p })}
              </option>
            ))}
          </select>
        </label>
        {app.loading && <Badge tone="muted">{t('state.loading')}</Badge>}
      </div>
      <UsageCharts data={d} from={period.from} now={now} />

      <h2>{t('app.packs')}</h2>
      <PacksTable packs={d.packs} canRefund={can(session, 'billing:admin')} onRefund={setRefundOf} />

      <h2>{t('app.procurement')}</h2>
      {orders.error && <ErrorState error={orders.error} retry={orders.reload} />}
      <ProcurementTables assignments={d.packAssignments} orders={orders.data?.procurementOrders} />

      {refundOf && (
        <ConfirmDialog title={t('refund.confirmTitle')} confirmLabel={t('packs.requestRefund')} busy={refunding} onCancel={() => setRefundOf(null)} onConfirm={() => refund(refundOf)}>
          <p>{t('refund.confirmBody', { pack: refundOf.wechatPkgId ?? refundOf.packId, units: num(refundOf.unitsAll), price: refundOf.pricePaidYuan })}</p>
          {!refundOf.refundable && refundOf.refundRefusal && <p class="warn-text">{t('refund.expectRefusal', { rule: t(REFUND_RULE[refundOf.refundRefusal]) })}</p>}
        </ConfirmDialog>
      )}
    </section>
  );
}
