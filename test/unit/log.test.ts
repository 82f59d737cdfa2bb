import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, currentRequestId, withRequestId } from '../../src/log.js';

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

describe('request ids on log lines', () => {
  it('adds the requestId of the request being handled, across awaits, and none outside', async () => {
    const { log, lines } = capture();
    log.info({ n: 1 }, 'before');
    await withRequestId('req-1', async () => {
      expect(currentRequestId()).toBe('req-1');
      await new Promise((r) => setTimeout(r, 1));
      log.info({ appid: 'wx1' }, 'inside');
    });
    log.info('after');
    expect(currentRequestId()).toBeUndefined();
    expect(lines.map((l) => [l.msg, l.requestId])).toEqual([
      ['before', undefined],
      ['inside', 'req-1'],
      ['after', undefined],
    ]);
    expect(lines[1]).toMatchObject({ appid: 'wx1', service: 'wxphone-gateway' });
  });

  it("keeps each line's own fields: nothing carried over between lines, an explicit requestId wins", async () => {
    const { log, lines } = capture();
    const fields = { appid: 'wx1' };
    log.info(fields, 'one');
    log.info('two');
    withRequestId('req-2', () => log.info({ requestId: 'explicit' }, 'three'));
    expect(lines[1]).not.toHaveProperty('appid');
    expect(lines[2]!.requestId).toBe('explicit');
    expect(fields).toEqual({ appid: 'wx1' });
  });
});
