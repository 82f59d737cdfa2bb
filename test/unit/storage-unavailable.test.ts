import { describe, expect, it } from 'vitest';
import { isStorageUnavailable } from '../../src/store/unavailable.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isStorageUnavailable', () => {
  it.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a reset connection', withCode('read ECONNRESET', 'ECONNRESET')],
    ['a connection lost mid-query', new Error('Connection terminated unexpectedly')],
    ['a pool wait that timed out', new Error('timeout exceeded when trying to connect')],
    ['a query without an answer', new Error('Query read timeout')],
    ['a client whose connection broke', new Error('Client has encountered a connection error and is not queryable')],
    ['admin shutdown (57P01)', withCode('terminating connection due to administrator command', '57P01')],
    ['the server starting up (57P03)', withCode('the database system is starting up', '57P03')],
    ['too many connections (53300)', withCode('sorry, too many clients already', '53300')],
    ['statement_timeout (57014)', withCode('canceling statement due to statement timeout', '57014')],
    ['a deadlock (40P01)', withCode('deadlock detected', '40P01')],
    ['SQLite busy', withCode('database is locked', 'SQLITE_BUSY')],
    ['SQLite I/O', withCode('disk I/O error', 'SQLITE_IOERR_WRITE')],
    ['a wrapped driver error', new Error('settlement failed', { cause: withCode('read ECONNRESET', 'ECONNRESET') })],
  ])('%s: unavailable', (_name, error) => {
    expect(isStorageUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', withCode('duplicate key value violates unique constraint', '23505')],
    ['a syntax error (42601)', withCode('syntax error at or near "selec"', '42601')],
    ['a missing table (42P01)', withCode('relation "charges" does not exist', '42P01')],
    ['SQLite constraint', withCode('UNIQUE constraint failed', 'SQLITE_CONSTRAINT_PRIMARYKEY')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['not an error', 'Connection terminated'],
    ['nothing', undefined],
  ])('%s: a bug, not an outage', (_name, error) => {
    expect(isStorageUnavailable(error)).toBe(false);
  });
});
