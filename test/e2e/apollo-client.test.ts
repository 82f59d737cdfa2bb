import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';
import { apolloCacheConfig } from '../../sdk/apollo.js';

/** Apollo Client 4 against the gateway, with the SDK's cache configuration. */

// The documents here are ad hoc, as a client author's would be: their data is read loosely.
type Loose = Record<string, any>;

const EXCHANGE = gql`
  mutation ($input: ExchangePhoneCodeInput!) {
    exchangePhoneCode(input: $input) {
      __typename
      ... on PhoneNumberVerified {
        phoneNumber
        replayed
      }
      ... on ExchangeError {
        code
        message
        retryable
      }
    }
  }
`;

describe.each(BACKENDS)('Apollo Client ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  const client = async (sub: string, scopes: string[], cache: InMemoryCache) =>
    new ApolloClient({ link: new HttpLink({ uri: t.url, headers: { authorization: `Bearer ${await t.token(sub, { scopes })}` } }), cache });

  it("with the SDK's possibleTypes, an exchange error's fields arrive (the README's own query); without them Apollo drops them", async () => {
    const withConfig = await client('o_apollo', ['phone:exchange'], new InMemoryCache(apolloCacheConfig));
    const r = await withConfig.mutate<Loose>({ mutation: EXCHANGE, variables: { input: { code: 'not-a-real-code', purpose: 'login' } } });
    expect(r.data?.exchangePhoneCode).toMatchObject({ __typename: 'InvalidCodeError', code: 'INVALID_CODE', retryable: false });
    expect(r.data?.exchangePhoneCode.message).toMatch(/WeChat rejected the code/);
    // What users of a bare InMemoryCache see: the reason this configuration ships with the SDK.
    const bare = await client('o_apollo_bare', ['phone:exchange'], new InMemoryCache());
    const b = await bare.mutate<Loose>({ mutation: EXCHANGE, variables: { input: { code: 'not-a-real-code-either', purpose: 'login' } } });
    expect(b.data?.exchangePhoneCode).not.toHaveProperty('code');
  });

  it("a cached quota is updated by syncUsage's answer", async () => {
    const apollo = await client('ops', ['quota:read', 'billing:admin'], new InMemoryCache(apolloCacheConfig));
    const QUOTA = gql`
      query ($appid: String!) {
        quota(appid: $appid) {
          appid
          remaining
          syncedAt
        }
      }
    `;
    const before = await apollo.query<Loose>({ query: QUOTA, variables: { appid: APP } });
    expect(before.data?.quota.syncedAt).toBeNull();
    await mintCode(t.sim);
    await apollo.mutate({
      mutation: gql`
        mutation ($appid: String!) {
          syncUsage(appid: $appid) {
            __typename
            ... on UsageSynced {
              quota {
                appid
                remaining
                syncedAt
              }
            }
          }
        }
      `,
      variables: { appid: APP },
    });
    const after = await apollo.query<Loose>({ query: QUOTA, variables: { appid: APP }, fetchPolicy: 'cache-only' });
    expect(after.data?.quota.syncedAt).not.toBeNull();
  });
});
