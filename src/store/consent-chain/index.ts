import type { Dialect } from '../db.js';
import type { ConsentChainStore } from './chain-store.js';
import { sqliteConsentChain } from './sqlite.js';
import { postgresConsentChain } from './postgres.js';

export { consentWithdrawn } from './statements.js';
export type { ChainGuard, ConsentChainStore } from './chain-store.js';

/** The chain's statements for the database the store opened. */
export function consentChainStore(dialect: Dialect): ConsentChainStore {
  return dialect === 'postgres' ? postgresConsentChain : sqliteConsentChain;
}
