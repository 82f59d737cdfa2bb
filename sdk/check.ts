import { readFileSync } from 'node:fs';
import { generate } from '@graphql-codegen/cli';
import config from '../codegen.js';

// Regenerates the SDK and the console's typed documents in memory and compares them with the committed files.
const outputs = (await generate({ ...config, silent: true }, false)) as { filename: string; content: string }[];
let stale = false;
for (const { filename, content } of outputs) {
  let committed = '';
  try {
    committed = readFileSync(filename, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (committed !== content) {
    console.error(`${filename} is stale: run \`npm run schema:print\` and commit the result.`);
    stale = true;
  }
}
if (stale) process.exit(1);
console.log(`${outputs.map((o) => o.filename).join(', ')} match schema/schema.graphql, sdk/operations and console/operations`);
