// The ceiling and the floors, in one bare graphql-yoga process. Prints its URL.
//   { hello }                      the ceiling: yoga and nothing else
//   mutation { relay(…) }          floor 1: yoga + the one WeChat call an exchange cannot skip
//   mutation { relayOnce(…) }      floor 2: floor 1 + the two writes once-per-code cannot skip (a
//                                  claim committed before the call, the outcome committed after),
//                                  raw SQL on the bench's own database, no other work
//   mutation { relayRequired(…) }  floor 3: all the work the project's invariants require of an
//                                  exchange, hand-written on the gateway's schema (bench/floor-required.ts)
// The gap between the ceiling and the floors is what any gateway pays; the gap between the floors
// and the gateway is what this one adds.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { createSchema, createYoga } from 'graphql-yoga';
import { Pool } from 'undici';
import { openRequiredFloor } from './floor-required.js';

const wechat = process.env.FLOOR_WECHAT_ORIGIN ? new Pool(process.env.FLOOR_WECHAT_ORIGIN, { connections: 64 }) : undefined;

async function callWechat(code: string, accessToken: string): Promise<string> {
  if (!wechat) throw new Error('FLOOR_WECHAT_ORIGIN is not set');
  const res = await wechat.request({
    method: 'POST',
    path: `/wxa/business/getuserphonenumber?access_token=${encodeURIComponent(accessToken)}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  const answer = (await res.body.json()) as { errcode?: number; phone_info?: { purePhoneNumber: string } };
  if (res.statusCode !== 200 || answer.errcode !== 0 || !answer.phone_info) throw new Error(`WeChat answered ${res.statusCode} ${answer.errcode}`);
  return answer.phone_info.purePhoneNumber;
}

interface FloorStore {
  claim(codeHash: string): Promise<void>;
  settle(codeHash: string, outcome: string): Promise<void>;
}

async function openFloorStore(url: string | undefined): Promise<FloorStore | undefined> {
  if (!url) return undefined;
  const ddl = 'create table if not exists floor_claims (code_hash text primary key, state text not null, outcome text)';
  const insert = 'insert into floor_claims (code_hash, state) values ($1, $2)';
  const update = "update floor_claims set state = 'done', outcome = $2 where code_hash = $1";
  if (url.startsWith('file:')) {
    const { default: SQLite } = await import('better-sqlite3');
    const db = new SQLite(url.slice('file:'.length));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(ddl);
    const ins = db.prepare(insert.replace(/\$\d/g, '?'));
    const upd = db.prepare(update.replace(/\$\d/g, '?'));
    return {
      claim: async (h) => void ins.run(h, 'pending'),
      settle: async (h, o) => void upd.run(h, o),
    };
  }
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  await pool.query(ddl);
  return {
    claim: async (h) => void (await pool.query(insert, [h, 'pending'])),
    settle: async (h, o) => void (await pool.query(update, [h, o])),
  };
}

const store = await openFloorStore(process.env.FLOOR_DATABASE_URL);
const required = process.env.FLOOR_REQUIRED_DATABASE_URL
  ? await openRequiredFloor({
      databaseUrl: process.env.FLOOR_REQUIRED_DATABASE_URL,
      wechatOrigin: process.env.FLOOR_WECHAT_ORIGIN ?? '',
      appid: process.env.FLOOR_APPID ?? '',
      ...(process.env.FLOOR_REDIS_URL ? { redisUrl: process.env.FLOOR_REDIS_URL } : {}),
    })
  : undefined;

const yoga = createYoga({
  schema: createSchema({
    typeDefs: `
      type Query { hello: String! }
      type Mutation {
        relay(code: String!, accessToken: String!): Boolean!
        relayOnce(code: String!, accessToken: String!): Boolean!
        relayRequired(code: String!, accessToken: String!): Boolean!
      }`,
    resolvers: {
      Query: { hello: () => 'world' },
      Mutation: {
        relay: async (_: unknown, a: { code: string; accessToken: string }) => Boolean(await callWechat(a.code, a.accessToken)),
        relayOnce: async (_: unknown, a: { code: string; accessToken: string }) => {
          if (!store) throw new Error('FLOOR_DATABASE_URL is not set');
          const codeHash = createHash('sha256').update(a.code).digest('base64url');
          await store.claim(codeHash);
          const phone = await callWechat(a.code, a.accessToken);
          await store.settle(codeHash, createHash('sha256').update(phone).digest('base64url'));
          return true;
        },
        relayRequired: (_: unknown, a: { code: string; accessToken: string }) => {
          if (!required) throw new Error('FLOOR_REQUIRED_DATABASE_URL is not set');
          return required.exchange(a.code, a.accessToken);
        },
      },
    },
  }),
  logging: false,
  graphiql: false,
  landingPage: false,
});
const server = createServer(yoga);
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`GraphQL: http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
