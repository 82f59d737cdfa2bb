import type { Dialect } from '../db.js';
import type { LedgerStatements } from './statements.js';
import { postgresLedgerStatements } from './postgres.js';
import { sqliteLedgerStatements } from './sqlite.js';

export { insertCharge, inserted, type ChargeValues, type LedgerStatements, type PackDraw, type TrialDraw } from './statements.js';

/** The ledger's statements for the database a store opened (chosen once, when the gateway is wired). */
export function ledgerStatements(dialect: Dialect): LedgerStatements {
  return dialect === 'postgres' ? postgresLedgerStatements : sqliteLedgerStatements;
}
