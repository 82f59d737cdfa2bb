import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { releaseChangelog, unreleasedSection } from '../../schema/changelog.js';
import { checkSchemaChanges, formatReport } from '../../schema/diff.js';

const released = /* GraphQL */ `
  type Query { pack(id: ID!): Pack }
  type Pack { id: ID! pricePaidMilli: Int! note: String }
  type Mutation { giveConsent(appid: String, purpose: String!): Boolean! }
`;
const withoutNote = released.replace('note: String', '');

const changelog = (unreleased: string) => `# Changelog

Rule text naming \`Pack.note\` here does not count.

## Unreleased
${unreleased}
## 0.1.0 — 2026-12-06

- \`Pack\` as released.
`;

describe('checkSchemaChanges', () => {
  it('fails on a removed field the changelog does not list, naming its path', async () => {
    const result = await checkSchemaChanges(released, withoutNote, changelog(''));
    expect(result.ok).toBe(false);
    expect(result.unacknowledged.map((c) => [c.level, c.type, c.path])).toEqual([['BREAKING', 'FIELD_REMOVED', 'Pack.note']]);
    const report = formatReport(result);
    expect(report).toContain("Pack.note: Field 'note' was removed from object type 'Pack'  [NOT LISTED in CHANGELOG.md]");
    expect(report).toContain("  - `Pack.note`: Field 'note' was removed from object type 'Pack'. <what clients must do now>");
  });

  it('passes when Unreleased lists the exact path in a bullet', async () => {
    const result = await checkSchemaChanges(released, withoutNote, changelog('\n- `Pack.note` is gone: read `Pack.id` instead.\n'));
    expect(result.ok).toBe(true);
    expect(result.changes).toHaveLength(1);
    expect(result.changes[0]!.acknowledgedAs).toBe('Pack.note');
  });

  it('passes when a parent path is listed, not when a path merely starts alike', async () => {
    expect((await checkSchemaChanges(released, withoutNote, changelog('\n- `Pack`: trimmed.\n'))).ok).toBe(true);
    const sibling = await checkSchemaChanges(released, withoutNote, changelog('\n- `Pack.no`: renamed.\n'));
    expect(sibling.ok).toBe(false);
  });

  it('counts only the Unreleased section, and only above the first release', async () => {
    const below = `# Changelog\n\n## 0.1.0 — 2026-12-06\n\n## Unreleased\n\n- \`Pack.note\` removed.\n`;
    const result = await checkSchemaChanges(released, withoutNote, below);
    expect(result.hasUnreleasedSection).toBe(false);
    expect(result.ok).toBe(false);
    expect(formatReport(result)).toContain('CHANGELOG.md has no `## Unreleased` section');
    // The same path in the 0.1.0 section or the rule text acknowledges nothing either.
    expect((await checkSchemaChanges(released, withoutNote, changelog('\n- nothing yet\n'))).ok).toBe(false);
  });

  it('passes a non-breaking addition with no changelog entry', async () => {
    const added = released.replace('note: String', 'note: String refundable: Boolean');
    const result = await checkSchemaChanges(released, added, changelog(''));
    expect(result.ok).toBe(true);
    expect(result.changes.map((c) => [c.level, c.path])).toEqual([['NON_BREAKING', 'Pack.refundable']]);
    expect(formatReport(result)).toContain('NON_BREAKING (1)\n  Pack.refundable:');
  });

  it("reports an argument's type change under its path, covered by several paths on one line or by the field", async () => {
    const required = released.replace('appid: String,', 'appid: String!,');
    const result = await checkSchemaChanges(released, required, changelog(''));
    expect(result.unacknowledged.map((c) => [c.type, c.path])).toEqual([['FIELD_ARGUMENT_TYPE_CHANGED', 'Mutation.giveConsent.appid']]);
    expect(result.unacknowledged[0]!.message).toContain("changed from 'String' to 'String!'");
    expect((await checkSchemaChanges(released, required, changelog('\n- `Pack.id`, `Mutation.giveConsent.appid`: required.\n'))).ok).toBe(true);
    expect((await checkSchemaChanges(released, required, changelog('\n- `Pack.id, Mutation.giveConsent.appid`: required.\n'))).ok).toBe(true);
    expect((await checkSchemaChanges(released, required, changelog('\n- `Mutation.giveConsent` needs an appid.\n'))).ok).toBe(true);
  });

  it('passes for the repository: schema/released.graphql against schema/schema.graphql with CHANGELOG.md', async () => {
    const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
    const result = await checkSchemaChanges(read('schema/released.graphql'), read('schema/schema.graphql'), read('CHANGELOG.md'));
    expect(result.unacknowledged).toEqual([]);
    expect(result.ok).toBe(true);
  });
});

describe('releaseChangelog', () => {
  it('turns Unreleased into the version under a new, empty Unreleased', () => {
    const next = releaseChangelog(changelog('\n- `Pack.note` removed.\n'), '0.2.0', '2027-01-15');
    expect(next).toContain('## Unreleased\n\n## 0.2.0 — 2027-01-15\n\n- `Pack.note` removed.\n\n## 0.1.0 — 2026-12-06');
    expect(unreleasedSection(next)?.trim()).toBe('');
    expect(() => releaseChangelog(next, '0.2.0', '2027-01-16')).toThrow(/already has a heading for 0.2.0/);
  });
});
