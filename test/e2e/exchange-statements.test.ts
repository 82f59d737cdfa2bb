import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';

// The statements one exchange sends, in order: on PostgreSQL each is a round trip, and those after
// the draw run while the app's pack (or trial) row is locked. A statement more here is latency on
// every exchange and a longer queue for every app's charges.
describe.each(BACKENDS)('the statements of one exchange ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  async function exchangeStatements(): Promise<string[]> {
    const client = await t.client('o_statements');
    const code = await mintCode(t.sim);
    const before = t.queries.length;
    const r = await client.ExchangePhoneCode({ input: { code, purpose: 'login' } });
    expect(r.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    // The first word of each, and the tables a data-modifying statement writes.
    return t.queries.slice(before).map((q) => {
      const verb = /^\s*(\w+)/.exec(q)![1]!.toLowerCase();
      const tables = [...q.matchAll(/\b(?:insert into|(?<!do )update)\s+"?(\w+)"?/gi)].map((m) => m[1]).join('+');
      return tables ? `${verb} ${tables}` : `${verb}`;
    });
  }

  it('a trial-funded and a pack-funded exchange: each draw and its charge are one statement on PostgreSQL, the packs read before the settlement', async () => {
    await exchangeStatements(); // the app's first: token, head and trial counter are created
    const postgres = backend.name.startsWith('postgres');
    const settle = (draw: string[]) => [
      'begin',
      'update code_claims',
      ...draw,
      'insert audit_heads',
      postgres ? 'with audit_records+audit_heads' : 'select',
      ...(postgres ? [] : ['insert audit_records', 'update audit_heads']),
      'commit',
    ];
    const before = ['select', 'insert code_claims'];
    const trial = postgres ? ['with app_trials+charges'] : ['insert app_trials', 'insert charges'];
    expect(await exchangeStatements()).toEqual([...before, ...settle(trial)]);

    // Trial spent, one pack bought: the drawable packs are read while WeChat answers, outside the
    // settlement's transaction, which then draws the unit its first round chose.
    await t.gateway.store.db.updateTable('app_trials').set({ trial_used: 1000 }).where('appid', '=', APP).execute();
    const now = Date.now();
    await t.gateway.services.billing.ledger.recordPackPurchase({ owner: { kind: 'app', appid: APP }, units: 10, paidAt: now - 60_000, validityDays: 30, pricePaidMilli: 300 }, now);
    await exchangeStatements(); // the first after the trial: learns it is spent
    const pack = postgres ? ['with packs+charges'] : ['update packs', 'insert charges'];
    expect(await exchangeStatements()).toEqual([...before, 'select', ...settle(pack)]);
  });
});
