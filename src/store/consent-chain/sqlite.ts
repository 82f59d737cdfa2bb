import type { AuditHeadsTable } from '../schema.js';
import { preparedQuery } from '../prepared.js';
import { consentWithdrawn, insertRecord } from './statements.js';
import type { ConsentChainStore } from './chain-store.js';

const appendRow = preparedQuery(insertRecord);

const moveHead = preparedQuery((db, v: AuditHeadsTable) =>
  db.updateTable('audit_heads').set({ last_seq: v.last_seq, last_hash: v.last_hash, head_mac: v.head_mac }).where('appid', '=', v.appid),
);

/**
 * SQLite: a statement is no round trip (and there is no data-modifying CTE), so the consent check,
 * the record and the head's move are three; a transaction there is serialisable, so it sees one
 * snapshot as it is.
 */
export const sqliteConsentChain: ConsentChainStore = {
  async append(trx, record, head, guard) {
    if (guard && (await consentWithdrawn(trx, { appid: record.appid, subjectHash: guard.subjectHash, purpose: guard.purpose }))) return false;
    await appendRow(trx, record);
    await moveHead(trx, head);
    return true;
  },
  inSnapshot: (db, work) => db.transaction().execute(work),
};
