import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { AuditRecordsTable, Database } from '../../src/store/schema.js';
import type { DataKeys } from '../../src/crypto/keys.js';

export const GENESIS = 'genesis';

/** What a caller records; the chain adds id, seq, links and digests. */
export interface AuditEntry {
  appid: string;
  kind: AuditRecordsTable['kind'];
  flow?: AuditRecordsTable['flow'];
  purpose?: string | null;
  noticeVersion?: string | null;
  requestId?: string | null;
  outcome?: AuditRecordsTable['outcome'];
  errorCode?: string | null;
  subjectHash?: string | null;
  maskedPhone?: string | null;
  phoneHash?: string | null;
  detail?: Record<string, unknown> | null;
  at: number;
}

export interface ChainVerification {
  ok: boolean;
  checked: number;
  /** The first record whose link or content does not verify (or the chain head's app when records are missing at the end). */
  firstBrokenId: string | null;
}

type Keys = Pick<DataKeys, 'auditMac'>;

/**
 * The personal fields are chained through a keyed digest of them, not directly: erasure
 * clears the fields and keeps the digest, so the chain still verifies while what it
 * protected is gone. The record id salts the digest so digests do not link records.
 */
function personalDigest(keys: Keys, id: string, r: { subject_hash: string | null; masked_phone: string | null; phone_hash: string | null }): string | null {
  if (r.subject_hash === null && r.masked_phone === null && r.phone_hash === null) return null;
  return keys.auditMac('personal', JSON.stringify([id, r.subject_hash, r.masked_phone, r.phone_hash]));
}

function linkHash(keys: Keys, r: Omit<AuditRecordsTable, 'hash' | 'erased_at' | 'subject_hash' | 'masked_phone' | 'phone_hash'>): string {
  return keys.auditMac(
    'chain',
    JSON.stringify([r.id, r.appid, r.seq, r.kind, r.flow, r.purpose, r.notice_version, r.request_id, r.outcome, r.error_code, r.personal_digest, r.detail, r.at, r.prev_hash]),
  );
}

/**
 * Appends to the app's chain inside the caller's transaction. The head row is locked first
 * (a no-op update: portable row lock), so concurrent appends for one app queue up and each
 * links to the one before; on SQLite transactions are serial anyway.
 */
export async function appendRecord(trx: Kysely<Database>, keys: Keys, e: AuditEntry): Promise<AuditRecordsTable> {
  await trx
    .insertInto('audit_heads')
    .values({ appid: e.appid, last_seq: 0, last_hash: GENESIS })
    .onConflict((oc) => oc.column('appid').doNothing())
    .execute();
  await trx.updateTable('audit_heads').set({ last_seq: sql`last_seq` }).where('appid', '=', e.appid).execute();
  const head = await trx.selectFrom('audit_heads').selectAll().where('appid', '=', e.appid).executeTakeFirstOrThrow();
  const id = `ar_${randomUUID()}`;
  const personal = { subject_hash: e.subjectHash ?? null, masked_phone: e.maskedPhone ?? null, phone_hash: e.phoneHash ?? null };
  const base = {
    id,
    appid: e.appid,
    seq: Number(head.last_seq) + 1,
    kind: e.kind,
    flow: e.flow ?? null,
    purpose: e.purpose ?? null,
    notice_version: e.noticeVersion ?? null,
    request_id: e.requestId ?? null,
    outcome: e.outcome ?? null,
    error_code: e.errorCode ?? null,
    personal_digest: personalDigest(keys, id, personal),
    detail: e.detail ? JSON.stringify(e.detail) : null,
    at: e.at,
    prev_hash: head.last_hash,
  };
  const row: AuditRecordsTable = { ...base, ...personal, hash: linkHash(keys, base), erased_at: null };
  await trx.insertInto('audit_records').values(row).execute();
  await trx.updateTable('audit_heads').set({ last_seq: row.seq, last_hash: row.hash }).where('appid', '=', e.appid).execute();
  return row;
}

const PAGE = 1000;

/**
 * Walks an app's chain from its start (genesis, or the point the latest retention
 * checkpoint vouches for) to its head: every link, every record's content and, for
 * records not erased, their personal fields. Reports the first record that fails.
 */
export async function verifyChain(db: Kysely<Database>, keys: Keys, appid: string): Promise<ChainVerification> {
  const head = await db.selectFrom('audit_heads').selectAll().where('appid', '=', appid).executeTakeFirst();
  if (!head) return { ok: true, checked: 0, firstBrokenId: null };
  const checkpoint = await db
    .selectFrom('audit_records')
    .select(['detail'])
    .where('appid', '=', appid)
    .where('kind', '=', 'checkpoint')
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  const anchor = checkpoint?.detail ? (JSON.parse(checkpoint.detail) as { purgedThroughSeq: number; purgedThroughHash: string }) : null;
  let expectedSeq = anchor ? anchor.purgedThroughSeq + 1 : 1;
  let expectedPrev = anchor ? anchor.purgedThroughHash : GENESIS;
  let checked = 0;
  let lastId: string | null = null;
  for (let after = expectedSeq - 1; ; ) {
    const rows = await db.selectFrom('audit_records').selectAll().where('appid', '=', appid).where('seq', '>', after).orderBy('seq').limit(PAGE).execute();
    for (const r of rows) {
      const seq = Number(r.seq);
      const digestOk = r.erased_at !== null || r.personal_digest === personalDigest(keys, r.id, r);
      if (seq !== expectedSeq || r.prev_hash !== expectedPrev || r.hash !== linkHash(keys, { ...r, seq }) || !digestOk) {
        return { ok: false, checked, firstBrokenId: r.id };
      }
      checked += 1;
      expectedSeq = seq + 1;
      expectedPrev = r.hash;
      lastId = r.id;
    }
    if (rows.length < PAGE) break;
    after = Number(rows[rows.length - 1]!.seq);
  }
  // Records cut off the end (or the head moved without them) show as a head that does not match.
  if (Number(head.last_seq) !== expectedSeq - 1 || head.last_hash !== expectedPrev) {
    return { ok: false, checked, firstBrokenId: lastId ?? `head:${appid}` };
  }
  return { ok: true, checked, firstBrokenId: null };
}

/**
 * Retention: deletes the app's records older than `before` (a prefix of the chain) and
 * appends a checkpoint that vouches for where the remaining chain now starts.
 */
export async function purgeBefore(trx: Kysely<Database>, keys: Keys, appid: string, before: number, now: number): Promise<number> {
  await trx.updateTable('audit_heads').set({ last_seq: sql`last_seq` }).where('appid', '=', appid).execute();
  const firstKept = await trx
    .selectFrom('audit_records')
    .select('seq')
    .where('appid', '=', appid)
    .where('at', '>=', before)
    .orderBy('seq')
    .limit(1)
    .executeTakeFirst();
  const last = await trx.selectFrom('audit_heads').select(['last_seq']).where('appid', '=', appid).executeTakeFirst();
  if (!last) return 0;
  const through = firstKept ? Number(firstKept.seq) - 1 : Number(last.last_seq);
  const edge = await trx.selectFrom('audit_records').select(['hash']).where('appid', '=', appid).where('seq', '=', through).executeTakeFirst();
  if (!edge) return 0; // nothing old enough, or already purged through there
  const deleted = await trx.deleteFrom('audit_records').where('appid', '=', appid).where('seq', '<=', through).executeTakeFirst();
  const count = Number(deleted.numDeletedRows);
  await appendRecord(trx, keys, { appid, kind: 'checkpoint', detail: { purgedThroughSeq: through, purgedThroughHash: edge.hash, purgedCount: count, before }, at: now });
  return count;
}
