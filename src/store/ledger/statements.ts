import { sql, type Kysely, type QueryCreator } from 'kysely';
import type { Database } from '../schema.js';
import { preparedQuery } from '../prepared.js';

type ChargeRow = Database['charges'];

/** One charge as the ledger records it (a row of `charges`). */
export interface ChargeValues {
  codeHash: string;
  appid: string;
  product: ChargeRow['product'];
  status: ChargeRow['status'];
  source: ChargeRow['source'];
  packId: string | null;
  priceMilli: number;
  tappedAt: number | null;
  now: number;
}

/** A trial draw: the charge it pays for, and how many units a trial holds. */
export type TrialDraw = ChargeValues & { trialUnits: number };
/** A pack draw: the charge it pays for, from the pack chosen. */
export type PackDraw = ChargeValues & { packId: string };

/**
 * The statements of a charge that differ by database: each draws one unit, re-checking it is
 * still there (conditional updates, so concurrent draws never overdraw), and inserts the charge
 * when it drew one. Each says what it did: null when the unit was gone (nothing inserted), else
 * whether the charge went in (false: the code was charged before, and the unit is drawn all the same).
 */
export interface LedgerStatements {
  /** A trial unit: the first for an app without a counter row, else the next while any is left. */
  drawTrialUnitAndCharge(db: Kysely<Database>, v: TrialDraw): Promise<boolean | null>;
  /** A unit of the pack chosen, if it is still in effect, not refunded and has one left. */
  drawPackUnitAndCharge(db: Kysely<Database>, v: PackDraw): Promise<boolean | null>;
}

// The statements of a charge, prepared once (see preparedQuery): every exchange makes two or three of them.

export const insertCharge = preparedQuery((db, v: ChargeValues) =>
  db
    .insertInto('charges')
    .values({
      code_hash: v.codeHash,
      appid: v.appid,
      product: v.product,
      status: v.status,
      source: v.source,
      pack_id: v.packId,
      price_milli: v.priceMilli,
      tapped_at: v.tappedAt,
      created_at: v.now,
    })
    .onConflict((oc) => oc.column('code_hash').doNothing()),
);

/** Whether an insert of a charge went in (false: the code was charged before). */
export function inserted(r: { numAffectedRows?: bigint }): boolean {
  return Number(r.numAffectedRows ?? 0) === 1;
}

/** A trial unit: the first for an app without a counter row, else the next while any is left. */
export const trialDraw = (d: QueryCreator<Database>, v: { appid: string; now: number; trialUnits: number }) =>
  d
    .insertInto('app_trials')
    .values({ appid: v.appid, trial_used: 1, updated_at: v.now })
    .onConflict((oc) =>
      oc
        .column('appid')
        .doUpdateSet({ trial_used: sql`app_trials.trial_used + 1`, updated_at: v.now })
        .where('app_trials.trial_used', '<', v.trialUnits),
    );

/** A unit of an own pack, re-checking what the read of drawable packs saw. */
export const packDraw = (d: QueryCreator<Database>, v: { packId: string; now: number }) =>
  d
    .updateTable('packs')
    .set({ units_used: sql`units_used + 1` })
    .where('id', '=', v.packId)
    .where(sql<boolean>`units_used < units_all`)
    .where('refund_requested_at', 'is', null)
    .where('effective_at', '<=', v.now)
    .where('expires_at', '>', v.now);
