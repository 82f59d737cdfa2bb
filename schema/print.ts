import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSortedSchema } from './index.js';

// `--write` refreshes schema/schema.graphql; `--check` fails when it differs from the code.
const target = fileURLToPath(new URL('./schema.graphql', import.meta.url));
const printed = printSortedSchema();

if (process.argv.includes('--write')) {
  writeFileSync(target, printed);
  console.log(`wrote ${target}`);
} else {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    // a missing file is drift too
  }
  if (committed !== printed) {
    console.error('schema/schema.graphql differs from what the code prints: run `npm run schema:print` and commit the result.');
    process.exit(1);
  }
  console.log('schema/schema.graphql matches the code');
}
