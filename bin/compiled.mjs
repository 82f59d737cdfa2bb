// The compiled build in dist/ and whether it still matches the sources it was built from.
// Plain JavaScript with no dependencies: bin/wxphone.mjs reads it before it knows whether
// TypeScript can be loaded at all.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const BUILD_CONFIG = 'tsconfig.build.json';
export const OUT_DIR = 'dist';
export const STAMP = join(OUT_DIR, 'build.json');
export const SOURCE_ENTRY = join('app', 'cli.ts');
export const COMPILED_ENTRY = join(OUT_DIR, 'app', 'cli.js');

/** The folders the build compiles, from its own config, so the two never disagree. */
export function sourceDirs(root) {
  return JSON.parse(readFileSync(join(root, BUILD_CONFIG), 'utf8')).include;
}

/** Every file of the compiled folders but those the build's config excludes (the console's browser sources and build). */
export function buildFiles(root) {
  const excluded = JSON.parse(readFileSync(join(root, BUILD_CONFIG), 'utf8')).exclude ?? [];
  const kept = (file) => !excluded.some((e) => file === e || file.startsWith(`${e}/`));
  return sourceDirs(root).flatMap((d) => filesUnder(root, d)).filter(kept);
}

/** Every file under `dir`, as paths relative to `root`, in a stable order. */
export function filesUnder(root, dir) {
  const entries = readdirSync(join(root, dir), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return entries.flatMap((e) => (e.isDirectory() ? filesUnder(root, join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

/** TypeScript files at the top of the checkout: the compiled folders may import one (sdk/ imports codegen.ts). */
function topLevelSources(root) {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isFile() && /\.[cm]?ts$/.test(e.name))
    .map((e) => e.name)
    .sort();
}

/**
 * A hash of everything the build reads: the compiler configs, package.json (its `type` decides
 * the module format), the top-level TypeScript files and every file in the compiled folders.
 * Contents, not times: a checkout or a copy can give older sources newer times and newer
 * sources older ones.
 */
export function sourceHash(root) {
  const hash = createHash('sha256');
  const files = ['package.json', 'tsconfig.json', BUILD_CONFIG, ...topLevelSources(root), ...buildFiles(root)];
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update('\0');
  return hash.digest('hex');
}

/**
 * Which entry to run: the compiled one when dist/ was built from the sources as they are now
 * (or when there are no sources beside it), else undefined and the sources run through tsx.
 */
export function compiledEntry(root) {
  if (!existsSync(join(root, COMPILED_ENTRY)) || !existsSync(join(root, STAMP))) return undefined;
  if (!existsSync(join(root, SOURCE_ENTRY))) return join(root, COMPILED_ENTRY);
  try {
    const { sources } = JSON.parse(readFileSync(join(root, STAMP), 'utf8'));
    return sources === sourceHash(root) ? join(root, COMPILED_ENTRY) : undefined;
  } catch {
    return undefined;
  }
}
