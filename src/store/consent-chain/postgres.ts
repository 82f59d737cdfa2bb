import type { AuditHeadsTable, AuditRecordsTable } from '../schema.js';
import { preparedQuery } from '../prepared.js';
import { insertRecord } from './statements.js';
import type { ConsentChainStore } from './chain-store.js';

// One statement, one round trip (each is a write and a wait on the exchange's path, under the
// app's head lock): the record goes in as a data-modifying CTE, which PostgreSQL runs to completion
// whether or not the update reads it.
const appendRowAndMoveHead = preparedQuery((db, v: AuditRecordsTable & AuditHeadsTable) =>
  db
    .with('appended', (d) => insertRecord(d, v).returning('seq'))
    .updateTable('audit_heads')
    .set({ last_seq: v.last_seq, last_hash: v.last_hash, head_mac: v.head_mac })
    .where('appid', '=', v.appid),
);

// The same, moving the head only while the consent stands: the statement's snapshot is taken under
// the head lock, so a withdrawal committed before it is seen. Withdrawn, the head stays (and
// append takes the record out again).
const appendRowAndMoveHeadIfConsented = preparedQuery((db, v: AuditRecordsTable & AuditHeadsTable & { guardSubject: string; guardPurpose: string }) =>
  db
    .with('appended', (d) => insertRecord(d, v).returning('seq'))
    .updateTable('audit_heads')
    .set({ last_seq: v.last_seq, last_hash: v.last_hash, head_mac: v.head_mac })
    .where('appid', '=', v.appid)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('consents')
            .select('state')
            .where('appid', '=', v.appid)
            .where('subject_hash', '=', v.guardSubject)
            .where('purpose', '=', v.guardPurpose)
            .where('state', '=', 'withdrawn'),
        ),
      ),
    ),
);

/** PostgreSQL: the consent check is part of the head's move, and a chain is walked in a repeatable-read snapshot. */
export const postgresConsentChain: ConsentChainStore = {
  async append(trx, record, head, guard) {
    if (!guard) {
      await appendRowAndMoveHead(trx, { ...record, ...head });
      return true;
    }
    const r = await appendRowAndMoveHeadIfConsented(trx, { ...record, ...head, guardSubject: guard.subjectHash, guardPurpose: guard.purpose });
    if (Number(r.numAffectedRows) === 1) return true;
    // Withdrawn (rare): the record went in with the statement, so it comes out again, and the
    // chain is as it was even for a caller that commits after catching the error.
    await trx.deleteFrom('audit_records').where('id', '=', record.id).execute();
    return false;
  },
  inSnapshot: (db, work) => db.transaction().setIsolationLevel('repeatable read').execute(work),
};
