import type { ConsoleAssignmentFieldsFragment, ConsoleProcurementOrdersQuery, PackAssignmentState } from '../graphql/generated';
import { useI18n, type MessageKey } from '../i18n';
import { Badge, type Tone } from '../ui/badge';
import { Empty } from '../ui/states';
import type { Answered } from '../graphql/client';

const STATE: Record<PackAssignmentState, [MessageKey, Tone]> = {
  REQUESTED: ['assignment.state.REQUESTED', 'info'],
  ASSIGNED: ['assignment.state.ASSIGNED', 'ok'],
  FAILED: ['assignment.state.FAILED', 'danger'],
  CANCELLED: ['assignment.state.CANCELLED', 'muted'],
};

/** 集采: the app's assignments, and the orders they came from. */
export function ProcurementTables({ assignments, orders }: { assignments: ConsoleAssignmentFieldsFragment[]; orders: Answered<ConsoleProcurementOrdersQuery>['procurementOrders'] | undefined }) {
  const { t, num, date, dateTime } = useI18n();
  if (!assignments.length) return <Empty>{t('procurement.none')}</Empty>;
  const orderIds = new Set(assignments.map((a) => a.orderId));
  const related = (orders ?? []).filter((o) => orderIds.has(o.orderId));
  return (
    <>
      <div class="table-wrap">
        <table>
          <caption class="muted small">{t('procurement.assignments')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('procurement.col.order')}</th>
              <th scope="col">{t('procurement.col.request')}</th>
              <th scope="col">{t('procurement.col.sku')}</th>
              <th scope="col">{t('procurement.col.state')}</th>
              <th scope="col" class="num">
                {t('procurement.col.units')}
              </th>
              <th scope="col">{t('procurement.col.requested')}</th>
              <th scope="col">{t('procurement.col.assigned')}</th>
              <th scope="col">{t('procurement.col.cancellable')}</th>
            </tr>
          </thead>
          <tbody>
            {assignments.map((a) => {
              const [label, tone] = STATE[a.state];
              return (
                <tr key={`${a.orderId}/${a.requestId}`}>
                  <td>
                    <code>{a.orderId}</code>
                  </td>
                  <td>
                    <code>{a.requestId}</code>
                  </td>
                  <td>{a.skuId}</td>
                  <td>
                    <Badge tone={tone} title={a.errcode !== null ? `errcode ${a.errcode}` : undefined}>
                      {t(label)}
                      {a.errcode !== null ? ` (${a.errcode})` : ''}
                    </Badge>
                  </td>
                  <td class="num">{num(a.units)}</td>
                  <td>{dateTime(a.requestedAt)}</td>
                  <td>{a.assignedAt ? dateTime(a.assignedAt) : '—'}</td>
                  <td>{a.cancellableUntil ? dateTime(a.cancellableUntil) : '—'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {related.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="muted small">{t('procurement.orders')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('procurement.col.order')}</th>
                <th scope="col">{t('procurement.col.product')}</th>
                <th scope="col" class="num">
                  {t('procurement.col.unitsAll')}
                </th>
                <th scope="col" class="num">
                  {t('procurement.col.unitsHeld')}
                </th>
                <th scope="col" class="num">
                  {t('procurement.col.unitsLeft')}
                </th>
                <th scope="col">{t('procurement.col.paid')}</th>
                <th scope="col">{t('procurement.col.validUntil')}</th>
              </tr>
            </thead>
            <tbody>
              {related.map((o) => (
                <tr key={o.orderId}>
                  <td>
                    <code>{o.orderId}</code>
                  </td>
                  <td>{o.product.toLowerCase()}</td>
                  <td class="num">{num(o.unitsAll)}</td>
                  <td class="num">{num(o.unitsHeld)}</td>
                  <td class="num">{num(o.unitsLeft)}</td>
                  <td>
                    {date(o.paidAt)} · ¥{o.pricePaidYuan}
                  </td>
                  <td>{o.validityEndAt ? date(o.validityEndAt) : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
