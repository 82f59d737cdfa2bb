import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ level: 'info', destination }), lines };
}

describe('log lines', () => {
  it('name a request only when the code writing them passes its id; an unknown id leaves no field', () => {
    const { log, lines } = capture();
    log.info('between requests');
    log.info({ appid: 'wx1', requestId: 'req-1' }, 'for a request');
    // Call sites pass `requestId: undefined` when no request asked (a scheduled sync, say).
    log.info({ appid: 'wx1', requestId: undefined }, 'scheduled');
    expect(lines.map((l) => [l.msg, l.requestId])).toEqual([
      ['between requests', undefined],
      ['for a request', 'req-1'],
      ['scheduled', undefined],
    ]);
    expect(lines[1]).toMatchObject({ appid: 'wx1', service: 'wxphone-gateway' });
    expect(lines[2]).not.toHaveProperty('requestId');
  });

  it('redact codes, tokens and secrets that slip into logged objects', () => {
    const { log, lines } = capture();
    log.warn({ code: '0a1b2c', req: { headers: { authorization: 'Bearer x' } }, app: { secret: 's3' }, appid: 'wx1' }, 'oops');
    expect(lines[0]).toMatchObject({ code: '[redacted]', req: { headers: { authorization: '[redacted]' } }, app: { secret: '[redacted]' }, appid: 'wx1' });
  });
});
