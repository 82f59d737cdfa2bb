import { insertCharge, inserted, packDraw, trialDraw, type LedgerStatements } from './statements.js';
import { preparedQuery } from '../prepared.js';

const drawTrialUnit = preparedQuery(trialDraw);
const drawPackUnit = preparedQuery(packDraw);

/**
 * SQLite: a draw, then the charge's insert. A statement is no round trip here (the database is
 * in the process), and SQLite has no data-modifying CTE to make the two one.
 */
export const sqliteLedgerStatements: LedgerStatements = {
  async drawTrialUnitAndCharge(db, v) {
    const drawn = await drawTrialUnit(db, v);
    return Number(drawn.numAffectedRows ?? 0) === 1 ? inserted(await insertCharge(db, v)) : null;
  },
  async drawPackUnitAndCharge(db, v) {
    const drawn = await drawPackUnit(db, v);
    return Number(drawn.numAffectedRows) === 1 ? inserted(await insertCharge(db, v)) : null;
  },
};
