import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createDataKeys } from '../../src/crypto/keys.js';
import { consentChainStore } from '../../src/store/consent-chain/index.js';
import { ConsentAudit } from '../../src/consent/index.js';
import { ClaimStore } from '../../src/phone/claims.js';
import { consentWithdrawnError } from '../../src/phone/errors.js';
import { ClientReports } from '../../src/billing/client-reports.js';

const keys = createDataKeys(randomBytes(32));

// Withdrawal and erasure reach rows of other domains (claims, client reports) only through those
// domains' own methods; what each leaves behind is checked here, row by row.
describe.each(BACKENDS)('withdrawal and erasure across domains on $name', (backend) => {
  let store: Store;
  let dir: string;
  let claims: ClaimStore;
  let reports: ClientReports;
  let audit: ConsentAudit;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-erasure-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'e.db')}`);
    claims = new ClaimStore(store.db);
    reports = new ClientReports(store.db);
    audit = new ConsentAudit(store.db, keys, new Map(), { retentionDays: 30, chain: consentChainStore(store.dialect), answers: claims, erasable: [claims, reports], withdrawnError: consentWithdrawnError });
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function answered(appid: string, subjectHash: string, now: number) {
    const codeHash = `c_${randomBytes(8).toString('hex')}`;
    const claim = await claims.claim({ codeHash, appid, subjectHash, purpose: 'login', now, leaseMs: 60_000 });
    expect(claim.kind).toBe('owner');
    await claims.succeed({ codeHash, attempt: 1, now, answerSealed: 'sealed', answerExpiresAt: now + 60_000 });
    await reports.record({ appid, subjectHash, outcome: 'success', errno: null, clientEventId: codeHash, codeHash, occurredAt: now, now });
    await audit.record({ flow: 'exchange', appid, subjectHash, purpose: 'login', outcome: 'disclosed', phone: null, at: now });
    return codeHash;
  }

  const claimRow = (codeHash: string) =>
    store.db.selectFrom('code_claims').select(['subject_hash', 'answer_sealed', 'answer_expires_at']).where('code_hash', '=', codeHash).executeTakeFirstOrThrow();
  const reportRow = (codeHash: string) => store.db.selectFrom('client_reports').select('subject_hash').where('code_hash', '=', codeHash).executeTakeFirstOrThrow();

  it("a withdrawal deletes the subject's stored answers, and only theirs", async () => {
    const appid = `wx${randomBytes(8).toString('hex')}`;
    const now = Date.now();
    const mine = await answered(appid, 's_withdraws', now);
    const theirs = await answered(appid, 's_stays', now);
    expect(await audit.withdraw(appid, 's_withdraws', ['login'], { requestId: 'req-w' })).toEqual({ purposes: ['login'], answersDeleted: 1 });
    expect(await claimRow(mine)).toMatchObject({ subject_hash: 's_withdraws', answer_sealed: null });
    expect(await claimRow(theirs)).toMatchObject({ subject_hash: 's_stays', answer_sealed: 'sealed' });
    expect(await audit.consentWithdrawn(appid, 's_withdraws', 'login')).toBe(true);
  });

  it("an erasure unlinks the subject's claims and client reports from the person, with one tombstone, and no one else's", async () => {
    const appid = `wx${randomBytes(8).toString('hex')}`;
    const now = Date.now();
    const mine = await answered(appid, 's_erased', now);
    const theirs = await answered(appid, 's_kept', now);
    expect(await audit.erase(appid, 's_erased')).toEqual({ records: 1 });
    const claim = await claimRow(mine);
    expect(claim.subject_hash).toMatch(/^erased:/);
    expect(claim.answer_sealed).toBeNull();
    expect((await reportRow(mine)).subject_hash).toBe(claim.subject_hash);
    expect(await claimRow(theirs)).toMatchObject({ subject_hash: 's_kept', answer_sealed: 'sealed' });
    expect((await reportRow(theirs)).subject_hash).toBe('s_kept');
    expect(await audit.verify(appid)).toEqual({ ok: true, checked: 3, firstBrokenId: null });
  });
});
