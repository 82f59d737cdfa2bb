import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { releaseChangelog } from './changelog.js';
import { checkSchemaChanges, formatReport } from './diff.js';

// `npm run schema:release -- X.Y.Z`: the current schema becomes the one later changes are
// diffed against, and the changelog's Unreleased entries become that version's.

const version = process.argv[2] ?? '';
if (!/^\d+\.\d+\.\d+$/.test(version)) {
  console.error('usage: npm run schema:release -- X.Y.Z');
  process.exit(1);
}

const root = fileURLToPath(new URL('..', import.meta.url));
const file = (name: string) => resolve(root, name);
const released = readFileSync(file('schema/released.graphql'), 'utf8');
const current = readFileSync(file('schema/schema.graphql'), 'utf8');
const changelog = readFileSync(file('CHANGELOG.md'), 'utf8');

// A release with an unlisted breaking change would hide it for good: the next diff starts after it.
const result = await checkSchemaChanges(released, current, changelog);
if (!result.ok) {
  console.error(`${formatReport(result)}\n\nnot released: list the breaking changes first`);
  process.exit(1);
}

const now = new Date();
const date = [now.getFullYear(), now.getMonth() + 1, now.getDate()].map((n) => String(n).padStart(2, '0')).join('-');
let nextChangelog: string;
try {
  nextChangelog = releaseChangelog(changelog, version, date);
} catch (error) {
  console.error(`not released: ${(error as Error).message}`);
  process.exit(1);
}

const header = [
  `# The GraphQL schema as released in ${version}: \`npm run schema:diff\` (part of \`npm run schema:check\`) compares schema/schema.graphql with it.`,
  '# Do not edit: `npm run schema:release -- X.Y.Z` rewrites it as a copy of schema/schema.graphql when a version is released.',
  '',
].join('\n');
writeFileSync(file('schema/released.graphql'), `${header}\n${current}`);
writeFileSync(file('CHANGELOG.md'), nextChangelog);
// npm's own command keeps package-lock.json's copy of the version in step.
const npm = spawnSync('npm', ['version', version, '--no-git-tag-version', '--allow-same-version'], { cwd: root, stdio: 'inherit' });
if (npm.status !== 0) process.exit(npm.status ?? 1);
// The SDK package is versioned with the schema it was generated from (schema:check holds them equal).
const sdkPackage = JSON.parse(readFileSync(file('sdk/package.json'), 'utf8')) as { version: string };
sdkPackage.version = version;
writeFileSync(file('sdk/package.json'), `${JSON.stringify(sdkPackage, null, 2)}\n`);
console.log(`released ${version} (${date}): schema/released.graphql, CHANGELOG.md, package.json, sdk/package.json; review and commit them`);
