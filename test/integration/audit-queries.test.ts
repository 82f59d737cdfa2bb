import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { BACKENDS } from '../support/backends.js';
import type { Store } from '../../src/store/db.js';
import { explainPlan, openIsolatedStore, seqScans } from '../support/stores.js';
import { firstKeptSeq } from '../../src/consent/chain.js';
import { auditPageQuery, subjectRecordSeqs } from '../../src/consent/audit.js';
import type { AuditRecordsTable } from '../../src/store/schema.js';

const APP = 'wxa1b2c3d4e5f60001';
const RECORDS = 3000;
const ALICE = 'subject-alice';

describe.each(BACKENDS)('audit record lookups on $name', (backend) => {
  let store: Store;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-auditq-'));
    // Known counts for the plans.
    store = await openIsolatedStore(backend, dir, 'auditq');
    const record = (seq: number, at: number, subject: string): AuditRecordsTable => ({
      id: `ar_${seq}`,
      appid: APP,
      seq,
      kind: 'exchange',
      flow: 'exchange',
      purpose: 'login',
      notice_version: null,
      request_id: null,
      outcome: 'disclosed',
      error_code: null,
      subject_hash: subject,
      masked_phone: null,
      phone_hash: null,
      personal_digest: null,
      digest_salt: null,
      detail: null,
      at,
      prev_hash: 'x',
      hash: 'x',
      erased_at: null,
    });
    // One record a minute; `at` is stamped before the head lock, so neighbours can be out of order:
    // here every tenth record is stamped two minutes after the next one.
    const rows = Array.from({ length: RECORDS }, (_, i) => {
      const seq = i + 1;
      return record(seq, seq * 60_000 + (seq % 10 === 0 ? 180_000 : 0), seq % 100 === 7 ? ALICE : `subject-${seq}`);
    });
    for (let i = 0; i < rows.length; i += 500) await store.db.insertInto('audit_records').values(rows.slice(i, i + 500)).execute();
    if (store.dialect === 'postgres') await sql`analyze audit_records`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the first record to keep: the lowest seq not older than the cut, even where times are out of chain order', async () => {
    // Record 20 is stamped at 23 min, after record 21 (21 min) and 22: cut at 21 min, the first kept is
    // 20, below the record with the earliest time past the cut (21).
    expect(Number((await firstKeptSeq(store.db, APP, 21 * 60_000).executeTakeFirst())?.seq)).toBe(20);
    expect(Number((await firstKeptSeq(store.db, APP, 25 * 60_000).executeTakeFirst())?.seq)).toBe(25);
    expect(await firstKeptSeq(store.db, APP, (RECORDS + 10) * 60_000).executeTakeFirst()).toBeUndefined();
  });

  it("finds the first record to keep by walking the chain only up to the earliest record inside retention, without sorting what is kept", async () => {
    const p = await explainPlan(store, firstKeptSeq(store.db, APP, 1000 * 60_000));
    if (store.dialect === 'sqlite') {
      expect(p.text).toMatch(/USING INDEX sqlite_autoindex_audit_records_\d \(appid=\? AND seq<\?\)/);
      expect(p.text).not.toContain('TEMP B-TREE');
    } else {
      expect(seqScans(p, 'audit_records')).toBe(false);
    }
  });

  it("reads a subject's records in chain order from the index, without walking the chain or sorting", async () => {
    const seqs = (await subjectRecordSeqs(store.db, APP, ALICE).execute()).map((r) => Number(r.seq));
    expect(seqs).toEqual(Array.from({ length: RECORDS / 100 }, (_, i) => i * 100 + 7));
    const page = await auditPageQuery(store.db, { appid: APP, subjectHash: ALICE }, 3, 107).execute();
    expect(page.map((r) => Number(r.seq))).toEqual([207, 307, 407]);
    for (const query of [subjectRecordSeqs(store.db, APP, ALICE), auditPageQuery(store.db, { appid: APP, subjectHash: ALICE }, 51, null)]) {
      const p = await explainPlan(store, query);
      if (store.dialect === 'sqlite') {
        expect(p.text).toMatch(/audit_records_subject_seq \(appid=\? AND subject_hash=\?\)/);
        expect(p.text).not.toContain('TEMP B-TREE');
      } else {
        expect(seqScans(p, 'audit_records')).toBe(false);
        expect(p.text).toContain('audit_records_subject_seq');
      }
    }
  });
});
