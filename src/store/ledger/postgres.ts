import { sql, type QueryCreator } from 'kysely';
import type { Database } from '../schema.js';
import { preparedQuery } from '../prepared.js';
import { packDraw, trialDraw, type ChargeValues, type LedgerStatements } from './statements.js';

/**
 * PostgreSQL: a unit is drawn and its charge inserted by one statement, a data-modifying CTE: one
 * round trip fewer per exchange, and one fewer while the app's pack (or trial) row is locked, which
 * every other charge of the app waits for.
 */
export const postgresLedgerStatements: LedgerStatements = {
  async drawTrialUnitAndCharge(db, v) {
    return chargedIfDrawn(await drawTrialUnitAndCharge(db, v));
  },
  async drawPackUnitAndCharge(db, v) {
    return chargedIfDrawn(await drawPackUnitAndCharge(db, v));
  },
};

// It says what it did: drawn 0 (the unit was gone; nothing was inserted), or drawn 1 and charged 0
// or 1 (0: the code was charged before).
function chargeDrawn(qc: QueryCreator<Database & { drawn: { id: string } }>, v: ChargeValues) {
  return qc
    .with('charged', (d) =>
      d
        .insertInto('charges')
        .columns(['code_hash', 'appid', 'product', 'status', 'source', 'pack_id', 'price_milli', 'tapped_at', 'created_at'])
        .expression(
          d.selectFrom('drawn').select([
            sql<string>`${v.codeHash}`.as('code_hash'),
            sql<string>`${v.appid}`.as('appid'),
            sql<string>`${v.product}`.as('product'),
            sql<string>`${v.status}`.as('status'),
            sql<string>`${v.source}`.as('source'),
            sql<string>`${v.packId}`.as('pack_id'),
            // A parameter in a select list is text to PostgreSQL unless cast.
            sql<number>`cast(${v.priceMilli} as integer)`.as('price_milli'),
            sql<number>`cast(${v.tappedAt} as bigint)`.as('tapped_at'),
            sql<number>`cast(${v.now} as bigint)`.as('created_at'),
          ]),
        )
        .onConflict((oc) => oc.column('code_hash').doNothing())
        .returning('code_hash'),
    )
    .selectNoFrom((eb) => [
      eb.selectFrom('drawn').select(eb.fn.countAll<string>().as('n')).as('drawn'),
      eb.selectFrom('charged').select(eb.fn.countAll<string>().as('n')).as('charged'),
    ]);
}

/** What a chargeDrawn statement did: null when no unit was drawn, else whether the charge went in. */
function chargedIfDrawn({ rows }: { rows: { drawn: string | null; charged: string | null }[] }): boolean | null {
  return Number(rows[0]!.drawn) === 1 ? Number(rows[0]!.charged) === 1 : null;
}

const drawTrialUnitAndCharge = preparedQuery((db, v: ChargeValues & { trialUnits: number }) => chargeDrawn(db.with('drawn', (d) => trialDraw(d, v).returning('appid as id')), v));
const drawPackUnitAndCharge = preparedQuery((db, v: ChargeValues & { packId: string }) => chargeDrawn(db.with('drawn', (d) => packDraw(d, v).returning('id')), v));
