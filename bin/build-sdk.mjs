#!/usr/bin/env node
// Compiles the client SDK package (sdk/) to sdk/dist: JavaScript and declarations, what
// `npm pack ./sdk` ships (npm run sdk:build; npm install and npm ci run it as `prepare`).
//
// --if-typescript: when TypeScript is not installed (npm ci --omit=dev), say so and build
// nothing: a production gateway does not need the package, only the sources it shares with it.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  if (process.argv.includes('--if-typescript')) {
    process.stderr.write('wxphone sdk build: TypeScript is not installed (dev dependencies omitted); sdk/dist not built\n');
    process.exit(0);
  }
  process.stderr.write('wxphone sdk build: TypeScript is not installed (install without --omit=dev)\n');
  process.exit(1);
}

// From scratch: a file dropped from the SDK must not linger in the package.
rmSync(join(root, 'sdk', 'dist'), { recursive: true, force: true });
// Unlike the server's build this one type-checks: the declarations are what users compile against.
const compiled = spawnSync(process.execPath, [tsc, '-p', join('sdk', 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
process.exit(compiled.status ?? 1);
