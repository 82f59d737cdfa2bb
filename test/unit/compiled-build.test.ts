import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COMPILED_ENTRY, STAMP, compiledEntry, sourceHash } from '../../bin/compiled.mjs';

const roots: string[] = [];

/** A checkout in miniature: two compiled folders, one with a non-TypeScript file, and a build of them. */
function checkout(): string {
  const root = mkdtempSync(join(tmpdir(), 'wxphone-compiled-'));
  roots.push(root);
  const files: Record<string, string> = {
    'package.json': '{"type":"module"}',
    'tsconfig.json': '{}',
    'tsconfig.build.json': JSON.stringify({ extends: './tsconfig.json', include: ['app', 'src', 'sdk'] }),
    'app/cli.ts': 'export {};',
    'src/phone/service.ts': 'export const a = 1;',
    'sdk/persisted-documents.json': '{}',
    'test/unit/x.test.ts': 'export {};',
    [COMPILED_ENTRY]: 'export {};',
  };
  for (const [path, text] of Object.entries(files)) write(root, path, text);
  write(root, STAMP, JSON.stringify({ sources: sourceHash(root) }));
  return root;
}

function write(root: string, path: string, text: string) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

describe('which entry bin/wxphone.mjs runs', () => {
  let root: string;
  beforeEach(() => {
    root = checkout();
  });
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  it('runs dist/ when it was built from the sources as they are', () => {
    expect(compiledEntry(root)).toBe(join(root, COMPILED_ENTRY));
  });

  it('runs the sources once any file of a compiled folder is edited, added or removed', () => {
    write(root, 'src/phone/service.ts', 'export const a = 2;');
    expect(compiledEntry(root)).toBeUndefined();

    root = checkout();
    write(root, 'src/phone/steps/claim.ts', 'export {};');
    expect(compiledEntry(root)).toBeUndefined();

    root = checkout();
    rmSync(join(root, 'src/phone/service.ts'));
    expect(compiledEntry(root)).toBeUndefined();

    root = checkout();
    write(root, 'sdk/persisted-documents.json', '{"abc":"query { a }"}');
    expect(compiledEntry(root)).toBeUndefined();
  });

  it('runs the sources when a top-level TypeScript file the folders may import changes', () => {
    write(root, 'codegen.ts', 'export default {};');
    expect(compiledEntry(root)).toBeUndefined();
  });

  it('runs the sources when the compiler settings change, a folder joins the build among them', () => {
    write(root, 'tsconfig.build.json', JSON.stringify({ extends: './tsconfig.json', include: ['src', 'sdk', 'test'] }));
    expect(compiledEntry(root)).toBeUndefined();
  });

  it('ignores files outside the compiled folders and file times', () => {
    write(root, 'test/unit/x.test.ts', 'export const changed = true;');
    utimesSync(join(root, 'app/cli.ts'), new Date(), new Date(Date.now() + 3600_000));
    expect(compiledEntry(root)).toBe(join(root, COMPILED_ENTRY));
  });

  it('runs the sources when there is no stamp or no compiled entry (a build cut short, or none)', () => {
    rmSync(join(root, STAMP));
    expect(compiledEntry(root)).toBeUndefined();

    root = checkout();
    rmSync(join(root, COMPILED_ENTRY));
    expect(compiledEntry(root)).toBeUndefined();
  });
});
