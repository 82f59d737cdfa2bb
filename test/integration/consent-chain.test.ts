import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { openStore, type Store } from '../../src/store/db.js';
import { createDataKeys } from '../../src/crypto/keys.js';
import { appendRecord, verifyChain } from '../../src/consent/chain.js';
import { consentChainStore } from '../../src/store/consent-chain/index.js';

const keys = createDataKeys(randomBytes(32));

describe.each(BACKENDS)('consent chain appends on $name', (backend) => {
  let store: Store;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wxphone-chain-'));
    store = await openStore(backend.databaseUrl ?? `file:${join(dir, 'c.db')}`);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a guarded append whose consent was withdrawn appends nothing, even for a caller that catches and commits', async () => {
    const appid = `wx${randomBytes(8).toString('hex')}`;
    await store.db.insertInto('consents').values({ appid, subject_hash: 's_gone', purpose: 'login', state: 'withdrawn', updated_at: 1 }).execute();
    const withdrawn = () => new Error('withdrawn');
    const entry = (subjectHash: string) => ({ appid, kind: 'exchange' as const, flow: 'exchange' as const, purpose: 'login', outcome: 'disclosed' as const, subjectHash, at: 2 });

    const caught = await store.db.transaction().execute(async (trx) => {
      try {
        await appendRecord(trx, { keys, store: consentChainStore(store.dialect) }, entry('s_gone'), { subjectHash: 's_gone', purpose: 'login', withdrawn });
        return null;
      } catch (e) {
        return e; // and the transaction commits
      }
    });
    expect(caught).toBeInstanceOf(Error);
    // Consent never withdrawn (never given either): the guard lets it through.
    await store.db.transaction().execute((trx) => appendRecord(trx, { keys, store: consentChainStore(store.dialect) }, entry('s_here'), { subjectHash: 's_here', purpose: 'login', withdrawn }));

    const rows = await store.db.selectFrom('audit_records').select(['seq', 'subject_hash']).where('appid', '=', appid).execute();
    expect(rows.map((r) => [Number(r.seq), r.subject_hash])).toEqual([[1, 's_here']]);
    expect(await verifyChain(store.db, keys, appid)).toEqual({ ok: true, checked: 1, firstBrokenId: null });
  });
});
