import type { ConsolePackFieldsFragment, PackStatus, RefundRefusalRule } from '../graphql/generated';
import { useI18n, type MessageKey } from '../i18n';
import { Badge, type Tone } from '../ui/badge';
import { Empty } from '../ui/states';
import { DAY_MS } from '../period';

export const REFUND_RULE: Record<RefundRefusalRule, MessageKey> = {
  PACK_USED: 'refund.rule.PACK_USED',
  REFUND_WINDOW_PASSED: 'refund.rule.REFUND_WINDOW_PASSED',
  ALREADY_REQUESTED: 'refund.rule.ALREADY_REQUESTED',
};

const STATUS: Record<PackStatus, [MessageKey, Tone]> = {
  IN_EFFECT: ['pack.status.IN_EFFECT', 'ok'],
  NOT_YET_EFFECTIVE: ['pack.status.NOT_YET_EFFECTIVE', 'info'],
  USED_UP: ['pack.status.USED_UP', 'muted'],
  EXPIRED: ['pack.status.EXPIRED', 'muted'],
  REFUNDED: ['pack.status.REFUNDED', 'muted'],
};

/** The app's packs in the order WeChat draws them, with what a refund request would meet. */
export function PacksTable({ packs, canRefund, onRefund }: { packs: ConsolePackFieldsFragment[]; canRefund: boolean; onRefund: (p: ConsolePackFieldsFragment) => void }) {
  const { t, num, date } = useI18n();
  if (!packs.length) return <Empty>{t('packs.none')}</Empty>;
  const eligibility = (p: ConsolePackFieldsFragment) => {
    if (p.kind === 'ASSIGNED') return <span class="muted">{t('packs.refund.assigned')}</span>;
    if (p.refundRequestedAt) return <Badge tone="info">{t('packs.refund.requested', { date: date(p.refundRequestedAt) })}</Badge>;
    if (p.refundable) return <Badge tone="ok">{t('packs.refund.eligible', { date: date(Date.parse(p.paidAt) + 7 * DAY_MS) })}</Badge>;
    return <span>{p.refundRefusal ? t(REFUND_RULE[p.refundRefusal]) : '—'}</span>;
  };
  return (
    <div class="table-wrap">
      <table class="packs">
        <caption class="muted small">{t('packs.caption')}</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">{t('packs.col.pack')}</th>
            <th scope="col">{t('packs.col.status')}</th>
            <th scope="col">{t('packs.col.paid')}</th>
            <th scope="col">{t('packs.col.effective')}</th>
            <th scope="col">{t('packs.col.expires')}</th>
            <th scope="col" class="num">
              {t('packs.col.units')}
            </th>
            <th scope="col" class="num">
              {t('packs.col.left')}
            </th>
            <th scope="col" class="num">
              {t('packs.col.price')}
            </th>
            <th scope="col">{t('packs.col.refund')}</th>
            {canRefund && <th scope="col">{t('packs.col.action')}</th>}
          </tr>
        </thead>
        <tbody>
          {packs.map((p, i) => {
            const [status, tone] = STATUS[p.status];
            return (
              <tr key={p.id} data-pack={p.packId}>
                <td>{i + 1}</td>
                <th scope="row">
                  <code title={p.packId}>{p.wechatPkgId ?? p.packId.slice(0, 14)}</code>
                  <div class="muted small">{p.kind === 'ASSIGNED' ? t('packs.kind.assigned', { order: p.orderId ?? '' }) : t('packs.kind.own')}</div>
                </th>
                <td>
                  <Badge tone={tone}>{t(status)}</Badge>
                </td>
                <td>{date(p.paidAt)}</td>
                <td>{date(p.effectiveAt)}</td>
                <td>{date(p.expiresAt)}</td>
                <td class="num">
                  {num(p.unitsUsed)} / {num(p.unitsAll)}
                </td>
                <td class="num">{num(p.unitsLeft)}</td>
                <td class="num">¥{p.pricePaidYuan}</td>
                <td data-col="refund">{eligibility(p)}</td>
                {canRefund && (
                  <td>
                    {p.kind === 'OWN' && !p.refundRequestedAt && (
                      <button type="button" class="small" onClick={() => onRefund(p)}>
                        {t('packs.requestRefund')}
                      </button>
                    )}
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
