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
// The package is versioned with the schema it was generated from: a release bumps both together.
const gatewayVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const sdkVersion = (JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string }).version;
if (sdkVersion !== gatewayVersion) {
  console.error(`sdk/package.json has version ${sdkVersion}, package.json ${gatewayVersion}: the SDK is released with the gateway's schema, give both the same version.`);
  stale = true;
}
if (stale) process.exit(1);
console.log(`${outputs.map((o) => o.filename).join(', ')} match schema/schema.graphql, sdk/operations and console/operations; sdk/package.json is at version ${sdkVersion}`);
