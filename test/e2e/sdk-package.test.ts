import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { APP, mintCode, startTestGateway, type TestGateway } from '../support/gateway.js';

/**
 * The SDK as a backend gets it: built, packed with npm, installed from the tarball into a project
 * of its own outside the checkout, and used from there through Apollo Client, urql and
 * graphql-request against a real gateway; the project's TypeScript is compiled against the
 * package's declarations first.
 */

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const repoModules = join(root, 'node_modules');

// npm run / npx leave npm_config_* behind (the checkout's prefix among them): the consumer's npm must
// see its own project, not the gateway's.
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

// The client libraries (and graphql itself) are the checkout's, linked: installing needs no registry,
// and there is one graphql module, as in an application with a single node_modules.
const LINKED = ['graphql', '@graphql-typed-document-node/core', '@apollo/client', '@urql/core', 'graphql-request', 'rxjs'];

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    // No Node types: the package must compile for any runtime with fetch.
    lib: ['ES2022', 'DOM'],
    types: [],
    resolveJsonModule: true,
    skipLibCheck: true,
    noEmitOnError: true,
    rootDir: '.',
    outDir: 'out',
  },
  files: ['consumer.ts', 'types.ts'],
};

/** What the consumer runs: each client against the gateway, printed as one JSON line. */
const CONSUMER = `
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { Client, cacheExchange, fetchExchange } from '@urql/core';
import { request } from 'graphql-request';
import { print } from 'graphql';
import { ExchangePhoneCodeDocument, QuotaDocument, createGatewayClient } from '@wxphone/sdk';
import { apolloCacheConfig } from '@wxphone/sdk/apollo';
import manifest from '@wxphone/sdk/persisted-documents.json' with { type: 'json' };

declare const process: { argv: string[] };
const input = JSON.parse(process.argv[2]!) as { url: string; userToken: string; operatorToken: string; code: string; appid: string };
const auth = (token: string) => ({ authorization: \`Bearer \${token}\` });
const exchange = (code: string) => ({ input: { code, purpose: 'login' } });

// The exchange as the README's API section writes it, untyped.
const README_EXCHANGE = gql\`
  mutation ($input: ExchangePhoneCodeInput!) {
    exchangePhoneCode(input: $input) {
      __typename
      ... on PhoneNumberVerified { phoneNumber purePhoneNumber countryCode watermark { appid timestamp } replayed }
      ... on ExchangeError { code message retryable }
    }
  }
\`;

const apollo = new ApolloClient({ link: new HttpLink({ uri: input.url, headers: auth(input.userToken) }), cache: new InMemoryCache(apolloCacheConfig) });
const apolloReadme = await apollo.mutate<{ exchangePhoneCode: Record<string, unknown> }>({ mutation: README_EXCHANGE, variables: exchange('consumer-apollo-readme') });
const apolloTyped = await apollo.mutate({ mutation: ExchangePhoneCodeDocument, variables: exchange('consumer-apollo-typed') });

const urql = new Client({ url: input.url, exchanges: [cacheExchange, fetchExchange], fetchOptions: { headers: auth(input.userToken) } });
const urqlInvalid = await urql.mutation(ExchangePhoneCodeDocument, exchange('consumer-urql')).toPromise();
const urqlVerified = await urql.mutation(ExchangePhoneCodeDocument, exchange(input.code)).toPromise();

const quota = await request(input.url, QuotaDocument, { appid: input.appid }, auth(input.operatorToken));

const session = await createGatewayClient({ url: input.url, token: input.userToken }).Session();

const text = print(ExchangePhoneCodeDocument);
const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
const hash = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');

console.log(JSON.stringify({
  apolloReadme: apolloReadme.data?.exchangePhoneCode,
  apolloTyped: apolloTyped.data?.exchangePhoneCode,
  urqlInvalid: { data: urqlInvalid.data?.exchangePhoneCode, error: urqlInvalid.error?.message },
  urqlVerified: { data: urqlVerified.data?.exchangePhoneCode, error: urqlVerified.error?.message },
  quota: quota.quota,
  session: session.session,
  manifestHasExchange: (manifest as Record<string, string>)[hash] === text,
}));
`;

/** Compiled, never run: it stops compiling if the documents lose their result or variable types. */
const TYPES = `
import type { ApolloClient } from '@apollo/client';
import type { Client } from '@urql/core';
import { request } from 'graphql-request';
import { ExchangePhoneCodeDocument, QuotaDocument } from '@wxphone/sdk';

export async function typesFlowFromTheDocuments(urql: Client, apollo: ApolloClient, url: string) {
  const u = await urql.query(QuotaDocument, { appid: 'wx' }).toPromise();
  const viaUrql: number | undefined = u.data?.quota?.remaining;
  // @ts-expect-error appid is a String
  urql.query(QuotaDocument, { appid: 1 });
  const m = await urql.mutation(ExchangePhoneCodeDocument, { input: { code: 'c', purpose: 'login' } }).toPromise();
  const r = m.data?.exchangePhoneCode;
  const retryable: boolean | undefined = r?.__typename === 'InvalidCodeError' ? r.retryable : undefined;
  // @ts-expect-error a verified number has no error code
  const noCode = r?.__typename === 'PhoneNumberVerified' ? r.code : undefined;

  const a = await apollo.query({ query: QuotaDocument, variables: { appid: 'wx' } });
  const viaApollo: number | undefined = a.data?.quota?.remaining;
  // @ts-expect-error purpose is required
  await apollo.mutate({ mutation: ExchangePhoneCodeDocument, variables: { input: { code: 'c' } } });

  const g = await request(url, QuotaDocument, { appid: 'wx' });
  const viaRequest: number | undefined = g.quota?.remaining;
  // @ts-expect-error the quota has no such field
  const balance = g.quota?.balance;
  return [viaUrql, retryable, noCode, viaApollo, viaRequest, balance];
}
`;

let project: string;
let tarball: string;
/** What tsc said of the consumer project (nothing, when it compiled). */
let compilerOutput: string;

beforeAll(async () => {
  await run(process.execPath, [join(root, 'bin', 'build-sdk.mjs')], { cwd: root });
  project = mkdtempSync(join(tmpdir(), 'wxphone-sdk-consumer-'));
  const packed = await run('npm', ['pack', join(root, 'sdk'), '--pack-destination', project, '--json'], { cwd: project, env: npmEnv });
  tarball = (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename;
  const dependencies = Object.fromEntries(LINKED.map((name) => [name, `file:${join(repoModules, name)}`]));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module', dependencies }, null, 2));
  await run('npm', ['install', '--prefix', project, '--offline', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', join(project, tarball)], {
    cwd: project,
    env: npmEnv,
  });
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(join(project, 'consumer.ts'), CONSUMER);
  writeFileSync(join(project, 'types.ts'), TYPES);
  const tsc = join(repoModules, 'typescript', 'bin', 'tsc');
  const compiled = await run(process.execPath, [tsc, '-p', project], { cwd: project }).catch((e: { stdout: string; stderr: string }) => e);
  compilerOutput = `${compiled.stdout}${compiled.stderr}`;
}, 180_000);

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('the @wxphone/sdk package', () => {
  it("packs the compiled client, the Apollo cache config and the trusted documents, at the gateway's version", async () => {
    const installed = join(project, 'node_modules', '@wxphone', 'sdk');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { version: string; exports: Record<string, unknown> };
    const gateway = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(tarball).toBe(`wxphone-sdk-${gateway.version}.tgz`);
    expect(pkg.version).toBe(gateway.version);
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['.', './apollo', './persisted-documents.json']));
    expect(readFileSync(join(installed, 'persisted-documents.json'), 'utf8')).toBe(readFileSync(join(root, 'sdk', 'persisted-documents.json'), 'utf8'));
  });

  it("compiles a TypeScript project against the package's declarations: results and variables are typed", async () => {
    expect(compilerOutput).toBe('');
  });
});

describe.each(BACKENDS)('the installed package against the gateway ($name)', (backend) => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ backend });
  });
  afterAll(() => t?.close());

  it('Apollo (with the cache config), urql and graphql-request get typed answers; the fetch client works; the manifest knows the documents', async () => {
    const input = {
      url: t.url,
      userToken: await t.token('o_sdk_consumer'),
      operatorToken: await t.token('ops', { scopes: ['quota:read'] }),
      code: await mintCode(t.sim, '13800138123'),
      appid: APP,
    };
    const { stdout } = await run(process.execPath, [join(project, 'out', 'consumer.js'), JSON.stringify(input)], { cwd: project });
    const out = JSON.parse(stdout) as Record<string, any>;

    const invalid = { __typename: 'InvalidCodeError', code: 'INVALID_CODE', retryable: false, message: expect.stringMatching(/WeChat rejected the code/) };
    expect(out.apolloReadme).toMatchObject(invalid);
    expect(out.apolloTyped).toMatchObject(invalid);
    expect(out.urqlInvalid).toEqual({ data: expect.objectContaining(invalid) });
    expect(out.urqlVerified).toEqual({ data: expect.objectContaining({ __typename: 'PhoneNumberVerified', phoneNumber: '13800138123', replayed: false }) });
    expect(out.quota).toMatchObject({ appid: APP, remaining: expect.any(Number) });
    expect(out.session).toMatchObject({ subject: 'o_sdk_consumer', appid: APP });
    expect(out.manifestHasExchange).toBe(true);
  }, 60_000);
});
