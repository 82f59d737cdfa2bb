import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { InvalidInputError } from '../phone/errors.js';
import { checkCode } from '../phone/input.js';
import { DAY_MS } from './rules.js';
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

/** How long ago a reported tap may have been, and how far ahead of the gateway's clock. */
const MAX_REPORT_AGE_MS = 30 * DAY_MS;
const MAX_REPORT_SKEW_MS = 5 * 60_000;

/** A report as a backend sends it. */
export interface ButtonReportInput {
  outcome: ButtonOutcome;
  errno?: number | null | undefined;
  /** For a success: the code the button gave (the caller records only its keyed hash). */
  code?: string | null | undefined;
  clientEventId?: string | null | undefined;
  occurredAt?: number | null | undefined;
}

/** Checks a report before it is recorded (InvalidInputError names the field at fault); a tap without a time happened now. */
export function checkButtonReport(
  input: ButtonReportInput,
  now: number,
): { outcome: ButtonOutcome; errno: number | null; code: string | null; clientEventId: string | null; occurredAt: number } {
  const occurredAt = input.occurredAt ?? now;
  if (occurredAt > now + MAX_REPORT_SKEW_MS || occurredAt < now - MAX_REPORT_AGE_MS) {
    throw new InvalidInputError('occurredAt must be within the last 30 days', 'occurredAt');
  }
  if (input.code != null && input.outcome !== 'success') throw new InvalidInputError('only a SUCCESS has a code', 'code');
  // A success explains a charge: without a code or an event id it could not be told from a repeat.
  if (input.outcome === 'success' && input.code == null && input.clientEventId == null) {
    throw new InvalidInputError('a SUCCESS needs its code or a clientEventId, so that repeats count once', 'clientEventId');
  }
  const code = input.code == null ? null : checkCode(input.code);
  const clientEventId = input.clientEventId == null ? null : checkCode(input.clientEventId, 'clientEventId');
  if (input.errno != null && (!Number.isSafeInteger(input.errno) || input.errno < 0)) throw new InvalidInputError('errno must be a non-negative integer', 'errno');
  return { outcome: input.outcome, errno: input.errno ?? null, code, clientEventId, occurredAt };
}
