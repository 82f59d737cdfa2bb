import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSchema, createYoga, type Plugin } from 'graphql-yoga';
import { useConsentAudit, type ConsentAuditContext } from '../../plugins/consent-audit/index.js';
import type { SessionContext } from '../../plugins/jwt-session/index.js';
import type { Session } from '../../src/auth/index.js';
import { ConsentAudit } from '../../src/consent/index.js';
import { consentChainStore } from '../../src/store/consent-chain/index.js';
import { openStore, type Store } from '../../src/store/db.js';
import { ClaimStore } from '../../src/phone/claims.js';
import { consentWithdrawnError } from '../../src/phone/errors.js';
import { createDataKeys } from '../../src/crypto/keys.js';

const APP = 'wx0000000000000001';

type Context = ConsentAuditContext & SessionContext;

// The session as useJwtSession would have put it there (that plugin has its own test).
const withSession = (session: Session | undefined): Plugin<Partial<SessionContext>> => ({
  onContextBuilding({ extendContext }) {
    if (session) extendContext({ session });
  },
});

const session = (subject: string): Session => ({ subject, issuer: 'test-issuer', appid: APP, scopes: new Set(['phone:exchange']), expiresAt: Date.now() + 60_000 });

// The plugin alone on a bare yoga, over a real consent log on SQLite.
describe('useConsentAudit', () => {
  let store: Store;
  let audit: ConsentAudit;
  let hashed = 0;
  beforeAll(async () => {
    store = await openStore('file::memory:');
    const keys = createDataKeys(randomBytes(32));
    const counted = Object.assign(Object.create(keys) as typeof keys, {
      subjectHash: (issuer: string, openid: string) => ((hashed += 1), keys.subjectHash(issuer, openid)),
    });
    const claims = new ClaimStore(store.db);
    audit = new ConsentAudit(store.db, counted, new Map(), {
      retentionDays: 30,
      chain: consentChainStore(store.dialect),
      answers: claims,
      erasable: [claims],
      withdrawnError: consentWithdrawnError,
    });
  });
  afterAll(() => store?.close());

  function yoga(who: Session | undefined) {
    return createYoga<object, Context>({
      schema: createSchema<Context>({
        typeDefs: /* GraphQL */ `
          type Query {
            requestId: String!
          }
          type Mutation {
            withdrawThenConsent(purpose: String!, noticeVersion: String): String!
          }
        `,
        resolvers: {
          Query: { requestId: (_root, _args, { consentLog }) => consentLog.requestId },
          Mutation: {
            withdrawThenConsent: async (_root, { purpose, noticeVersion }: { purpose: string; noticeVersion?: string }, { consentLog }) => {
              await consentLog.withdraw(APP, [purpose]);
              await consentLog.giveConsent(APP, purpose, noticeVersion ?? null);
              return consentLog.subjectHash;
            },
          },
        },
      }),
      plugins: [withSession(who), useConsentAudit({ audit })],
      logging: false,
    });
  }

  const post = (who: Session | undefined, query: string, requestId?: string) =>
    yoga(who).fetch('http://yoga/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) },
      body: JSON.stringify({ query }),
    });

  it("every record the request makes carries its request id and the session's subject, hashed once for the request", async () => {
    hashed = 0;
    const res = await post(session('o_consents'), 'mutation { withdrawThenConsent(purpose: "login", noticeVersion: "privacy-2026-03") }', 'req-consent-1');
    const { data } = (await res.json()) as { data: { withdrawThenConsent: string } };
    expect(hashed).toBe(1);
    expect(data.withdrawThenConsent).toBe(audit.subjectHashOf('test-issuer', 'o_consents'));
    const records = await store.db.selectFrom('audit_records').select(['kind', 'request_id', 'subject_hash', 'notice_version']).where('appid', '=', APP).orderBy('seq').execute();
    expect(records).toEqual([
      { kind: 'withdrawal', request_id: 'req-consent-1', subject_hash: data.withdrawThenConsent, notice_version: null },
      { kind: 'consent', request_id: 'req-consent-1', subject_hash: data.withdrawThenConsent, notice_version: 'privacy-2026-03' },
    ]);
    expect(await audit.verify(APP)).toMatchObject({ ok: true, checked: 2 });
  });

  it('a request that makes no record costs no hash', async () => {
    hashed = 0;
    const res = await post(session('o_reads'), '{ requestId }', 'req-read');
    expect(await res.json()).toEqual({ data: { requestId: 'req-read' } });
    expect(hashed).toBe(0);
  });

  it('without a session (the plugin before useJwtSession) the request fails and nothing runs', async () => {
    const res = await post(undefined, '{ requestId }');
    const body = (await res.json()) as { data?: unknown; errors?: unknown[] };
    expect(body.data ?? null).toBeNull();
    expect(body.errors).toHaveLength(1);
  });
});
