import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, print, type DocumentNode } from 'graphql';
import * as generated from './generated.js';
import * as consoleDocuments from '../console/src/graphql/generated.js';

/**
 * The SDK's operations, and the operations console's, as trusted documents: SHA-256 of each
 * document's text (as graphql-js prints it, which is what the SDK sends) → that text. The gateway
 * reads it (plugins/persisted-documents); a client may send the hash instead of the text, and with
 * TRUSTED_DOCUMENTS=only the console keeps working. `--write` rewrites
 * sdk/persisted-documents.json, `--check` fails when it is stale.
 */
export const PERSISTED_DOCUMENTS_FILE = new URL('./persisted-documents.json', import.meta.url);

export function persistedDocuments(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(generated)) {
    if (!name.endsWith('Document') || typeof value !== 'object' || (value as DocumentNode).kind !== 'Document') continue;
    const text = print(value as DocumentNode);
    out[createHash('sha256').update(text).digest('hex')] = text;
  }
  // The console sends its documents as the strings codegen wrote (typed-document-node, string mode).
  for (const [name, value] of Object.entries(consoleDocuments)) {
    if (!name.endsWith('Document') || !(value instanceof String)) continue;
    const text = print(parse(String(value)));
    out[createHash('sha256').update(text).digest('hex')] = text;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const text = `${JSON.stringify(persistedDocuments(), null, 2)}\n`;
  if (process.argv.includes('--write')) writeFileSync(PERSISTED_DOCUMENTS_FILE, text);
  else if (readFileSync(PERSISTED_DOCUMENTS_FILE, 'utf8') !== text) {
    console.error('sdk/persisted-documents.json is stale: run `npm run schema:print` and commit the result.');
    process.exit(1);
  } else console.log('sdk/persisted-documents.json matches the SDK operations');
}
