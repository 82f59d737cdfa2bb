import type { Kysely, QueryCreator } from 'kysely';
import type { AuditRecordsTable, Database } from '../schema.js';
import { preparedQuery } from '../prepared.js';

/** The insert of one chain record, as a statement of its own or inside another (PostgreSQL's CTE). */
export const insertRecord = (db: QueryCreator<Database>, v: AuditRecordsTable) =>
  db.insertInto('audit_records').values({
    id: v.id,
    appid: v.appid,
    seq: v.seq,
    kind: v.kind,
    flow: v.flow,
    purpose: v.purpose,
    notice_version: v.notice_version,
    request_id: v.request_id,
    outcome: v.outcome,
    error_code: v.error_code,
    subject_hash: v.subject_hash,
    masked_phone: v.masked_phone,
    phone_hash: v.phone_hash,
    personal_digest: v.personal_digest,
    digest_salt: v.digest_salt,
    detail: v.detail,
    at: v.at,
    prev_hash: v.prev_hash,
    hash: v.hash,
    erased_at: v.erased_at,
  });

const consentState = preparedQuery((db, v: { appid: string; subjectHash: string; purpose: string }) =>
  db.selectFrom('consents').select('state').where('appid', '=', v.appid).where('subject_hash', '=', v.subjectHash).where('purpose', '=', v.purpose),
);

/** Whether the subject has withdrawn consent for the purpose (never given is not withdrawn). */
export async function consentWithdrawn(db: Kysely<Database>, c: { appid: string; subjectHash: string; purpose: string }): Promise<boolean> {
  const { rows } = await consentState(db, c);
  return rows[0]?.state === 'withdrawn';
}
