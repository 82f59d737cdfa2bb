import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shutdownTracing } from '../../plugins/tracing/load.js';
import { BACKENDS } from '../support/backends.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

// No SDK registered in this file's process: the gateway starts its own OTLP/HTTP exporter.
describe('OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set', () => {
  const received: { path: string; contentType: string | undefined; body: string }[] = [];
  let collector: Server;
  let t: TestGateway;
  beforeAll(async () => {
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    // The exporter reads OpenTelemetry's variables from the process; the gateway's config decides to trace.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
    t = await startTestGateway({ backend: BACKENDS[0]!, env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint } });
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((r) => collector?.close(r));
  });

  it('batches operation spans to <endpoint>/v1/traces as service wxphone-gateway, sent when the gateway closes', async () => {
    const res = await t.gateway.yoga.fetch('http://gateway/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await t.token('o_exported')}`, 'x-request-id': 'req-exported' },
      body: JSON.stringify({ query: 'query WhoAmI { session { subject } }' }),
    });
    expect(res.status).toBe(200);
    expect(received).toEqual([]); // batched, not sent per span
    // close() sends what is batched (the exporter stays for the process: other gateways may share it).
    await t.gateway.close();
    expect(received.length).toBeGreaterThan(0);
    await shutdownTracing();
    const all = received.map((r) => r.body).join('\n');
    expect(received[0]).toMatchObject({ path: '/v1/traces' });
    expect(all).toContain('"stringValue":"wxphone-gateway"');
    expect(all).toContain('"name":"query WhoAmI"');
    expect(all).toContain('"stringValue":"req-exported"');
  });
});
