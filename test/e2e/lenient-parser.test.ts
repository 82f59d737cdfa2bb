import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../support/processes.js';

/** Sends raw bytes and returns the status line's code (or the reason the socket ended without one). */
function raw(origin: string, head: string, body: Buffer): Promise<number | string> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    socket.on('data', (d) => {
      answer += String(d);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (status) {
        resolve(Number(status[1]));
        socket.destroy();
      }
    });
    socket.on('error', (e) => resolve(String(e)));
    socket.on('close', () => resolve(answer || 'closed'));
    socket.write(head);
    socket.write(body);
  });
}

// Operators sometimes run Node with --insecure-http-parser for odd clients: the body cap must hold there too.
describe('body cap under a lenient HTTP parser (--insecure-http-parser)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wxphone-lenient-'));
  const { DATABASE_URL: _db, REDIS_URL: _redis, ...env } = process.env;
  const gateway = new GatewayProcess('lenient', {
    ...(env as Record<string, string>),
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --insecure-http-parser`.trim(),
    NODE_ENV: 'development',
    DATABASE_URL: `file:${join(dir, 'g.db')}`,
    SIMULATOR_PORT: '0',
    WXPHONE_CONFIG: '',
    WECHAT_API_BASE: '',
    LOG_LEVEL: 'warn',
  });
  beforeAll(() => gateway.start());
  afterAll(async () => {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a chunked body beside a small Content-Length is still capped at 64 KB', async () => {
    const json = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(100 * 1024) } });
    const chunks = Buffer.concat([Buffer.from(`${Buffer.byteLength(json).toString(16)}\r\n${json}\r\n0\r\n\r\n`)]);
    const head = `POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n`;
    expect(await raw(gateway.origin, head, chunks)).toBe(413);
  });
});
