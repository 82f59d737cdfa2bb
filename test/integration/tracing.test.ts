import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { mintCode, nextPhone, startTestGateway, type TestGateway } from '../support/gateway.js';

const EXCHANGE = `mutation ExchangePhoneCode($input: ExchangePhoneCodeInput!) {
  exchangePhoneCode(input: $input) { __typename ... on PhoneNumberVerified { phoneNumber } ... on ExchangeError { code } }
}`;

// This file's process gets a provider of its own, registered as an SDK preloaded with `node
// --import` would be (with its context manager and W3C propagator): spans land in memory.
const exporter = new InMemorySpanExporter();
new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).register();

async function post(t: TestGateway, body: object, token: string, requestId?: string, headers: Record<string, string> = {}) {
  const res = await t.gateway.yoga.fetch('http://gateway/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(requestId ? { 'x-request-id': requestId } : {}), ...headers },
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

  it('a mutation: one operation span with its type, name and request id, and no variable, number or token in it', async () => {
    const phone = nextPhone();
    const code = await mintCode(t.sim, phone);
    const token = await t.token('o_traced');
    const r = await post(t, { query: EXCHANGE, variables: { input: { code, purpose: 'login' } }, operationName: 'ExchangePhoneCode' }, token, 'req-traced-1');
    expect(r.data.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');

    const spans = exporter.getFinishedSpans();
    const operations = spans.filter((s) => !s.parentSpanContext);
    expect(operations).toHaveLength(1);
    const [span] = operations;
    expect(span!.name).toBe('mutation ExchangePhoneCode');
    expect(span!.kind).toBe(SpanKind.SERVER);
    expect(span!.attributes).toEqual({
      'graphql.operation.type': 'mutation',
      'graphql.operation.name': 'ExchangePhoneCode',
      'wxphone.request_id': 'req-traced-1',
    });
    expect(span!.status.code).toBe(SpanStatusCode.UNSET);
    for (const s of spans) for (const secret of [code, phone, token]) expect(everything(s)).not.toContain(secret);
  });

  it("an exchange's phases are child spans of its operation, and each WeChat call a client span under the phase that made it", async () => {
    const code = await mintCode(t.sim);
    const token = await t.token('o_phases');
    // A fresh access token first: the first exchange of a gateway fetches one inside its WeChat phase.
    const r = await post(t, { query: EXCHANGE, variables: { input: { code, purpose: 'login' } } }, token);
    expect(r.data.exchangePhoneCode.__typename).toBe('PhoneNumberVerified');
    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parentName = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? '')?.name;
    const operation = spans.find((s) => s.name.startsWith('mutation'))!;
    const order = ['wxphone.rate_limit', 'wxphone.consent_check', 'wxphone.claim', 'wxphone.wechat', 'wxphone.settle'];
    const phases = spans.filter((s) => s.name.startsWith('wxphone.')).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    expect(phases.map((s) => s.name)).toEqual(order);
    for (const p of phases) {
      expect(p.parentSpanContext?.spanId).toBe(operation.spanContext().spanId);
      expect(p.spanContext().traceId).toBe(operation.spanContext().traceId);
      expect(p.status.code).toBe(SpanStatusCode.UNSET);
    }
    // In order, inside the operation (to the millisecond: the SDK starts spans at Date.now()); the
    // consent read goes on while the rate limit counts, and both end before the claim.
    const ms = (s: ReadableSpan, at: 'startTime' | 'endTime') => s[at][0] * 1e3 + s[at][1] / 1e6;
    const [rateLimit, consent, claim] = phases;
    expect(ms(claim!, 'startTime')).toBeGreaterThanOrEqual(Math.max(ms(rateLimit!, 'endTime'), ms(consent!, 'endTime')) - 1);
    for (let i = 3; i < phases.length; i++) expect(ms(phases[i]!, 'startTime')).toBeGreaterThanOrEqual(ms(phases[i - 1]!, 'endTime') - 1);
    expect(ms(phases.at(-1)!, 'endTime')).toBeLessThanOrEqual(ms(operation, 'endTime') + 1);

    const calls = spans.filter((s) => s.name.startsWith('wechat '));
    const exchangeCall = calls.find((s) => s.name === 'wechat getuserphonenumber')!;
    expect(exchangeCall.kind).toBe(SpanKind.CLIENT);
    expect(exchangeCall.attributes).toEqual({ 'wxphone.wechat.endpoint': 'getuserphonenumber', 'wxphone.wechat.outcome': 'ok' });
    for (const c of calls) expect(parentName(c)).toBe('wxphone.wechat');
    expect(ms(exchangeCall, 'endTime') - ms(exchangeCall, 'startTime')).toBeGreaterThan(0);
    const wechatPhase = phases.find((s) => s.name === 'wxphone.wechat')!;
    expect(ms(exchangeCall, 'startTime')).toBeGreaterThanOrEqual(ms(wechatPhase, 'startTime') - 1);
    expect(ms(exchangeCall, 'endTime')).toBeLessThanOrEqual(ms(wechatPhase, 'endTime') + 1);
    for (const s of spans) expect(everything(s)).not.toContain(code);
  });

  it('a refused exchange: the phase that refused is in ERROR status with the code, and WeChat errors carry their errcode', async () => {
    const code = await mintCode(t.sim);
    await t.sim.fault('/wxa/business/getuserphonenumber', { errcode: 40029, times: 1 });
    const r = await post(t, { query: EXCHANGE, variables: { input: { code, purpose: 'login' } } }, await t.token('o_refused_traced'));
    expect(r.data.exchangePhoneCode.code).toBe('INVALID_CODE');
    const spans = exporter.getFinishedSpans();
    const call = spans.find((s) => s.name === 'wechat getuserphonenumber')!;
    expect(call.attributes).toEqual({ 'wxphone.wechat.endpoint': 'getuserphonenumber', 'wxphone.wechat.outcome': 'error', 'wxphone.wechat.errcode': 40029 });
    expect(call.status).toEqual({ code: SpanStatusCode.ERROR, message: 'errcode 40029' });
    expect(spans.find((s) => s.name === 'wxphone.wechat')!.status).toEqual({ code: SpanStatusCode.ERROR, message: 'WechatApiError' });
    // The failure is settled (recorded as final) in a settlement phase of its own.
    expect(spans.filter((s) => s.name === 'wxphone.settle')).toHaveLength(1);
    for (const s of spans) expect(everything(s)).not.toContain(code);
  });

  it("continues the caller's trace from its W3C traceparent header", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentSpanId = '00f067aa0ba902b7';
    const r = await post(t, { query: '{ session { subject } }' }, await t.token('o_traced'), undefined, { traceparent: `00-${traceId}-${parentSpanId}-01` });
    expect(r.data.session.subject).toBe('o_traced');
    const [span] = exporter.getFinishedSpans();
    expect(span!.spanContext().traceId).toBe(traceId);
    expect(span!.parentSpanContext?.spanId).toBe(parentSpanId);
    expect(span!.parentSpanContext?.isRemote).toBe(true);
    // A malformed one is ignored: a new trace.
    exporter.reset();
    await post(t, { query: '{ session { subject } }' }, await t.token('o_traced'), undefined, { traceparent: 'garbage' });
    const [fresh] = exporter.getFinishedSpans();
    expect(fresh!.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(fresh!.spanContext().traceId).not.toBe(traceId);
    expect(fresh!.parentSpanContext).toBeUndefined();
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
