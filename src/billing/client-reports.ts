import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, ClientReportsTable } from '../store/schema.js';
import type { SubjectErasure } from '../consent/index.js';

export type ButtonOutcome = ClientReportsTable['outcome'];

export interface ButtonReport {
  appid: string;
  subjectHash: string;
  outcome: ButtonOutcome;
  errno: number | null;
  /** The backend's own id for the event: a repeated report with the same id is stored once. */
  clientEventId: string | null;
  /** Keyed hash of the code the button gave, when the backend sends it: links the report to the code's charge. */
  codeHash: string | null;
  occurredAt: number;
  now: number;
}

/**
 * What mini programs saw when users tapped the button (success, user deny, 1400001,
 * privacy errno, other), reported by their backends. WeChat charges at the success
 * callback whether or not the code is ever exchanged, so these reports are how
 * reconciliation explains charges the gateway never saw.
 */
export class ClientReports {
  constructor(private readonly db: Kysely<Database>) {}

  async record(r: ButtonReport): Promise<{ id: string; duplicate: boolean }> {
    const id = `cr_${randomUUID()}`;
    const inserted = await this.db
      .insertInto('client_reports')
      .values({
        id,
        appid: r.appid,
        outcome: r.outcome,
        errno: r.errno,
        client_event_id: r.clientEventId,
        code_hash: r.codeHash,
        subject_hash: r.subjectHash,
        occurred_at: r.occurredAt,
        created_at: r.now,
      })
      // Either unique key (event id, code) makes a repeat a no-op.
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return { id, duplicate: false };
    const existing = await this.db
      .selectFrom('client_reports')
      .select('id')
      .where('appid', '=', r.appid)
      .where((eb) =>
        eb.or([
          ...(r.clientEventId ? [eb('client_event_id', '=', r.clientEventId)] : []),
          ...(r.codeHash ? [eb('code_hash', '=', r.codeHash)] : []),
        ]),
      )
      .executeTakeFirstOrThrow();
    return { id: existing.id, duplicate: true };
  }

  /** Subject erased: the reports stay (reconciliation counts them) but lose the link to the person. */
  async eraseSubject(s: SubjectErasure, db: Kysely<Database> = this.db): Promise<void> {
    await db.updateTable('client_reports').set({ subject_hash: s.tombstone }).where('appid', '=', s.appid).where('subject_hash', '=', s.subjectHash).execute();
  }
}

/** errno → outcome, for backends that forward the button's raw errno. */
export function outcomeFromErrno(errno: number | null | undefined, errMsg?: string | null): ButtonOutcome {
  if (errno === 1400001) return 'no_quota';
  if (errno === 104 || errno === 112) return 'privacy';
  if (errMsg && /user deny/i.test(errMsg)) return 'user_deny';
  return 'other';
}
