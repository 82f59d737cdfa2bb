import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';

const EXCHANGE = `mutation ExchangePhoneCode($input: ExchangePhoneCodeInput!) {
  exchangePhoneCode(input: $input) { __typename ... on PhoneNumberVerified { phoneNumber } ... on ExchangeError { code } }
}`;

// This file's process gets a provider of its own: spans land in memory, nothing is exported.
const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

async function post(t: TestGateway, body: object, token: string, requestId?: string) {
  const res = await t.gateway.yoga.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: JSON.stringify(body),
  });
  return (await res.json()) as { data?: any; errors?: any[] };
}

/** Everything a span says, as one string (for "no secret anywhere in it"). */
const everything = (s: ReadableSpan) => JSON.stringify([s.name, s.attributes, s.status, s.events, s.links]);

describe('OpenTelemetry spans per GraphQL operation (OTEL_TRACING=true)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend: BACKENDS[0]!, env: { OTEL_TRACING: 'true' } });
  });
  afterAll(() => t?.close());
  beforeEach(() => exporter.reset());

  it('a mutation: one span with its type, name and request id, and no variable, number or token in it', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const token = await t.token('o_traced');
    const r = await post(t, { query: EXCHANGE, variables: { input: { code, purpose: 'login' } }, operationName: 'ExchangePhoneCode' }, token, 'req-traced-1');
    expect(r.data.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');

    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    const [span] = spans;
    expect(span!.name).toBe('mutation ExchangePhoneCode');
    expect(span!.kind).toBe(SpanKind.SERVER);
    expect(span!.attributes).toEqual({
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'ExchangePhoneCode',
      'wxphone.request_id': 'req-traced-1',
    });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    for (const secret of [code, phone, token]) expect(everything(span!)).not.toContain(secret);
  });

  it('a query, anonymous: named by its type, with a generated request id', async () => {
    const r = await post(t, { query: '{ session { subject } }' }, await t.token('o_traced'));
    expect(r.data.session.subject).toBe('o_traced');
    const [span, ...more] = exporter.getFinishedSpans();
    expect(more).toEqual([]);
    expect(span!.name).toBe('query');
    expect(span!.attributes['graphql.operation.type']).toBe('query');
    expect(span!.attributes).not.toHaveProperty('graphql.operation.name');
    expect(span!.attributes['wxphone.request_id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a failing operation: ERROR status with the error codes, never the message or the variables', async () => {
    const code = await mintCode(t.sim);
    const quotaOnly = await t.token('svc_quota', { scopes: ['quota:read'] });
    const r = await post(t, { query: EXCHANGE, variables: { input: { code, purpose: 'login' } } }, quotaOnly);
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const [span] = exporter.getFinishedSpans();
    expect(span!.name).toBe('mutation ExchangePhoneCode');
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'FORBIDDEN' });
    expect(span!.attributes).toMatchObject({ 'graphql.error.codes': ['FORBIDDEN'], 'graphql.error.count': 1 });
    expect(everything(span!)).not.toContain(code);
    expect(everything(span!)).not.toContain(r.errors![0].message);
  });

  it('an invalid document: a span in ERROR status, without the document', async () => {
    const r = await post(t, { query: '{ session { subject nope_13800138000 } }' }, await t.token('o_traced'));
    expect(r.errors?.length).toBeGreaterThan(0);
    const [span] = exporter.getFinishedSpans();
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(everything(span!)).not.toContain('13800138000');
  });
});

describe('tracing off (the default)', () => {
  it('produces no spans', async () => {
    const t = await startTestGateway({ backend: BACKENDS[0]! });
    try {
      exporter.reset();
      const r = await post(t, { query: '{ session { subject } }' }, await t.token('o_untraced'), 'req-untraced');
      expect(r.data.session.subject).toBe('o_untraced');
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
