// CHANGELOG.md as the schema check reads it: the `## Unreleased` section is where a breaking
// change is acknowledged, by naming its schema path (or a parent of it) in backticks.
// Pure text in, text out, so the check and the release command can be tested without files.

const LEVEL_TWO = /^##\s/;
const UNRELEASED = /^##\s+\[?unreleased\]?\s*$/i;
const VERSION = /^##\s+\[?v?(\d+\.\d+\.\d+)/;
const FENCE = /^\s*(```|~~~)/;
// A schema path as the inspector writes it: `Type`, `Type.field`, `Type.field.arg`, `@directive`.
const PATH = /^@?[_A-Za-z][_0-9A-Za-z]*(\.@?[_A-Za-z][_0-9A-Za-z]*)*$/;

/** Lines of the file with whether each is a level-two heading; a `## ` inside a code block is not one. */
function headings(lines: string[]): boolean[] {
  let fenced = false;
  return lines.map((line) => {
    if (FENCE.test(line)) fenced = !fenced;
    return !fenced && LEVEL_TWO.test(line);
  });
}

/**
 * The body of `## Unreleased`, or undefined when there is none before the first version heading:
 * an Unreleased heading below a release would collect entries that the next release never takes.
 */
export function unreleasedSection(changelog: string): string | undefined {
  const lines = changelog.split(/\r?\n/);
  const isHeading = headings(lines);
  const start = lines.findIndex((line, i) => isHeading[i] && (UNRELEASED.test(line) || VERSION.test(line)));
  if (start < 0 || !UNRELEASED.test(lines[start]!)) return undefined;
  const end = lines.findIndex((_, i) => i > start && isHeading[i]);
  return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/**
 * Every schema path the text names in backticks. A span may hold one path or several separated
 * by commas (`A.b, A.c`); spans that are not paths (`String!`, `{ code }`) name nothing.
 */
export function pathsNamed(text: string): Set<string> {
  const paths = new Set<string>();
  for (const [, span] of text.matchAll(/`([^`\n]+)`/g)) {
    for (const part of span!.split(',')) {
      const candidate = part.trim();
      if (PATH.test(candidate)) paths.add(candidate);
    }
  }
  return paths;
}

/** `Mutation.giveConsent` names `Mutation.giveConsent.appid`; `Pack.price` does not name `Pack.priceHistory`. */
export function covers(named: string, path: string): boolean {
  return path === named || path.startsWith(`${named}.`);
}

/** The acknowledging path for `path` among `named`, if any. */
export function acknowledgedBy(named: Set<string>, path: string): string | undefined {
  for (const candidate of named) if (covers(candidate, path)) return candidate;
  return undefined;
}

/** `## Unreleased` becomes `## <version> — <date>` under a new, empty `## Unreleased`. */
export function releaseChangelog(changelog: string, version: string, date: string): string {
  const lines = changelog.split('\n');
  const isHeading = headings(lines);
  if (lines.some((line, i) => isHeading[i] && VERSION.exec(line)?.[1] === version)) {
    throw new Error(`CHANGELOG.md already has a heading for ${version}`);
  }
  if (unreleasedSection(changelog) === undefined) {
    throw new Error('CHANGELOG.md has no `## Unreleased` section before its first release heading');
  }
  const at = lines.findIndex((line, i) => isHeading[i] && UNRELEASED.test(line));
  lines.splice(at, 1, '## Unreleased', '', `## ${version} — ${date}`);
  return lines.join('\n');
}
