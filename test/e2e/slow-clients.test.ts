import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';

/**
 * Clients that send their request too slowly, or hang up in the middle of it, over real sockets.
 * The deadlines are shortened here (1 s for the headers, 2 s for the whole request) so the test
 * takes seconds; the defaults are 10 s and 30 s (test/unit/config.test.ts).
 */

let running: TestGateway[] = [];
afterEach(async () => {
  for (const g of running) await g.close();
  running = [];
});

async function gateway() {
  const t = await startTestGateway({ backend: BACKENDS[0]!, hardening: { http: { headersTimeoutSeconds: 1, requestTimeoutSeconds: 2 } } });
  running.push(t);
  return t;
}

interface Dribble {
  /** When the server closed the connection, in ms after the first byte. */
  closedAfterMs: number;
  /** Everything the server sent back. */
  answer: string;
}

/** Opens a connection and sends `parts` one every `everyMs`, until the server closes it. */
function dribble(url: string, parts: string[], everyMs: number): Promise<Dribble> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket: Socket = connect(Number(port), hostname);
    let answer = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < parts.length && socket.writable) socket.write(parts[i++]!);
    }, everyMs);
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ closedAfterMs: Date.now() - started, answer });
    });
  });
}

const bytes = (s: string) => s.split('');
const head = (url: string, extra: string) => `POST ${new URL(url).pathname} HTTP/1.1\r\nHost: ${new URL(url).host}\r\ncontent-type: application/json\r\n${extra}\r\n`;

async function metric(t: TestGateway, name: string): Promise<string> {
  const text = await fetch(t.url.replace(/\/graphql$/, '/metrics')).then((r) => r.text());
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

describe('slow clients', () => {
  it('twenty connections sending a byte at a time (headers, a declared body, a chunked body) are answered 408 and closed at the deadlines, counted, and the server keeps serving', async () => {
    const t = await gateway();
    const token = await t.token('o_slow');
    const body = JSON.stringify({ query: '{ session { subject } }' });
    const slowHeaders = Array.from({ length: 10 }, () => dribble(t.url, bytes(head(t.url, `authorization: Bearer ${token}\r\n`)), 300));
    const slowDeclared = Array.from({ length: 5 }, (_, i) =>
      dribble(t.url, [head(t.url, `x-request-id: slow-declared-${i}\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n`), ...bytes(body)], 300),
    );
    const slowChunked = Array.from({ length: 5 }, (_, i) =>
      dribble(t.url, [head(t.url, `x-request-id: slow-chunked-${i}\r\nauthorization: Bearer ${token}\r\ntransfer-encoding: chunked\r\n`), ...bytes(body).map((c) => `1\r\n${c}\r\n`)], 300),
    );
    const [h, d, c] = await Promise.all([Promise.all(slowHeaders), Promise.all(slowDeclared), Promise.all(slowChunked)]);
    for (const r of h) {
      // 1 s for the headers, checked every second.
      expect(r.closedAfterMs).toBeLessThan(3500);
      expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(r.answer).toContain('"code":"REQUEST_TIMEOUT"');
    }
    for (const [i, r] of d.entries()) {
      expect(r.closedAfterMs).toBeLessThan(4500);
      expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(r.answer).toContain(`x-request-id: slow-declared-${i}`);
    }
    for (const [i, r] of c.entries()) {
      expect(r.closedAfterMs).toBeLessThan(4500);
      expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(r.answer).toContain(`x-request-id: slow-chunked-${i}`);
    }
    expect(await metric(t, 'wxphone_http_request_timeouts_total')).toBe(
      'wxphone_http_request_timeouts_total{phase="headers"} 10\nwxphone_http_request_timeouts_total{phase="body"} 10',
    );
    // Said at info level with the request's id; nothing at error level, and no client abort counted twice.
    const lines = t.logs.map((l) => JSON.parse(l) as { level: number; msg: string; requestId?: string });
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    const timedOut = lines.filter((l) => l.msg?.startsWith('client too slow'));
    expect(timedOut).toHaveLength(20);
    expect(timedOut.filter((l) => l.requestId).map((l) => l.requestId).sort()).toEqual([...d, ...c].map((_, i) => (i < 5 ? `slow-declared-${i}` : `slow-chunked-${i - 5}`)).sort());
    expect(await metric(t, 'wxphone_http_client_aborts_total')).toBe('wxphone_http_client_aborts_total 0');
    const ok = await (await t.client('o_after_slow')).Session();
    expect(ok.session.subject).toBe('o_after_slow');
  }, 30_000);

  it('a client that hangs up in the middle of its body (declared or chunked) is logged at info level with its request id, and counted', async () => {
    const t = await gateway();
    const token = await t.token('o_hangup');
    const hangUp = (requestId: string, framing: string, partial: string) =>
      new Promise<void>((resolve) => {
        const { hostname, port } = new URL(t.url);
        const socket = connect(Number(port), hostname, () => {
          socket.write(head(t.url, `x-request-id: ${requestId}\r\nauthorization: Bearer ${token}\r\n${framing}`) + partial);
          setTimeout(() => socket.destroy(), 200);
        });
        socket.on('close', () => resolve());
        socket.on('error', () => {});
      });
    await hangUp('hangup-declared', 'content-length: 500\r\n', '{"query":"{ ses');
    await hangUp('hangup-chunked', 'transfer-encoding: chunked\r\n', '5\r\n{"que\r\n');
    const logged = async () => t.logs.map((l) => JSON.parse(l) as { level: number; msg: string; requestId?: string }).filter((l) => l.requestId?.startsWith('hangup-'));
    for (let i = 0; i < 50 && (await logged()).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    const lines = await logged();
    expect(lines.map((l) => [l.requestId, l.level, l.msg]).sort()).toEqual([
      ['hangup-chunked', 30, 'client went away before its request was received'],
      ['hangup-declared', 30, 'client went away before its request was received'],
    ]);
    expect(t.logs.map((l) => JSON.parse(l) as { level: number }).filter((l) => l.level >= 50)).toEqual([]);
    expect(await metric(t, 'wxphone_http_client_aborts_total')).toBe('wxphone_http_client_aborts_total 2');
  });
});
