import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import { apolloCacheConfig } from '../../sdk/apollo.js';

/**
 * Global ids and the nullability policy, through raw HTTP and real clients: every entity has an
 * id that node(id:) reads back (with the scope its own query needs), and a field that fails alone
 * (here: one the token may not read) leaves the others' data in place.
 */

type Loose = Record<string, any>;

describe.each(BACKENDS)('ids and partial answers ($name)', (backend) => {
  let t: TestGateway;
  let operator: string;
  let quotaOnly: string;
  let user: string;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
    operator = await t.token('ops', { scopes: ['quota:read', 'billing:admin', 'audit:read'] });
    quotaOnly = await t.token('quota-reader', { scopes: ['quota:read'] });
    user = await t.token('o_identity', { scopes: ['phone:exchange'] });
  });
  afterAll(() => t?.close());

  const post = async (token: string, query: string, variables: object = {}) => {
    const res = await fetch(t.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, body: (await res.json()) as { data?: Loose | null; errors?: Loose[] } };
  };

  it('a forbidden field is null with a FORBIDDEN error at its path; the permitted fields keep their data', async () => {
    const r = await post(user, `{ session { subject scopes } quota(appid: "${APP}") { remaining } packs(appid: "${APP}") { id } }`);
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ session: { subject: 'o_identity', scopes: ['phone:exchange'] }, quota: null, packs: null });
    expect(r.body.errors?.map((e) => [e.path?.join('.'), e.extensions?.code]).sort()).toEqual([
      ['packs', 'FORBIDDEN'],
      ['quota', 'FORBIDDEN'],
    ]);
  });

  it('Apollo (errorPolicy all) and urql hand the permitted data and the error to the application', async () => {
    const DOC = `query Mixed($appid: String!) { session { subject } quota(appid: $appid) { id remaining } }`;
    const apollo = new ApolloClient({ link: new HttpLink({ uri: t.url, headers: { authorization: `Bearer ${user}` } }), cache: new InMemoryCache(apolloCacheConfig) });
    const a = await apollo.query<Loose>({ query: gql(DOC), variables: { appid: APP }, errorPolicy: 'all' });
    expect(a.data?.session.subject).toBe('o_identity');
    expect(a.data?.quota).toBeNull();
    expect(JSON.stringify(a.error)).toMatch(/FORBIDDEN|lacks the scope/);

    const urql = new Client({ url: t.url, exchanges: [cacheExchange, fetchExchange], fetchOptions: { headers: { authorization: `Bearer ${user}` } } });
    const u = await urql.query(DOC, { appid: APP }).toPromise();
    expect(u.data?.session.subject).toBe('o_identity');
    expect(u.data?.quota).toBeNull();
    expect(u.error?.graphQLErrors.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
  });

  it('every entity has an id that node(id:) reads back, the same id however it was reached', async () => {
    await mintCode(t.sim);
    const code = await mintCode(t.sim);
    const userClient = await t.client('o_identity', { scopes: ['phone:exchange'] });
    expect((await userClient.ExchangePhoneCode({ input: { code, purpose: 'login' } })).exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const admin = await t.client('ops', { scopes: ['quota:read', 'billing:admin', 'audit:read'] });
    const bought = await admin.RecordPackPurchase({
      input: { appid: APP, units: 10, paidAt: new Date(Date.now() - 60_000).toISOString(), validityDays: 30, pricePaidMilli: '2147483648000' },
    });
    if (bought.recordPackPurchase.__typename !== 'Pack') throw new Error('purchase refused');
    // Past 32 bits: money is digits, not an Int.
    expect(bought.recordPackPurchase.pricePaidMilli).toBe('2147483648000');

    const r = await post(
      operator,
      `query ($appid: String!) {
        apps { id appid quota { id } }
        quota(appid: $appid) { id appid }
        packs(appid: $appid) { id packId }
        auditRecords(appid: $appid, first: 5) { edges { node { id recordId } } }
      }`,
      { appid: APP },
    );
    expect(r.body.errors).toBeUndefined();
    const d = r.body.data!;
    const app = d.apps.find((a: Loose) => a.appid === APP);
    expect(app.quota.id).toBe(d.quota.id);
    expect(new Set([app.id, d.quota.id, d.packs[0].id, d.auditRecords.edges[0].node.id]).size).toBe(4);
    // The pack the mutation answered is the pack the query lists: one entity, one id.
    expect(d.packs.map((p: Loose) => p.id)).toContain(bought.recordPackPurchase.id);

    const read = async (id: string) => (await post(operator, `query ($id: ID!) { node(id: $id) { __typename id ... on Quota { appid } ... on App { appid } ... on Pack { packId } ... on AuditRecord { recordId } } }`, { id })).body;
    expect((await read(d.quota.id)).data?.node).toEqual({ __typename: 'Quota', id: d.quota.id, appid: APP });
    expect((await read(app.id)).data?.node).toEqual({ __typename: 'App', id: app.id, appid: APP });
    expect((await read(d.packs[0].id)).data?.node).toEqual({ __typename: 'Pack', id: d.packs[0].id, packId: d.packs[0].packId });
    const record = d.auditRecords.edges[0].node;
    expect((await read(record.id)).data?.node).toEqual({ __typename: 'AuditRecord', id: record.id, recordId: record.recordId });

    // Ids name nothing else: unknown and malformed ones read as null.
    expect((await read(Buffer.from(`Pack:${APP}:no-such-pack`).toString('base64url'))).data?.node).toBeNull();
    expect((await read('not an id')).data?.node).toBeNull();
    // A hand-made id with too few or too many key parts names nothing either (and is no internal error).
    for (const crafted of [`AuditRecord:${APP}`, `Pack:${APP}`, `Quota:${APP}:extra`, 'Nope:x']) {
      const r = await read(Buffer.from(crafted).toString('base64url'));
      expect(r.errors, crafted).toBeUndefined();
      expect(r.data?.node, crafted).toBeNull();
    }
    // The same entity through the SDK's Node query.
    expect((await admin.Node({ id: d.quota.id })).node).toMatchObject({ __typename: 'Quota', appid: APP });
  });

  it('node(id:) asks for the scope the type needs: an audit record is FORBIDDEN to a quota:read token, in nodes() only that item', async () => {
    const ids = (await post(operator, `{ quota(appid: "${APP}") { id } auditRecords(appid: "${APP}", first: 1) { edges { node { id } } } }`)).body.data!;
    const recordId = ids.auditRecords.edges[0]?.node.id as string | undefined;
    expect(recordId).toBeTruthy();
    const r = await post(quotaOnly, `query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }`, { ids: [ids.quota.id, recordId] });
    expect(r.body.data?.nodes).toEqual([{ __typename: 'Quota', id: ids.quota.id }, null]);
    expect(r.body.errors?.map((e) => [e.path?.join('.'), e.extensions?.code])).toEqual([['nodes.1', 'FORBIDDEN']]);
  });

  it("Apollo's cache updates a quota it holds from syncUsage's answer, through the id", async () => {
    const apollo = new ApolloClient({ link: new HttpLink({ uri: t.url, headers: { authorization: `Bearer ${operator}` } }), cache: new InMemoryCache(apolloCacheConfig) });
    const QUOTA = gql`
      query IdentityQuota($appid: String!) {
        quota(appid: $appid) {
          id
          remaining
          syncedAt
        }
      }
    `;
    const before = await apollo.query<Loose>({ query: QUOTA, variables: { appid: APP }, fetchPolicy: 'network-only' });
    await mintCode(t.sim);
    const synced = await apollo.mutate<Loose>({
      mutation: gql`
        mutation IdentitySync($appid: String!) {
          syncUsage(appid: $appid) {
            __typename
            ... on UsageSynced {
              quota {
                id
                remaining
                syncedAt
              }
            }
          }
        }
      `,
      variables: { appid: APP },
    });
    const fresh = synced.data?.syncUsage.quota;
    expect(fresh.id).toBe(before.data?.quota.id);
    expect(fresh.remaining).not.toBe(before.data?.quota.remaining);
    const cached = await apollo.query<Loose>({ query: QUOTA, variables: { appid: APP }, fetchPolicy: 'cache-only' });
    expect(cached.data?.quota).toEqual({ __typename: 'Quota', id: fresh.id, remaining: fresh.remaining, syncedAt: fresh.syncedAt });
  });
});
