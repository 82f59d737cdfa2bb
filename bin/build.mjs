#!/usr/bin/env node
// Compiles the server to dist/ (npm run build; npm install and npm ci run it as `prepare`):
// tsc emits JavaScript for every folder tsconfig.build.json includes, the other files of those
// folders (JSON, GraphQL documents) are copied beside it, and dist/build.json stamps the hash of
// the sources, which bin/wxphone.mjs checks before it runs dist/.
//
// --if-typescript: when TypeScript is not installed (npm ci --omit=dev), say so and build
// nothing: bin/wxphone.mjs then runs the sources through tsx.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { BUILD_CONFIG, OUT_DIR, STAMP, buildFiles, sourceDirs, sourceHash } from './compiled.mjs';

const root = resolve(import.meta.dirname, '..');
const dirs = sourceDirs(root);

function fail(message) {
  process.stderr.write(`wxphone build: ${message}\n`);
  process.exit(1);
}

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  if (process.argv.includes('--if-typescript')) {
    process.stderr.write('wxphone build: TypeScript is not installed (dev dependencies omitted); dist/ not built, the sources will run through tsx\n');
    process.exit(0);
  }
  fail('TypeScript is not installed (install without --omit=dev)');
}

// Hashed before compiling: a source edited during the build leaves a stamp that no longer matches.
const sources = sourceHash(root);
// From scratch: a source file moved or deleted must not leave its old output behind.
rmSync(join(root, OUT_DIR), { recursive: true, force: true });
// Type checking is `npm run typecheck`'s job; the build only emits (isolatedModules allows it).
const compiled = spawnSync(process.execPath, [tsc, '-p', BUILD_CONFIG, '--noCheck'], { cwd: root, stdio: 'inherit' });
if (compiled.status !== 0) process.exit(compiled.status ?? 1);
// A folder outside the build's own list, compiled because something imports it, would escape the stamp.
const strays = readdirSync(join(root, OUT_DIR), { withFileTypes: true }).filter((e) => e.isDirectory() && !dirs.includes(e.name));
if (strays.length) {
  fail(`${strays.map((e) => `${e.name}/`).join(', ')} compiled but not in ${BUILD_CONFIG}'s include: add it there`);
}
for (const file of buildFiles(root).filter((f) => !f.endsWith('.ts'))) {
  mkdirSync(dirname(join(root, OUT_DIR, file)), { recursive: true });
  copyFileSync(join(root, file), join(root, OUT_DIR, file));
}
writeFileSync(join(root, STAMP), `${JSON.stringify({ sources, builtAt: new Date().toISOString() }, null, 2)}\n`);
