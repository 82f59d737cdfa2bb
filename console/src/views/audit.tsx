import { useState } from 'preact/hooks';
import { useI18n } from '../i18n';
import { useConsole } from '../context';
import { useRequest } from '../graphql/use-query';
import { GatewayError } from '../graphql/client';
import { ConsoleAuditRecordsByIdsDocument, ConsoleAuditRecordsDocument, ConsoleEraseSubjectDocument, ConsoleVerifyChainDocument, type ConsoleAuditRecordFieldsFragment, type ConsoleVerifyChainQuery } from '../graphql/generated';
import { can } from '../session';
import { dateRange, iso } from '../period';
import { AppPicker } from '../ui/app-picker';
import { Badge } from '../ui/badge';
import { ConfirmDialog } from '../ui/confirm-dialog';
import { Empty, ErrorState, Loading } from '../ui/states';
import { AuditRecordsTable } from './audit-records-table';
import { exportNdjson } from './audit-export';
import type { Answered } from '../graphql/client';

const PAGE = 50;
const IDS_PER_REQUEST = 500;

interface Filter {
  appid: string;
  subject: string;
  subjectHash: string;
  purpose: string;
  fromDate: string;
  toDate: string;
}

const EMPTY_FILTER: Filter = { appid: '', subject: '', subjectHash: '', purpose: '', fromDate: '', toDate: '' };

function variablesOf(f: Filter) {
  const range = f.fromDate || f.toDate ? dateRange(f.fromDate || '1970-01-01', f.toDate || '9999-12-30') : null;
  return {
    appid: f.appid,
    subject: f.subject.trim() || null,
    subjectHash: f.subjectHash.trim() || null,
    purpose: f.purpose.trim() || null,
    from: range && f.fromDate ? iso(range.from) : null,
    to: range && f.toDate ? iso(range.to) : null,
  };
}

/** The consent audit: verify the chain, browse and export records, erase a subject. */
export function Audit() {
  const { t } = useI18n();
  return (
    <section aria-labelledby="audit-title">
      <div class="page-head">
        <h1 id="audit-title">{t('audit.title')}</h1>
      </div>
      <VerifyPanel />
      <RecordsPanel />
    </section>
  );
}

/** Without quota:read there is no list of apps to pick from: the appid is typed. */
function AppField(props: { id: string; value: string; onChange: (v: string) => void; allowAll?: boolean }) {
  const { t } = useI18n();
  const { session } = useConsole();
  if (can(session, 'quota:read')) return <AppPicker id={props.id} value={props.value || null} onChange={(v) => props.onChange(v ?? '')} allowAll={props.allowAll ?? false} />;
  return <input id={props.id} value={props.value} placeholder={props.allowAll ? t('picker.allApps') : 'wx…'} autocomplete="off" spellcheck={false} onInput={(e) => props.onChange((e.currentTarget as HTMLInputElement).value.trim())} />;
}

function VerifyPanel() {
  const { t, num } = useI18n();
  const send = useRequest();
  const [appid, setAppid] = useState('');
  const [state, setState] = useState<{ busy: boolean; result?: Answered<ConsoleVerifyChainQuery>['verifyAuditChain']; error?: GatewayError; of?: string }>({ busy: false });
  const verify = async () => {
    setState({ busy: true });
    try {
      const r = await send(ConsoleVerifyChainDocument, { appid: appid || null });
      setState({ busy: false, result: r.verifyAuditChain, of: appid });
    } catch (e) {
      setState({ busy: false, error: e as GatewayError });
    }
  };
  return (
    <div class="panel" aria-labelledby="verify-title">
      <h2 id="verify-title">{t('audit.verify.title')}</h2>
      <p class="muted small">{t('audit.verify.what')}</p>
      <div class="toolbar">
        <label for="verify-app">{t('picker.app')}</label>
        <AppField id="verify-app" value={appid} onChange={setAppid} allowAll />
        <button type="button" class="primary" onClick={verify} disabled={state.busy} data-action="verify">
          {state.busy ? t('audit.verify.running') : t('audit.verify.run')}
        </button>
      </div>
      <div aria-live="polite" data-verify={state.result ? (state.result.ok ? 'ok' : 'broken') : undefined}>
        {state.busy && <Loading label={t('audit.verify.running')} />}
        {state.error && <ErrorState error={state.error} retry={verify} />}
        {state.result &&
          (state.result.ok ? (
            <p>
              <Badge tone="ok">{t('audit.verify.ok')}</Badge> {t('audit.verify.checked', { n: num(state.result.checked), app: state.of || t('picker.allApps') })}
            </p>
          ) : (
            <p>
              <Badge tone="danger">{t('audit.verify.broken')}</Badge> {t('audit.verify.brokenAt', { id: state.result.firstBrokenId ?? '?', n: num(state.result.checked) })}
            </p>
          ))}
      </div>
    </div>
  );
}

function RecordsPanel() {
  const { t, num } = useI18n();
  const { session } = useConsole();
  const send = useRequest();
  const [form, setForm] = useState<Filter>(EMPTY_FILTER);
  const [applied, setApplied] = useState<Filter | null>(null);
  const [records, setRecords] = useState<ConsoleAuditRecordFieldsFragment[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<GatewayError | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [erasing, setErasing] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const set = (key: keyof Filter) => (e: Event) => setForm({ ...form, [key]: (e.currentTarget as HTMLInputElement).value });

  const load = async (filter: Filter, after: string | null) => {
    setBusy(true);
    setError(null);
    try {
      const r = (await send(ConsoleAuditRecordsDocument, { ...variablesOf(filter), first: PAGE, after })).auditRecords;
      const page = r.edges.map((e) => e.node);
      setRecords((old) => (after ? [...old, ...page] : page));
      setNext(r.pageInfo.hasNextPage ? r.pageInfo.endCursor : null);
    } catch (e) {
      setError(e as GatewayError);
    } finally {
      setBusy(false);
    }
  };

  const search = (e: Event) => {
    e.preventDefault();
    if (!form.appid) return;
    setNotice(null);
    setApplied(form);
    setRecords([]);
    void load(form, null);
  };

  const bySubject = !!applied && !!(applied.subject.trim() || applied.subjectHash.trim());

  const erase = async () => {
    if (!applied) return;
    setErasing(true);
    setError(null);
    try {
      const { subject, subjectHash } = variablesOf(applied);
      const r = await send(ConsoleEraseSubjectDocument, { appid: applied.appid, subject, subjectHash });
      // The subject's hash is gone from its records, so they are read again by id.
      const ids = records.map((x) => x.id);
      const again: ConsoleAuditRecordFieldsFragment[] = [];
      for (let i = 0; i < ids.length; i += IDS_PER_REQUEST) {
        again.push(...(await send(ConsoleAuditRecordsByIdsDocument, { appid: applied.appid, ids: ids.slice(i, i + IDS_PER_REQUEST) })).auditRecordsByIds);
      }
      setRecords(again);
      setNext(null);
      setNotice(t('audit.erase.done', { n: num(r.eraseSubject.records) }));
      // Nothing about the person stays in the page once they are erased.
      setForm((f) => ({ ...f, subject: '', subjectHash: '' }));
      setApplied((a) => (a ? { ...a, subject: '', subjectHash: '' } : a));
    } catch (e) {
      setError(e as GatewayError);
    } finally {
      setErasing(false);
      setConfirming(false);
    }
  };

  const exportable = !!applied && (!bySubject || records.some((r) => r.subjectHash));
  const download = async () => {
    if (!applied) return;
    const v = variablesOf(applied);
    // An openid never goes into a URL: the export is asked by the hash the records carry.
    const hash = bySubject ? (v.subjectHash ?? records.find((r) => r.subjectHash)?.subjectHash ?? null) : null;
    try {
      await exportNdjson(session.token, { appid: v.appid, subjectHash: hash, purpose: v.purpose, from: v.from, to: v.to });
    } catch (e) {
      setError(e as GatewayError);
    }
  };

  return (
    <div class="panel" aria-labelledby="records-title">
      <h2 id="records-title">{t('audit.records.title')}</h2>
      <form class="filters" onSubmit={search} autocomplete="off">
        <label>
          {t('picker.app')}
          <AppField id="records-app" value={form.appid} onChange={(v) => setForm({ ...form, appid: v })} />
        </label>
        <label>
          {t('audit.filter.subject')}
          <input name="subject" value={form.subject} onInput={set('subject')} autocomplete="off" spellcheck={false} placeholder="openid" />
        </label>
        <label>
          {t('audit.filter.subjectHash')}
          <input value={form.subjectHash} onInput={set('subjectHash')} autocomplete="off" spellcheck={false} />
        </label>
        <label>
          {t('audit.filter.purpose')}
          <input value={form.purpose} onInput={set('purpose')} autocomplete="off" spellcheck={false} placeholder="login" />
        </label>
        <label>
          {t('period.from')}
          <input type="date" value={form.fromDate} onInput={set('fromDate')} />
        </label>
        <label>
          {t('period.to')}
          <input type="date" value={form.toDate} onInput={set('toDate')} />
        </label>
        <div class="filter-actions">
          <button type="submit" class="primary" disabled={!form.appid || busy} data-action="search">
            {t('audit.records.search')}
          </button>
        </div>
      </form>
      <p class="muted small">{t('audit.records.privacy')}</p>
      {notice && (
        <div class="notice notice-ok" role="status" data-notice="erased">
          <strong>{notice}</strong>
        </div>
      )}
      {error && <ErrorState error={error} />}
      {!applied ? (
        <Empty>{t('audit.records.start')}</Empty>
      ) : busy && !records.length ? (
        <Loading />
      ) : !records.length ? (
        <Empty>{t('audit.records.none')}</Empty>
      ) : (
        <>
          <div class="toolbar">
            <span class="muted">{t('audit.records.count', { n: num(records.length) })}</span>
            {can(session, 'audit:read') && (
              <button type="button" onClick={download} disabled={!exportable} data-action="export">
                {t('audit.export')}
              </button>
            )}
            {bySubject && can(session, 'audit:admin') && (
              <button type="button" class="danger" onClick={() => setConfirming(true)} data-action="erase">
                {t('audit.erase.button')}
              </button>
            )}
          </div>
          <AuditRecordsTable records={records} />
          {next && (
            <button type="button" onClick={() => load(applied, next)} disabled={busy}>
              {busy ? t('state.loading') : t('audit.records.more')}
            </button>
          )}
        </>
      )}
      {confirming && applied && (
        <ConfirmDialog title={t('audit.erase.confirmTitle')} confirmLabel={t('audit.erase.confirm')} danger busy={erasing} onCancel={() => setConfirming(false)} onConfirm={erase}>
          <p>{t('audit.erase.confirmBody', { app: applied.appid, n: num(records.length) })}</p>
          <p class="warn-text">{t('audit.erase.irreversible')}</p>
        </ConfirmDialog>
      )}
    </div>
  );
}
