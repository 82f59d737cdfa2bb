import type { Kysely } from 'kysely';
import type { AuditHeadsTable, AuditRecordsTable, Database } from '../schema.js';

/** A consent an append depends on: the subject's consent to the purpose must not be withdrawn. */
export interface ChainGuard {
  subjectHash: string;
  purpose: string;
}

/**
 * The consent chain's statements that differ by database. The chain itself (links, MACs, what a
 * record holds) is the consent domain's; these only write and read it, each database its own way.
 */
export interface ConsentChainStore {
  /**
   * Inserts `record` and moves the app's head to `head`, inside the caller's transaction, which
   * holds the head's row lock. With a `guard`, only while that consent stands (checked under the
   * lock): false when it was withdrawn, and then nothing is appended, even for a caller that
   * catches and commits.
   */
  append(trx: Kysely<Database>, record: AuditRecordsTable, head: AuditHeadsTable, guard?: ChainGuard): Promise<boolean>;
  /** Runs `work` in one transaction that sees one snapshot: appends and purges meanwhile cannot look like breaks. */
  inSnapshot<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T>;
}
