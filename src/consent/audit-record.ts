import type { AuditRecordsTable } from '../store/schema.js';

/** One entry of an app's consent log (hash-chained). Personal fields are null after erasure. */
export interface AuditRecord {
  id: string;
  appid: string;
  /** Position in the app's chain, from 1. */
  seq: number;
  kind: AuditRecordsTable['kind'];
  flow: AuditRecordsTable['flow'];
  purpose: string | null;
  noticeVersion: string | null;
  requestId: string | null;
  outcome: AuditRecordsTable['outcome'];
  errorCode: string | null;
  /** Keyed hash of the openid. */
  subjectHash: string | null;
  /** e.g. 138****8000; never the number. */
  maskedPhone: string | null;
  /** Keyed hash of the number. */
  phoneHash: string | null;
  /** JSON, for withdrawals, erasures and checkpoints. */
  detail: string | null;
  at: number;
  erasedAt: number | null;
  prevHash: string;
  hash: string;
}

/** A record as read: what the chain keeps only to verify itself (the personal digest and its salt) stays behind. */
export function auditRecordOf(r: AuditRecordsTable): AuditRecord {
  return {
    id: r.id,
    appid: r.appid,
    seq: Number(r.seq),
    kind: r.kind,
    flow: r.flow,
    purpose: r.purpose,
    noticeVersion: r.notice_version,
    requestId: r.request_id,
    outcome: r.outcome,
    errorCode: r.error_code,
    subjectHash: r.subject_hash,
    maskedPhone: r.masked_phone,
    phoneHash: r.phone_hash,
    detail: r.detail,
    at: r.at,
    erasedAt: r.erased_at,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
