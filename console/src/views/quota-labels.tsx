import type { ConsoleAlertFieldsFragment, ExemptionRule } from '../graphql/generated';
import { useI18n, type MessageKey } from '../i18n';
import { Badge } from '../ui/badge';

export const EXEMPTION_RULE: Record<ExemptionRule, MessageKey> = {
  GOVERNMENT_OR_NON_PROFIT: 'exemption.GOVERNMENT_OR_NON_PROFIT',
  PUBLIC_INSTITUTION_GOV_SERVICES: 'exemption.PUBLIC_INSTITUTION_GOV_SERVICES',
  PUBLIC_MEDICAL_OR_EDUCATION: 'exemption.PUBLIC_MEDICAL_OR_EDUCATION',
};

/** The badges an app's quota earns: exhausted, low, exempt, a failing sync, never synced. */
export function QuotaBadges({ q }: { q: { exhausted: boolean; lowQuota: boolean; exempt: boolean; exemptionRule: ExemptionRule | null; lastSyncError: string | null; syncedAt: string | null } }) {
  const { t } = useI18n();
  return (
    <span class="badges">
      {q.exhausted && <Badge tone="danger">{t('badge.exhausted')}</Badge>}
      {!q.exhausted && q.lowQuota && <Badge tone="warn">{t('badge.low')}</Badge>}
      {q.exempt && (
        <Badge tone="info" title={q.exemptionRule ? t(EXEMPTION_RULE[q.exemptionRule]) : undefined}>
          {t('badge.exempt')}
        </Badge>
      )}
      {q.lastSyncError && (
        <Badge tone="warn" title={q.lastSyncError}>
          {t('badge.syncFailing')}
        </Badge>
      )}
      {!q.syncedAt && <Badge tone="muted">{t('badge.neverSynced')}</Badge>}
    </span>
  );
}

/** WeChat's latest charge alert in a line: which kind, its figures, and how long ago it came. */
export function AlertSummary({ alert, now }: { alert: ConsoleAlertFieldsFragment | null; now: number }) {
  const { t, num, date, age } = useI18n();
  if (!alert) return <span class="muted">{t('alert.none')}</span>;
  const ago = age((now - Date.parse(alert.receivedAt)) / 1000);
  if (alert.kind === 'QUOTA') {
    return (
      <span title={alert.event}>
        {t('alert.quota', { remaining: alert.remaining === null ? '?' : num(alert.remaining), total: alert.totalQuota === null ? '?' : num(alert.totalQuota) })} <span class="muted">· {ago}</span>
      </span>
    );
  }
  return (
    <span title={alert.event}>
      {t('alert.expiry', { date: alert.validityEndsAt ? date(alert.validityEndsAt) : '?' })} <span class="muted">· {ago}</span>
    </span>
  );
}

/** When the numbers are from: the last sync's time and age, or never. */
export function SyncAge({ syncedAt, ageSeconds }: { syncedAt: string | null; ageSeconds: number | null }) {
  const { t, dateTime, age } = useI18n();
  if (!syncedAt || ageSeconds === null) return <span class="muted">{t('sync.never')}</span>;
  return (
    <span title={dateTime(syncedAt)}>
      {age(ageSeconds)}
    </span>
  );
}
