import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the console's build lives and how its files are named and typed: shared by the build and the route. */
export const CONSOLE_ROOT = fileURLToPath(new URL('.', import.meta.url));
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
