import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { Plugin } from 'esbuild';
import { ASSET_PREFIX, CONSOLE_DIST, CONSOLE_ROOT, contentTypeOf } from './paths.js';

/**
 * Builds the operations console (console/src, Preact + TypeScript) into console/dist: one
 * hashed script, one hashed stylesheet, an icon and index.html, each with .gz and .br copies
 * for the gateway to serve. `npm install` runs it (the `prepare` script); `wxphone serve`
 * runs it when dist is missing or older than the sources.
 */
const SOURCES = join(CONSOLE_ROOT, 'src');

export interface ConsoleAsset {
  type: string;
  bytes: number;
  gzipBytes: number;
}

export interface ConsoleManifest {
  /** What the build was made from: a different hash means the sources changed since. */
  sourceHash: string;
  builtAt: string;
  /** Asset file name (under assets/) → its type and sizes. */
  assets: Record<string, ConsoleAsset>;
  /** The entry script and stylesheet gzipped: what a first visit downloads besides the HTML. */
  gzipBytes: number;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

/** A fingerprint of everything the bundle is made of: the sources, this script, the paths and the two packages. */
export function sourceHash(): string {
  const require = createRequire(import.meta.url);
  const h = createHash('sha256');
  for (const file of [...filesUnder(SOURCES), fileURLToPath(import.meta.url), join(CONSOLE_ROOT, 'paths.ts')]) {
    h.update(relative(CONSOLE_ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
  }
  for (const pkg of ['preact/package.json', 'esbuild/package.json']) h.update((JSON.parse(readFileSync(require.resolve(pkg), 'utf8')) as { version: string }).version);
  return h.digest('hex');
}

export function readManifest(dist = CONSOLE_DIST): ConsoleManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8')) as ConsoleManifest;
  } catch {
    return undefined;
  }
}

/**
 * The typed documents codegen writes are indented GraphQL in template strings; the gateway reads
 * a document whatever its spacing (and normalises it to match trusted documents), so the bundle
 * carries them on one line.
 */
const compactDocuments: Plugin = {
  name: 'compact-graphql-documents',
  setup(b) {
    b.onLoad({ filter: /graphql[\\/]generated\.ts$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replace(/`([^`]*)`/g, (_, body: string) => `\`${body.replace(/\s+/g, ' ').trim()}\``),
      loader: 'ts',
    }));
  },
};

const shortHash = (data: Buffer | string) => createHash('sha256').update(data).digest('base64url').slice(0, 10);

export async function buildConsole(dist = CONSOLE_DIST): Promise<ConsoleManifest> {
  const { build } = await import('esbuild');
  const hash = sourceHash();
  // Built beside the old one and swapped in whole, so a gateway serving it never reads a half-written dist.
  const staging = `${dist}.staging-${process.pid}-${Date.now()}`;
  const assetsDir = join(staging, 'assets');
  mkdirSync(assetsDir, { recursive: true });
  try {
    const result = await build({
      entryPoints: { app: join(SOURCES, 'main.tsx') },
      outdir: assetsDir,
      entryNames: '[name]-[hash]',
      assetNames: '[name]-[hash]',
      bundle: true,
      minify: true,
      format: 'esm',
      target: 'es2020',
      jsx: 'automatic',
      jsxImportSource: 'preact',
      charset: 'utf8',
      legalComments: 'none',
      metafile: true,
      logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
      // The English catalogue is a chunk of its own, loaded when an operator switches to it.
      splitting: true,
      chunkNames: '[name]-[hash]',
      plugins: [compactDocuments],
    });
    const outputs = Object.keys(result.metafile.outputs).map((p) => p.split('/').pop()!);
    const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint)?.[0].split('/').pop();
    const js = outputs.find((f) => f === entry);
    const css = outputs.find((f) => f.endsWith('.css'));
    if (!js || !css) throw new Error(`the console build wrote no script or stylesheet (${outputs.join(', ')})`);
    const icon = readFileSync(join(SOURCES, 'favicon.svg'));
    const iconName = `favicon-${shortHash(icon)}.svg`;
    writeFileSync(join(assetsDir, iconName), icon);

    const html = readFileSync(join(SOURCES, 'index.html'), 'utf8')
      .replace('%JS%', ASSET_PREFIX + js)
      .replace('%CSS%', ASSET_PREFIX + css)
      .replace('%ICON%', ASSET_PREFIX + iconName);
    writeFileSync(join(staging, 'index.html'), html);

    const assets: Record<string, ConsoleAsset> = {};
    for (const name of [...outputs, iconName]) {
      const body = readFileSync(join(assetsDir, name));
      const gz = gzipSync(body, { level: 9 });
      writeFileSync(join(assetsDir, `${name}.gz`), gz);
      writeFileSync(join(assetsDir, `${name}.br`), brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
      assets[name] = { type: contentTypeOf(name), bytes: body.length, gzipBytes: gz.length };
    }
    const manifest: ConsoleManifest = {
      sourceHash: hash,
      builtAt: new Date().toISOString(),
      assets,
      gzipBytes: assets[js]!.gzipBytes + assets[css]!.gzipBytes,
    };
    writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);

    const old = `${dist}.old-${process.pid}-${Date.now()}`;
    if (existsSync(dist)) renameSync(dist, old);
    try {
      renameSync(staging, dist);
    } catch (e) {
      // Another process (a second test file, a second gateway) swapped in its build of the same sources first.
      const theirs = readManifest(dist);
      if (theirs?.sourceHash !== hash) throw e;
      rmSync(staging, { recursive: true, force: true });
    }
    rmSync(old, { recursive: true, force: true });
    return readManifest(dist) ?? manifest;
  } catch (e) {
    rmSync(staging, { recursive: true, force: true });
    throw e;
  }
}

/** Builds the console unless dist holds a build of the current sources. */
export async function ensureConsoleBuilt(dist = CONSOLE_DIST): Promise<{ built: boolean; manifest: ConsoleManifest }> {
  const current = readManifest(dist);
  if (current && current.sourceHash === sourceHash() && existsSync(join(dist, 'index.html'))) return { built: false, manifest: current };
  return { built: true, manifest: await buildConsole(dist) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now();
  const manifest = await buildConsole();
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;
  const lines = Object.entries(manifest.assets).map(([name, a]) => `  ${name}  ${kb(a.bytes)} (${kb(a.gzipBytes)} gzip)`);
  console.log(`console built into ${relative(process.cwd(), CONSOLE_DIST) || CONSOLE_DIST} in ${Date.now() - started} ms:\n${lines.join('\n')}\n  script + stylesheet: ${kb(manifest.gzipBytes)} gzip`);
}
