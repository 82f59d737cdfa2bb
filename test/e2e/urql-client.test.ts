import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import { ExchangePhoneCodeDocument, QuotaDocument, SyncUsageDocument } from '../../sdk/client.js';

/** urql against the gateway with the SDK's typed documents and urql's own document cache. */

describe.each(BACKENDS)('urql ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  const client = async (sub: string, scopes: string[]) =>
    new Client({
      url: t.url,
      exchanges: [cacheExchange, fetchExchange],
      fetchOptions: { headers: { authorization: `Bearer ${await t.token(sub, { scopes })}` } },
    });

  it("an exchange error's code, message and retryable arrive", async () => {
    const urql = await client('o_urql', ['phone:exchange']);
    const r = await urql.mutation(ExchangePhoneCodeDocument, { input: { code: 'not-a-real-code', purpose: 'login' } }).toPromise();
    expect(r.error).toBeUndefined();
    const answer = r.data?.exchangePhoneCode;
    expect(answer).toMatchObject({ __typename: 'InvalidCodeError', code: 'INVALID_CODE', retryable: false });
    if (answer?.__typename !== 'InvalidCodeError') throw new Error('unreachable');
    expect(answer.message).toMatch(/WeChat rejected the code/);
  });

  it('a code the simulator issued is exchanged for the phone number; sent again, the answer is replayed', async () => {
    const urql = await client('o_urql_ok', ['phone:exchange']);
    const code = await mintCode(t.sim, '13800138321');
    const first = await urql.mutation(ExchangePhoneCodeDocument, { input: { code, purpose: 'login' } }).toPromise();
    expect(first.data?.exchangePhoneCode).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: '13800138321', countryCode: '86', replayed: false });
    // Mutations never come from urql's cache: the second one reaches the gateway, which replays.
    const again = await urql.mutation(ExchangePhoneCodeDocument, { input: { code, purpose: 'login' } }).toPromise();
    expect(again.data?.exchangePhoneCode).toMatchObject({ __typename: 'PhoneNumberVerified', phoneNumber: '13800138321', replayed: true });
  });

  it('a field the token has no scope for arrives as a FORBIDDEN GraphQL error', async () => {
    const urql = await client('o_urql_nosy', ['phone:exchange']);
    const r = await urql.query(QuotaDocument, { appid: APP }).toPromise();
    expect(r.error?.graphQLErrors.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
    expect(r.error?.networkError).toBeUndefined();
  });

  it("a cached quota is served from urql's cache until a mutation answering a Quota invalidates it", async () => {
    const urql = await client('ops', ['quota:read', 'billing:admin']);
    const first = await urql.query(QuotaDocument, { appid: APP }).toPromise();
    expect(first.data?.quota?.syncedAt).toBeNull();
    const cached = await urql.query(QuotaDocument, { appid: APP }).toPromise();
    expect(cached.operation.context.meta?.cacheOutcome).toBe('hit');

    await mintCode(t.sim);
    const synced = await urql.mutation(SyncUsageDocument, { appid: APP }).toPromise();
    expect(synced.data?.syncUsage?.__typename).toBe('UsageSynced');
    const after = await urql.query(QuotaDocument, { appid: APP }).toPromise();
    expect(after.operation.context.meta?.cacheOutcome).toBe('miss');
    expect(after.data?.quota?.syncedAt).not.toBeNull();
  });
});
