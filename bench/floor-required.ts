// Floor 3 of bench/yoga-hello.ts: the work every exchange must do to keep this project's
// invariants, hand-written with nothing else around it, on the gateway's own schema and with its
// own key, hashing and sealing code. It is what the gateway would cost with no framework of its own
// (no Pothos, no plugins, no error mapping, no metrics, no tracing, no retries, no admission), so
// the gap between it and the ceiling is what the invariants cost on this machine, and the gap
// between the gateway and it is the gateway's own overhead.
//
// Per exchange: a rate-limit count (Redis when the bench has it, else in process), the consent
// read, the claim committed before the call (invariant 1), the WeChat call, then one transaction:
// the claim's answer sealed for replays, a unit drawn from the soonest-expiring pack and the charge
// recorded (invariant 3), the consent re-checked and a record appended to the app's hash chain under
// its head (invariant 4). The trial is taken as spent (the gateway's steady state, see
// BillingLedger.trialSpent). On PostgreSQL the settlement is the fewest round trips it can be:
// the head locked and read (its hash links the record), then everything else in one statement.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import { openStore } from '../src/store/db.js';
import { openCache } from '../src/store/cache.js';
import { createDataKeys, maskPhone } from '../src/crypto/keys.js';
import { MemoryWindowCounter } from '../src/phone/rate-limit.js';

export interface RequiredFloor {
  exchange(code: string, accessToken: string): Promise<boolean>;
}

interface Sql {
  dialect: 'sqlite' | 'postgres';
  /** Runs one statement ($1… placeholders) and returns its rows and the count of rows it changed. */
  run(text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[]; changes: number }>;
  /** Runs `work` in one transaction, its statements on one connection. */
  transaction<T>(work: (q: Sql) => Promise<T>): Promise<T>;
}

const SUBJECT = 'o_bench_floor';
const PURPOSE = 'login';
const LEASE_MS = 60_000;
const REPLAY_TTL_MS = 600_000;

export async function openRequiredFloor(opts: { databaseUrl: string; redisUrl?: string; wechatOrigin: string; appid: string }): Promise<RequiredFloor> {
  // The gateway's migrations, so every table and index an exchange writes is the gateway's.
  await (await openStore(opts.databaseUrl)).close();
  const sql = opts.databaseUrl.startsWith('file:') ? await sqlite(opts.databaseUrl.slice('file:'.length)) : await postgres(opts.databaseUrl);
  const cache = await openCache(opts.redisUrl, `wxfloor-${process.pid}`);
  const counter = cache.counter ?? new MemoryWindowCounter();
  const keys = createDataKeys(randomBytes(32));
  const wechat = new Pool(opts.wechatOrigin, { connections: 64 });
  const app = opts.appid;
  const now0 = Date.now();
  await sql.run(
    `insert into packs (id, owner_kind, owner_id, product, units_all, units_used, paid_at, effective_at, expires_at, validity_days, price_paid_milli, created_at)
     values ('floor-pack', 'app', $1, 'quick', 1000000000, 0, $2, $2, $3, 30, 0, $2)`,
    [app, now0 - 60_000, now0 + 30 * 86_400_000],
  );
  const genesisMac = keys.auditMac('chain', JSON.stringify(['head', app, 0, 'genesis']));
  const consent = `select state from consents where appid = $1 and subject_hash = $2 and purpose = $3`;
  const lockHead = `insert into audit_heads (appid, last_seq, last_hash, head_mac) values ($1, 0, 'genesis', $2)
    on conflict (appid) do update set last_seq = audit_heads.last_seq returning last_seq, last_hash`;
  const drawable = `select id from packs where owner_kind = 'app' and owner_id = $1 and refund_requested_at is null
    and effective_at <= $2 and expires_at > $2 and units_used < units_all order by expires_at, effective_at, id limit 1`;

  return {
    async exchange(code, accessToken) {
      const subjectHash = keys.subjectHash('bench', SUBJECT);
      const [hits, consented] = await Promise.all([
        counter.hit([{ key: `s:${app}:${subjectHash}`, windowMs: 60_000 }]),
        sql.run(consent, [app, subjectHash, PURPOSE]),
      ]);
      if (!hits[0] || consented.rows[0]?.state === 'withdrawn') throw new Error('refused');
      const codeHash = keys.codeHash('phone', code);
      const now = Date.now();
      const claimed = await sql.run(
        `insert into code_claims (code_hash, appid, subject_hash, purpose, state, attempt, lease_until, error_retryable, created_at, updated_at)
         values ($1, $2, $3, $4, 'pending', 1, $5, 0, $6, $6) on conflict (code_hash) do nothing`,
        [codeHash, app, subjectHash, PURPOSE, now + LEASE_MS, now],
      );
      if (claimed.changes !== 1) throw new Error('code already claimed');

      const res = await wechat.request({
        method: 'POST',
        path: `/wxa/business/getuserphonenumber?access_token=${encodeURIComponent(accessToken)}`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ code }),
      });
      const answer = (await res.body.json()) as { errcode?: number; phone_info?: { purePhoneNumber: string; watermark: { appid: string } } };
      const info = answer.phone_info;
      if (res.statusCode !== 200 || answer.errcode !== 0 || !info || info.watermark.appid !== app) throw new Error(`WeChat answered ${res.statusCode} ${answer.errcode}`);

      const at = Date.now();
      const sealed = keys.seal(JSON.stringify(info), codeHash);
      await sql.transaction(async (q) => {
        const head = (await q.run(lockHead, [app, genesisMac])).rows[0] as { last_seq: number | string; last_hash: string };
        const id = `ar_${randomUUID()}`;
        const salt = randomBytes(16).toString('base64url');
        const masked = maskPhone(info.purePhoneNumber);
        const phoneHash = keys.phoneHash(info.purePhoneNumber, 'audit');
        const digest = keys.auditMac('personal', JSON.stringify([id, salt, subjectHash, masked, phoneHash, null]));
        const seq = Number(head.last_seq) + 1;
        const hash = keys.auditMac('chain', JSON.stringify([id, app, seq, 'exchange', 'exchange', PURPOSE, null, 'disclosed', null, digest, null, at, head.last_hash]));
        const headMac = keys.auditMac('chain', JSON.stringify(['head', app, seq, hash]));
        const record = [id, app, seq, digest, salt, subjectHash, masked, phoneHash, at, head.last_hash, hash];
        const insertRecord = `insert into audit_records (id, appid, seq, kind, flow, purpose, outcome, personal_digest, digest_salt, subject_hash, masked_phone, phone_hash, at, prev_hash, hash)
          values ($1, $2, $3, 'exchange', 'exchange', '${PURPOSE}', 'disclosed', $4, $5, $6, $7, $8, $9, $10, $11)`;
        if (sql.dialect === 'postgres') {
          // Everything else in one statement: claim, draw, charge, record, and the head's move,
          // which happens only while consent stands (its snapshot is taken under the head lock).
          const r = await q.run(
            `with claim as (
               update code_claims set state = 'succeeded', answer_sealed = $12, answer_expires_at = $13, updated_at = $9
               where code_hash = $14 and attempt = 1 and state = 'pending' returning code_hash),
             drawn as (
               update packs set units_used = units_used + 1
               where id = (select id from packs where owner_kind = 'app' and owner_id = $2 and refund_requested_at is null
                 and effective_at <= $9 and expires_at > $9 and units_used < units_all order by expires_at, effective_at, id limit 1 for update)
               and exists (select 1 from claim) returning id),
             charged as (
               insert into charges (code_hash, appid, product, status, source, pack_id, price_milli, tapped_at, created_at)
               select $14, $2, 'quick', 'confirmed', 'pack', id, 30, $9, $9 from drawn),
             appended as (${insertRecord} returning seq)
             update audit_heads set last_seq = $3, last_hash = $11, head_mac = $15
             where appid = $2 and exists (select 1 from drawn)
               and not exists (select 1 from consents where appid = $2 and subject_hash = $6 and purpose = '${PURPOSE}' and state = 'withdrawn')`,
            [...record, sealed, at + REPLAY_TTL_MS, codeHash, headMac],
          );
          if (r.changes !== 1) throw new Error('not settled');
          return;
        }
        const owned = await q.run(
          `update code_claims set state = 'succeeded', answer_sealed = $1, answer_expires_at = $2, updated_at = $3 where code_hash = $4 and attempt = 1 and state = 'pending'`,
          [sealed, at + REPLAY_TTL_MS, at, codeHash],
        );
        const pack = (await q.run(drawable, [app, at])).rows[0] as { id: string } | undefined;
        if (owned.changes !== 1 || !pack) throw new Error('not settled');
        await q.run(`update packs set units_used = units_used + 1 where id = $1 and units_used < units_all`, [pack.id]);
        await q.run(
          `insert into charges (code_hash, appid, product, status, source, pack_id, price_milli, tapped_at, created_at) values ($1, $2, 'quick', 'confirmed', 'pack', $3, 30, $4, $4)`,
          [codeHash, app, pack.id, at],
        );
        if ((await q.run(consent, [app, subjectHash, PURPOSE])).rows[0]?.state === 'withdrawn') throw new Error('withdrawn');
        await q.run(insertRecord, record);
        await q.run(`update audit_heads set last_seq = $1, last_hash = $2, head_mac = $3 where appid = $4`, [seq, hash, headMac, app]);
      });
      return true;
    },
  };
}

async function sqlite(path: string): Promise<Sql> {
  const { default: SQLite } = await import('better-sqlite3');
  const db = new SQLite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const statements = new Map<string, import('better-sqlite3').Statement>();
  const prepare = (text: string) => {
    let s = statements.get(text);
    if (!s) statements.set(text, (s = db.prepare(text)));
    return s;
  };
  const sql: Sql = {
    dialect: 'sqlite',
    async run(text, values) {
      const s = prepare(text);
      // To SQLite, $1… are named parameters: bound by name ("1"…), as PostgreSQL binds them by number.
      const named = Object.fromEntries(values.map((v, i) => [String(i + 1), v]));
      if (s.reader) return { rows: s.all(named) as Record<string, unknown>[], changes: 0 };
      return { rows: [], changes: s.run(named).changes };
    },
    async transaction(work) {
      // Statements run synchronously, so nothing else reaches the connection in between.
      const q: Sql = { ...sql, transaction: () => Promise.reject(new Error('nested')) };
      prepare('begin').run();
      try {
        const r = await work(q);
        prepare('commit').run();
        return r;
      } catch (e) {
        prepare('rollback').run();
        throw e;
      }
    },
  };
  return sql;
}

async function postgres(url: string): Promise<Sql> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  const on = (c: { query: (t: string | object, v?: unknown[]) => Promise<{ rows: Record<string, unknown>[]; rowCount: number | null }> }): Sql['run'] => async (text, values) => {
    // Named statements, parsed once per connection, as the gateway's are.
    const r = await c.query({ name: `floor_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text, values } as never);
    return { rows: r.rows, changes: r.rowCount ?? 0 };
  };
  return {
    dialect: 'postgres',
    run: on(pool as never),
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const r = await work({ dialect: 'postgres', run: on(client as never), transaction: () => Promise.reject(new Error('nested')) });
        await client.query('commit');
        return r;
      } catch (e) {
        await client.query('rollback').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
  };
}
