import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diff } from '@graphql-inspector/core';
import { buildSchema } from 'graphql';
import { acknowledgedBy, pathsNamed, unreleasedSection } from './changelog.js';

// Clients built against the last release must keep working, or be told in CHANGELOG.md what
// broke: `npm run schema:diff` (and so `npm run schema:check`) fails on a breaking change that
// the `## Unreleased` section does not name. The rule is explained at the top of CHANGELOG.md.

export const LEVELS = ['BREAKING', 'DANGEROUS', 'NON_BREAKING'] as const;
export type Level = (typeof LEVELS)[number];

export interface SchemaChange {
  level: Level;
  /** The inspector's change type, e.g. FIELD_REMOVED. */
  type: string;
  /** What CHANGELOG.md must name: the inspector's path, or the change type for the few changes without one. */
  path: string;
  message: string;
  /** The path named in `## Unreleased` that covers this change, if any. */
  acknowledgedAs: string | undefined;
}

export interface SchemaDiffResult {
  changes: SchemaChange[];
  /** Breaking changes `## Unreleased` does not name: the check fails when there is one. */
  unacknowledged: SchemaChange[];
  hasUnreleasedSection: boolean;
  ok: boolean;
}

/** Diffs two SDL texts and reads the changelog; no files, no output. */
export async function checkSchemaChanges(releasedSdl: string, currentSdl: string, changelog: string): Promise<SchemaDiffResult> {
  const section = unreleasedSection(changelog);
  const named = pathsNamed(section ?? '');
  const found = await diff(buildSchema(releasedSdl), buildSchema(currentSdl));
  const changes = found.map((c): SchemaChange => {
    const path = c.path ?? String(c.type);
    return { level: c.criticality.level as Level, type: String(c.type), path, message: c.message, acknowledgedAs: acknowledgedBy(named, path) };
  });
  const unacknowledged = changes.filter((c) => c.level === 'BREAKING' && c.acknowledgedAs === undefined);
  return { changes, unacknowledged, hasUnreleasedSection: section !== undefined, ok: unacknowledged.length === 0 };
}

/** The report a person reads: every change by criticality, then what to write for each breaking change still unlisted. */
export function formatReport(result: SchemaDiffResult): string {
  const out: string[] = [];
  if (result.changes.length === 0) out.push('No schema changes since the last release (schema/released.graphql).');
  else out.push(`${result.changes.length} schema change(s) since the last release (schema/released.graphql → schema/schema.graphql):`);
  for (const level of LEVELS) {
    const group = result.changes.filter((c) => c.level === level);
    if (group.length === 0) continue;
    out.push('', `${level} (${group.length})`);
    for (const c of group) {
      const note = level !== 'BREAKING' ? '' : c.acknowledgedAs ? `  [listed in CHANGELOG.md as \`${c.acknowledgedAs}\`]` : '  [NOT LISTED in CHANGELOG.md]';
      out.push(`  ${c.path}: ${c.message}${note}`);
    }
  }
  if (!result.ok) {
    out.push('');
    if (!result.hasUnreleasedSection) out.push('CHANGELOG.md has no `## Unreleased` section above its first release heading: add one.');
    out.push(`${result.unacknowledged.length} breaking change(s) not listed under \`## Unreleased\` in CHANGELOG.md. Add, for example:`);
    for (const c of result.unacknowledged) out.push(`  - \`${c.path}\`: ${c.message}. <what clients must do now>`);
    out.push('(A parent path covers everything under it: `Type` or `Type.field` acknowledges `Type.field.argument`.)');
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const read = (file: string, missing?: string): string => {
    try {
      return readFileSync(resolve(root, file), 'utf8');
    } catch (error) {
      if (missing !== undefined) return missing;
      throw error;
    }
  };
  // A missing CHANGELOG.md acknowledges nothing, so a breaking change still fails the check.
  const result = await checkSchemaChanges(read('schema/released.graphql'), read('schema/schema.graphql'), read('CHANGELOG.md', ''));
  const report = formatReport(result);
  if (result.ok) console.log(report);
  else {
    console.error(report);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
