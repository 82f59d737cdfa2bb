import { useEffect, useMemo, useState } from 'preact/hooks';
import { useI18n, type MessageKey } from '../i18n';
import { useQuery } from '../graphql/use-query';
import { ConsoleAppsDocument, type ConsoleAppsQuery } from '../graphql/generated';
import { hrefOf } from '../router';
import { Empty, ErrorState, Loading } from '../ui/states';
import { Stat } from '../ui/stat';
import { AlertSummary, EXEMPTION_RULE, QuotaBadges, SyncAge } from './quota-labels';
import type { Answered } from '../graphql/client';

type AnsweredApp = Answered<ConsoleAppsQuery>['apps'][number];
// The console's requests fail as a whole on any error, so an app it shows always has its quota.
type AppRow = AnsweredApp & { quota: NonNullable<AnsweredApp['quota']> };
const withQuota = (apps: AnsweredApp[]): AppRow[] => apps.flatMap((a) => (a.quota ? [{ ...a, quota: a.quota }] : []));
type SortKey = 'appid' | 'remaining' | 'estimated' | 'daysLeft' | 'forecast' | 'status' | 'sync' | 'alert';
type Filter = 'all' | 'attention' | 'exhausted' | 'low' | 'exempt' | 'syncIssue';

const FILTERS: [Filter, MessageKey][] = [
  ['all', 'overview.filter.all'],
  ['attention', 'overview.filter.attention'],
  ['exhausted', 'overview.filter.exhausted'],
  ['low', 'overview.filter.low'],
  ['exempt', 'overview.filter.exempt'],
  ['syncIssue', 'overview.filter.syncIssue'],
];

function statusRank(a: AppRow): number {
  const q = a.quota;
  return q.exhausted ? 0 : q.lowQuota ? 1 : q.exempt ? 3 : 2;
}

function matches(a: AppRow, filter: Filter): boolean {
  const q = a.quota;
  switch (filter) {
    case 'all':
      return true;
    case 'attention':
      return q.exhausted || q.lowQuota || q.lastSyncError !== null;
    case 'exhausted':
      return q.exhausted;
    case 'low':
      return q.lowQuota && !q.exhausted;
    case 'exempt':
      return q.exempt;
    case 'syncIssue':
      return q.lastSyncError !== null || q.syncedAt === null;
  }
}

// Nulls (never, unknown) sort after every value whichever way the column is sorted.
const SORT: Record<SortKey, (a: AppRow) => number | string | null> = {
  appid: (a) => a.appid,
  remaining: (a) => a.quota.remaining,
  estimated: (a) => a.quota.estimatedRemaining,
  daysLeft: (a) => a.quota.daysLeft,
  forecast: (a) => a.quota.forecastExhaustionDate,
  status: statusRank,
  sync: (a) => a.quota.syncAgeSeconds,
  alert: (a) => (a.quota.lastWechatAlert ? -Date.parse(a.quota.lastWechatAlert.receivedAt) : null),
};

function sorted(rows: AppRow[], key: SortKey, dir: 1 | -1): AppRow[] {
  const value = SORT[key];
  return rows
    .map((row) => ({ row, v: value(row) }))
    .sort((a, b) => {
      if (a.v === null || b.v === null) return a.v === null ? (b.v === null ? 0 : 1) : -1;
      const c = typeof a.v === 'number' && typeof b.v === 'number' ? a.v - b.v : String(a.v).localeCompare(String(b.v));
      return c * dir || a.row.appid.localeCompare(b.row.appid);
    })
    .map((x) => x.row);
}

/** Every app at a glance: what is left, when it runs out, what needs attention. */
export function Overview() {
  const i18n = useI18n();
  const { t, num } = i18n;
  const apps = useQuery(ConsoleAppsDocument, {});
  const [search, setSearch] = useState('');
  const [filter, setFilter] = useState<Filter>('all');
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'daysLeft', dir: 1 });
  const rows = useMemo(() => (apps.data ? withQuota(apps.data.apps) : undefined), [apps.data]);
  const now = useMemo(() => Date.now(), [rows]);

  const shown = useMemo(() => {
    if (!rows) return [];
    const needle = search.trim().toLowerCase();
    return sorted(
      rows.filter((a) => matches(a, filter) && (!needle || a.appid.toLowerCase().includes(needle))),
      sort.key,
      sort.dir,
    );
  }, [rows, search, filter, sort]);

  useEffect(() => {
    // The e2e test reads this mark: the time from navigation to a rendered table.
    if (rows) performance.mark('console:overview-rendered');
  }, [rows]);

  if (apps.error && !rows) return <ErrorState error={apps.error} retry={apps.reload} />;
  if (!rows) return <Loading />;

  const count = (f: Filter) => rows.filter((a) => matches(a, f)).length;
  const header = (key: SortKey, label: MessageKey, numeric = false) => (
    <th scope="col" class={numeric ? 'num' : undefined} aria-sort={sort.key === key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}>
      <button type="button" class="sort" onClick={() => setSort((s) => ({ key, dir: s.key === key ? ((-s.dir) as 1 | -1) : 1 }))}>
        {t(label)}
        <span aria-hidden="true">{sort.key === key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</span>
      </button>
    </th>
  );

  return (
    <section aria-labelledby="overview-title">
      <div class="page-head">
        <h1 id="overview-title">{t('overview.title')}</h1>
        <button type="button" onClick={apps.reload} disabled={apps.loading}>
          {apps.loading ? t('state.loading') : t('action.refresh')}
        </button>
      </div>
      <div class="stats">
        <Stat label={t('overview.stat.apps')} value={num(rows.length)} field="apps" />
        <Stat label={t('overview.stat.exhausted')} value={num(count('exhausted'))} field="exhausted" />
        <Stat label={t('overview.stat.low')} value={num(count('low'))} field="low" />
        <Stat label={t('overview.stat.exempt')} value={num(count('exempt'))} field="exempt" />
        <Stat label={t('overview.stat.syncIssue')} value={num(count('syncIssue'))} field="sync-issue" />
      </div>
      <div class="toolbar" role="search">
        <label>
          {t('overview.search')}
          <input type="search" value={search} placeholder="wx…" autocomplete="off" spellcheck={false} onInput={(e) => setSearch((e.currentTarget as HTMLInputElement).value)} />
        </label>
        <label>
          {t('overview.show')}
          <select value={filter} onChange={(e) => setFilter((e.currentTarget as HTMLSelectElement).value as Filter)}>
            {FILTERS.map(([f, label]) => (
              <option key={f} value={f}>
                {t(label)}
              </option>
            ))}
          </select>
        </label>
        <span class="muted" aria-live="polite">
          {t('overview.showing', { shown: num(shown.length), total: num(rows.length) })}
        </span>
      </div>
      {rows.length === 0 ? (
        <Empty>{t('overview.noApps')}</Empty>
      ) : shown.length === 0 ? (
        <Empty>{t('overview.noMatch')}</Empty>
      ) : (
        <div class="table-wrap" data-ready="true">
          <table class="apps">
            <thead>
              <tr>
                {header('appid', 'overview.col.app')}
                {header('status', 'overview.col.status')}
                {header('remaining', 'overview.col.remaining', true)}
                {header('estimated', 'overview.col.estimated', true)}
                {header('daysLeft', 'overview.col.daysLeft', true)}
                {header('forecast', 'overview.col.forecast')}
                <th scope="col">{t('overview.col.exemption')}</th>
                {header('sync', 'overview.col.sync')}
                {header('alert', 'overview.col.alert')}
              </tr>
            </thead>
            <tbody>
              {shown.map((a) => {
                const q = a.quota;
                return (
                  <tr key={a.appid} data-appid={a.appid}>
                    <th scope="row">
                      <a href={hrefOf({ name: 'app', appid: a.appid })}>{a.appid}</a>
                      <div class="muted small">{a.product.toLowerCase()}</div>
                    </th>
                    <td>
                      <QuotaBadges q={q} />
                    </td>
                    <td class="num" data-col="remaining">
                      {num(q.remaining)}
                    </td>
                    <td class="num" data-col="estimated">
                      {num(q.estimatedRemaining)}
                    </td>
                    <td class="num" data-col="days-left">
                      {q.daysLeft === null ? '—' : num(q.daysLeft)}
                    </td>
                    <td data-col="forecast">{q.forecastExhaustionDate ?? '—'}</td>
                    <td>{q.exemptionRule ? t(EXEMPTION_RULE[q.exemptionRule]) : <span class="muted">{t('exemption.none')}</span>}</td>
                    <td>
                      <SyncAge syncedAt={q.syncedAt} ageSeconds={q.syncAgeSeconds} />
                    </td>
                    <td>
                      <AlertSummary alert={q.lastWechatAlert} now={now} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
