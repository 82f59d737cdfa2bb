import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { auditRecordOf, type AuditRecord } from './audit-record.js';

/** Enough for the pages of records an operator is looking at. */
export const MAX_RECORD_IDS = 500;

export class RecordIdsInputError extends Error {
  override name = 'RecordIdsInputError';
}

/**
 * An app's consent records by id, in chain order: what a page that listed a subject's records
 * reads again after erasing them (the erasure empties the subject hash it found them by).
 * Ids of other apps' records, or of records purged since, are left out.
 */
export class AuditRecordLookup {
  constructor(private readonly db: Kysely<Database>) {}

  async byIds(appid: string, ids: readonly string[]): Promise<AuditRecord[]> {
    const unique = [...new Set(ids)];
    if (unique.length > MAX_RECORD_IDS) throw new RecordIdsInputError(`at most ${MAX_RECORD_IDS} ids`);
    if (!unique.length) return [];
    const rows = await this.db.selectFrom('audit_records').selectAll().where('id', 'in', unique).where('appid', '=', appid).orderBy('seq').execute();
    return rows.map(auditRecordOf);
  }
}
