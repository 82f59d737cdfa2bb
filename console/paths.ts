import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Where the console's build lives and how its files are named and typed: shared by the build and the route.
 * Compiled, this module runs from dist/console/, while the console's sources and built files stay in console/.
 */
export const CONSOLE_ROOT = basename(dirname(here)) === 'dist' ? join(dirname(dirname(here)), 'console') : here;
export const CONSOLE_DIST = join(CONSOLE_ROOT, 'dist');
export const ASSET_PREFIX = '/console/assets/';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8',
};

export function contentTypeOf(name: string): string {
  return TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream';
}
