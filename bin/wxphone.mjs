#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (built by `npm install`, `npm ci` or
// `npm run build`) when it was built from the sources as they are now; otherwise (sources
// edited since, or no build) it runs the TypeScript sources through tsx's loader, so an edit
// is never hidden behind an old build and `npx wxphone` works without one.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compiledEntry } from './compiled.mjs';

const root = resolve(import.meta.dirname, '..');
const compiled = compiledEntry(root);
if (compiled) {
  await import(pathToFileURL(compiled).href);
} else {
  if (process.env.NODE_ENV === 'production') {
    process.stderr.write('wxphone: dist/ is missing or was built from other sources: running the sources through tsx (a slower start); npm run build\n');
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('../app/cli.ts');
}
