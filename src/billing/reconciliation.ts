import { sql, type Kysely } from 'kysely';
import type { AppConfig } from '../config.js';
import type { Database } from '../store/schema.js';
import { exemption, reconcile } from './rules.js';
import { TAP_PLAUSIBLE_MS } from './charge-hooks.js';

export interface ReconciliationReport {
  appid: string;
  exempt: boolean;
  /** The window actually compared: the usage snapshots bracketing the requested period. */
  windowFrom: number | null;
  windowTo: number | null;
  /** effectiveUse growth between the two snapshots; null without a snapshot at or before `from`. */
  wechatCharged: number | null;
  confirmed: number;
  unconfirmed: number;
  reported: { success: number; userDeny: number; noQuota: number; privacy: number; other: number };
  /** Reported successful taps whose codes never reached the gateway. */
  reportedSuccessUnseen: number;
  /** The next four are null when no pair of usage snapshots brackets the period. */
  unconfirmedCharged: number | null;
  explained: number | null;
  unexplained: number | null;
  overCounted: number | null;
  note: string | null;
}

export class ReconciliationInputError extends Error {
  override name = 'ReconciliationInputError';
}

/**
 * Side by side for an app and a period: the codes the
 * gateway saw, what backends reported, and WeChat's usage growth between the usage
 * snapshots that bracket the period; how many charges are explained, how many not.
 */
export class Reconciliation {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly apps: ReadonlyMap<string, AppConfig>,
  ) {}

  async report(appid: string, from: number, to: number): Promise<ReconciliationReport> {
    const app = this.apps.get(appid);
    if (!app) throw new ReconciliationInputError(`app ${appid} is not configured`);
    if (!(to > from)) throw new ReconciliationInputError('"to" must be after "from"');
    const exempt = exemption({ subjectType: app.subjectType, category: app.category }).exempt;
    const snapshot = (op: '<=' | '>=', at: number) =>
      this.db
        .selectFrom('usage_snapshots')
        .select(['synced_at', 'effective_use'])
        .where('appid', '=', appid)
        .where('synced_at', op, at)
        .orderBy('synced_at', op === '<=' ? 'desc' : 'asc')
        .orderBy('id', op === '<=' ? 'desc' : 'asc')
        .limit(1)
        .executeTakeFirst();
    // The period is bracketed by the last sync at or before `from` and the first at or after `to`
    // (else the last one inside it): syncing before and after a period is what makes it comparable.
    const [base, after, inside] = await Promise.all([snapshot('<=', from), snapshot('>=', to), snapshot('<=', to)]);
    const end = after ?? inside;
    // Compare like with like: count the gateway's records over the snapshots' window when there is one.
    const windowFrom = base && end && end.synced_at > base.synced_at ? base.synced_at : from;
    const windowTo = base && end && end.synced_at > base.synced_at ? end.synced_at : to;
    // effectiveUse only grows; a negative difference would be WeChat's bookkeeping, not a refund of charges.
    const wechatCharged = base && end && end.synced_at > base.synced_at ? Math.max(0, Number(BigInt(end.effective_use) - BigInt(base.effective_use))) : null;

    const charges = await chargesInWindow(this.db, appid, windowFrom, windowTo).execute();
    const confirmed = Number(charges.find((c) => c.status === 'confirmed')?.n ?? 0);
    const unconfirmed = Number(charges.find((c) => c.status === 'unconfirmed')?.n ?? 0);

    const reports = await this.db
      .selectFrom('client_reports')
      .select(['outcome', (eb) => eb.fn.countAll<number>().as('n')])
      .where('appid', '=', appid)
      .where('occurred_at', '>', windowFrom)
      .where('occurred_at', '<=', windowTo)
      .groupBy('outcome')
      .execute();
    const count = (o: string) => Number(reports.find((r) => r.outcome === o)?.n ?? 0);

    // A reported success is unseen when its code has no charge row; reports without a code
    // are matched by count against the codes the gateway saw in the window.
    const { rows } = await sql<{ linked_unseen: number | string; unlinked: number | string; linked_seen: number | string }>`
      select
        coalesce(sum(case when r.code_hash is not null and c.code_hash is null then 1 else 0 end), 0) as linked_unseen,
        coalesce(sum(case when r.code_hash is not null and c.code_hash is not null then 1 else 0 end), 0) as linked_seen,
        coalesce(sum(case when r.code_hash is null then 1 else 0 end), 0) as unlinked
      from client_reports r left join charges c on c.code_hash = r.code_hash
      where r.appid = ${appid} and r.outcome = 'success' and r.occurred_at > ${windowFrom} and r.occurred_at <= ${windowTo}
    `.execute(this.db);
    const linkedUnseen = Number(rows[0]?.linked_unseen ?? 0);
    const linkedSeen = Number(rows[0]?.linked_seen ?? 0);
    const unlinked = Number(rows[0]?.unlinked ?? 0);
    const seenNotLinked = Math.max(0, confirmed + unconfirmed - linkedSeen);
    const reportedSuccessUnseen = linkedUnseen + Math.max(0, unlinked - seenNotLinked);

    const r = wechatCharged === null ? null : reconcile({ wechatCharged: exempt ? 0 : wechatCharged, confirmed, unconfirmed, reportedSuccessUnseen });
    return {
      appid,
      exempt,
      windowFrom,
      windowTo,
      wechatCharged,
      confirmed,
      unconfirmed,
      reported: { success: count('success'), userDeny: count('user_deny'), noQuota: count('no_quota'), privacy: count('privacy'), other: count('other') },
      reportedSuccessUnseen,
      unconfirmedCharged: r?.unconfirmedCharged ?? null,
      explained: r?.explained ?? null,
      unexplained: r?.unexplained ?? null,
      overCounted: r?.overCounted ?? null,
      note:
        wechatCharged === null
          ? 'no usage snapshot brackets this period: run syncUsage before and after it to compare with WeChat'
          : exempt
            ? 'the app is exempt: WeChat charges it nothing'
            : null,
    };
  }
}

/** The app's charges by status whose tap (or recording) falls in (windowFrom, windowTo], exempt ones left out. */
export function chargesInWindow(db: Kysely<Database>, appid: string, windowFrom: number, windowTo: number) {
  return db
    .selectFrom('charges')
    .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('appid', '=', appid)
    // Charged at the tap: count by tap time where known, so a code tapped before a sync and
    // exchanged after it falls in the same window as WeChat's charge.
    .where(sql`coalesce(tapped_at, created_at)`, '>', windowFrom)
    .where(sql`coalesce(tapped_at, created_at)`, '<=', windowTo)
    // These add nothing but bound the (appid, created_at) index range to the window: a tap is
    // never after its recording (see quotaRowsQuery), nor an hour or more before it (charge-hooks).
    // Without the upper bound, a window months back walked every charge since.
    .where('created_at', '>', windowFrom)
    .where('created_at', '<', windowTo + TAP_PLAUSIBLE_MS)
    .where((eb) => eb.or([eb('source', 'is', null), eb('source', '<>', 'exempt')]))
    .groupBy('status');
}
