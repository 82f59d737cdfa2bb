import type { ConsoleAuditRecordFieldsFragment } from '../graphql/generated';
import { useI18n } from '../i18n';
import { Badge } from '../ui/badge';

const short = (h: string | null) => (h ? `${h.slice(0, 10)}…` : '—');

/** Consent records as stored: masked numbers and keyed hashes, never a number or an openid. */
export function AuditRecordsTable({ records }: { records: ConsoleAuditRecordFieldsFragment[] }) {
  const { t, dateTime } = useI18n();
  return (
    <div class="table-wrap">
      <table class="records">
        <thead>
          <tr>
            <th scope="col" class="num">
              #
            </th>
            <th scope="col">{t('audit.col.at')}</th>
            <th scope="col">{t('audit.col.kind')}</th>
            <th scope="col">{t('audit.col.purpose')}</th>
            <th scope="col">{t('audit.col.outcome')}</th>
            <th scope="col">{t('audit.col.masked')}</th>
            <th scope="col">{t('audit.col.subject')}</th>
            <th scope="col">{t('audit.col.phoneHash')}</th>
            <th scope="col">{t('audit.col.request')}</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={r.id} data-record={r.id} data-erased={r.erasedAt ? 'true' : 'false'}>
              <td class="num">{r.seq}</td>
              <td>{dateTime(r.at)}</td>
              <td>
                {r.kind.toLowerCase()}
                {r.flow && r.flow !== r.kind ? <span class="muted small"> · {r.flow.toLowerCase()}</span> : null}
              </td>
              <td>{r.purpose ?? '—'}</td>
              <td>
                {r.outcome?.toLowerCase() ?? '—'}
                {r.errorCode && (
                  <>
                    {' '}
                    <code>{r.errorCode}</code>
                  </>
                )}
              </td>
              <td data-col="masked">{r.erasedAt ? <Badge tone="muted">{t('audit.erasedAt', { date: dateTime(r.erasedAt) })}</Badge> : (r.maskedPhone ?? '—')}</td>
              <td>
                <code title={r.subjectHash ?? undefined}>{short(r.subjectHash)}</code>
              </td>
              <td>
                <code title={r.phoneHash ?? undefined}>{short(r.phoneHash)}</code>
              </td>
              <td>
                <code>{r.requestId ?? '—'}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
