/**
 * Where things are, from tools/ (vitest runs the sources) and from
 * dist-tools/tools/ (`npm run bench`, `npm run chaos`) alike: the repository
 * is the nearest directory above with githa's package.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'githa') return dir;
    if (dirname(dir) === dir) throw new Error(`no githa package.json above ${from}`);
  }
}

export const REPO_ROOT = findRoot(import.meta.dirname);
/** The product's CLI as `npm run build` made it: what an operator runs (`githa serve`). */
export const GITHA_MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');
/** The tools as `npm run build:tools` made them (tsconfig.tools.json). */
export const TOOLS_DIST = join(REPO_ROOT, 'dist-tools', 'tools');
