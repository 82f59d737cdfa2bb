import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { AuditRecordsTable, Database } from '../store/schema.js';
import type { ChainGuard, ConsentChainStore } from '../store/consent-chain/index.js';
import type { DataKeys } from '../crypto/keys.js';
import { preparedQuery } from '../store/prepared.js';
import { randomBytesPooled } from '../crypto/random.js';
import { LruMap } from '../util/lru.js';

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
  /** The first record whose link or content does not verify (`head:<appid>` when the head itself does not). */
  firstBrokenId: string | null;
}

type Keys = Pick<DataKeys, 'auditMac'>;

/** What appending to a chain needs: the key that MACs it, and the statements that differ by database. */
export interface ChainWriter {
  keys: Keys;
  store: ConsentChainStore;
}

/** Fields that identify a person (the request id too: a caller may put anything in it); erasure clears them. */
type Personal = Pick<AuditRecordsTable, 'subject_hash' | 'masked_phone' | 'phone_hash' | 'request_id' | 'digest_salt'>;

/**
 * The personal fields are chained through a salted, keyed digest of them, not directly:
 * erasure clears the fields and the salt and keeps the digest, so the chain still verifies
 * while what it protected can no longer be checked against a guess.
 */
function personalDigest(keys: Keys, id: string, p: Personal): string | null {
  if (p.digest_salt === null) return null;
  return keys.auditMac('personal', JSON.stringify([id, p.digest_salt, p.subject_hash, p.masked_phone, p.phone_hash, p.request_id]));
}

type Linked = Omit<AuditRecordsTable, 'hash' | 'erased_at' | keyof Personal>;

function linkHash(keys: Keys, r: Linked): string {
  return keys.auditMac(
    'chain',
    JSON.stringify([r.id, r.appid, r.seq, r.kind, r.flow, r.purpose, r.notice_version, r.outcome, r.error_code, r.personal_digest, r.detail, r.at, r.prev_hash]),
  );
}

function headMac(keys: Keys, appid: string, seq: number, hash: string): string {
  return keys.auditMac('chain', JSON.stringify(['head', appid, seq, hash]));
}

/**
 * Takes the app's head row lock and reads the head, creating it if needed: one upsert whose
 * update changes nothing (portable, where FOR UPDATE is not) and returns the row.
 */
export async function lockHead(trx: Kysely<Database>, keys: Keys, appid: string) {
  const { rows } = await upsertHead(trx, { appid, genesisMac: genesisMac(keys, appid) });
  if (!rows[0]) throw new Error(`the audit head of ${appid} was neither inserted nor found`);
  return rows[0];
}

// The MAC of an app's empty head, needed only the first time but computed on every append before.
const genesisMacs = new WeakMap<Keys, LruMap<string, string>>();

function genesisMac(keys: Keys, appid: string): string {
  let macs = genesisMacs.get(keys);
  if (!macs) genesisMacs.set(keys, (macs = new LruMap(1000)));
  let mac = macs.get(appid);
  if (mac === undefined) macs.set(appid, (mac = headMac(keys, appid, 0, GENESIS)));
  return mac;
}

const upsertHead = preparedQuery((db, v: { appid: string; genesisMac: string }) =>
  db
    .insertInto('audit_heads')
    .values({ appid: v.appid, last_seq: 0, last_hash: GENESIS, head_mac: v.genesisMac })
    .onConflict((oc) => oc.column('appid').doUpdateSet({ last_seq: sql`audit_heads.last_seq` }))
    // Named columns, not *: a column added by a later migration would change the result type of
    // a statement PostgreSQL already has prepared on another instance's connection.
    .returning(['appid', 'last_seq', 'last_hash', 'head_mac']),
);

/** A consent an append depends on: withdrawn, nothing is appended and `withdrawn()` is thrown. */
export interface ConsentGuard extends ChainGuard {
  withdrawn: () => Error;
}

/**
 * Appends to the app's chain inside the caller's transaction. The head row is locked first,
 * so concurrent appends for one app queue up and each links to the one before. A `guard` is
 * checked under that lock (the exchange re-checks consent there: a withdrawal appends to the
 * same chain, so it commits either before the check or after this append); when it fails,
 * nothing is appended and the error it names is thrown.
 */
export async function appendRecord(trx: Kysely<Database>, chain: ChainWriter, e: AuditEntry, guard?: ConsentGuard): Promise<AuditRecordsTable> {
  const { keys } = chain;
  const head = await lockHead(trx, keys, e.appid);
  const id = `ar_${randomUUID()}`;
  const fields = { subject_hash: e.subjectHash ?? null, masked_phone: e.maskedPhone ?? null, phone_hash: e.phoneHash ?? null, request_id: e.requestId ?? null };
  const hasPersonal = Object.values(fields).some((v) => v !== null);
  const personal: Personal = { ...fields, digest_salt: hasPersonal ? randomBytesPooled(16).toString('base64url') : null };
  const base: Linked = {
    id,
    appid: e.appid,
    seq: Number(head.last_seq) + 1,
    kind: e.kind,
    flow: e.flow ?? null,
    purpose: e.purpose ?? null,
    notice_version: e.noticeVersion ?? null,
    outcome: e.outcome ?? null,
    error_code: e.errorCode ?? null,
    personal_digest: personalDigest(keys, id, personal),
    detail: e.detail ? JSON.stringify(e.detail) : null,
    at: e.at,
    prev_hash: head.last_hash,
  };
  const row: AuditRecordsTable = { ...base, ...personal, hash: linkHash(keys, base), erased_at: null };
  const moved = { appid: e.appid, last_seq: row.seq, last_hash: row.hash, head_mac: headMac(keys, e.appid, row.seq, row.hash) };
  if (!(await chain.store.append(trx, row, moved, guard))) throw guard!.withdrawn();
  return row;
}

const PAGE = 1000;

/**
 * Walks an app's chain from its start (genesis, or where the latest retention checkpoint
 * says it starts) to the head read at the beginning: every link, every record's content,
 * the personal fields of records not erased, that every erased record was named by an
 * erasure record and is really empty, and the head's own MAC. Reports the first failure.
 * Callers run it in one snapshot (see ConsentAudit.verify) so concurrent appends and
 * purges cannot look like breaks.
 */
export async function verifyChain(db: Kysely<Database>, keys: Keys, appid: string): Promise<ChainVerification> {
  const head = await db.selectFrom('audit_heads').selectAll().where('appid', '=', appid).executeTakeFirst();
  if (!head) {
    const orphan = await db.selectFrom('audit_records').select('id').where('appid', '=', appid).orderBy('seq').limit(1).executeTakeFirst();
    return orphan ? { ok: false, checked: 0, firstBrokenId: orphan.id } : { ok: true, checked: 0, firstBrokenId: null };
  }
  const headSeq = Number(head.last_seq);
  if (head.head_mac !== headMac(keys, appid, headSeq, head.last_hash)) return { ok: false, checked: 0, firstBrokenId: `head:${appid}` };

  const checkpoint = await db
    .selectFrom('audit_records')
    .select(['detail'])
    .where('appid', '=', appid)
    .where('kind', '=', 'checkpoint')
    .where('seq', '<=', headSeq)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  const anchor = checkpoint?.detail ? (JSON.parse(checkpoint.detail) as { purgedThroughSeq: number; purgedThroughHash: string }) : null;
  // Every erased record must be named by an erasure record (whose content the chain protects).
  const erasures = await db.selectFrom('audit_records').select('detail').where('appid', '=', appid).where('kind', '=', 'erasure').where('seq', '<=', headSeq).execute();
  const erasedSeqs = new Set(erasures.flatMap((e) => ((e.detail ? JSON.parse(e.detail) : {}) as { seqs?: number[] }).seqs ?? []));

  let expectedSeq = anchor ? anchor.purgedThroughSeq + 1 : 1;
  let expectedPrev = anchor ? anchor.purgedThroughHash : GENESIS;
  let checked = 0;
  for (let after = expectedSeq - 1; after < headSeq; ) {
    const rows = await db
      .selectFrom('audit_records')
      .selectAll()
      .where('appid', '=', appid)
      .where('seq', '>', after)
      .where('seq', '<=', headSeq)
      .orderBy('seq')
      .limit(PAGE)
      .execute();
    if (!rows.length) break;
    for (const r of rows) {
      const seq = Number(r.seq);
      const personalOk =
        r.erased_at === null
          ? r.personal_digest === personalDigest(keys, r.id, r)
          : erasedSeqs.has(seq) && r.subject_hash === null && r.masked_phone === null && r.phone_hash === null && r.request_id === null && r.digest_salt === null;
      if (seq !== expectedSeq || r.prev_hash !== expectedPrev || r.hash !== linkHash(keys, { ...r, seq }) || !personalOk) {
        return { ok: false, checked, firstBrokenId: r.id };
      }
      checked += 1;
      expectedSeq = seq + 1;
      expectedPrev = r.hash;
    }
    after = Number(rows[rows.length - 1]!.seq);
  }
  // Records missing at the end, or a head that names another last record.
  if (headSeq !== expectedSeq - 1 || head.last_hash !== expectedPrev) return { ok: false, checked, firstBrokenId: `head:${appid}` };
  // In one snapshot an append moves the head with its record, so a record beyond the head was put there by hand.
  const beyond = await db.selectFrom('audit_records').select('id').where('appid', '=', appid).where('seq', '>', headSeq).limit(1).executeTakeFirst();
  if (beyond) return { ok: false, checked, firstBrokenId: beyond.id };
  return { ok: true, checked, firstBrokenId: null };
}

/**
 * The first record of the app's chain not older than `before`. `at` is stamped before the head is
 * locked, so times are in chain order only roughly, and the first kept record is the lowest seq
 * with `at >= before`, not the record with the lowest such `at`; but its seq is no higher than that
 * record's, which bounds the walk of the chain to the records before it (those the purge is about
 * to delete, and a few). SQLite, without statistics, otherwise took every record inside retention
 * from the time index and sorted them (170–250 ms at a million records, the chain's head locked).
 */
export function firstKeptSeq(db: Kysely<Database>, appid: string, before: number) {
  const earliestKept = db.selectFrom('audit_records').select('seq').where('appid', '=', appid).where('at', '>=', before).orderBy('at').limit(1);
  return db
    .selectFrom('audit_records')
    .select('seq')
    .where('appid', '=', appid)
    .where('at', '>=', before)
    .where('seq', '<=', (eb) => eb.fn.coalesce(earliestKept, eb.val(0)))
    .orderBy('seq')
    .limit(1);
}

/**
 * Retention: deletes the app's records older than `before` (a prefix of the chain) and
 * appends a checkpoint that vouches for where the remaining chain now starts.
 */
export async function purgeBefore(trx: Kysely<Database>, chain: ChainWriter, appid: string, before: number, now: number): Promise<number> {
  await lockHead(trx, chain.keys, appid);
  const firstKept = await firstKeptSeq(trx, appid, before).executeTakeFirst();
  const last = await trx.selectFrom('audit_heads').select(['last_seq']).where('appid', '=', appid).executeTakeFirst();
  if (!last) return 0;
  const through = firstKept ? Number(firstKept.seq) - 1 : Number(last.last_seq);
  const edge = await trx.selectFrom('audit_records').select(['hash']).where('appid', '=', appid).where('seq', '=', through).executeTakeFirst();
  if (!edge) return 0; // nothing old enough, or already purged through there
  const deleted = await trx.deleteFrom('audit_records').where('appid', '=', appid).where('seq', '<=', through).executeTakeFirst();
  const count = Number(deleted.numDeletedRows);
  await appendRecord(trx, chain, { appid, kind: 'checkpoint', detail: { purgedThroughSeq: through, purgedThroughHash: edge.hash, purgedCount: count, before }, at: now });
  return count;
}
