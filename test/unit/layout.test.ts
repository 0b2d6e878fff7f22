import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/*
 * The shape of the tree (docs/architecture.md "Layout"): no source file over
 * 400 lines, no import cycle, and imports point down the layers.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const SRC = join(ROOT, 'src');

/** Layers, lowest first: a module may import its own layer or lower ones. */
const LAYERS: Array<[number, RegExp]> = [
  [0, /^src\/(protocol\/|config\/|auth\/|types\/|errors\.ts$|log\.ts$|version\.ts$)/],
  [1, /^src\/(state|backends)\//],
  [2, /^src\/cluster\//],
  [3, /^src\/(frontends|admin)\//],
  [4, /^src\/githa\.ts$/],
  [5, /^src\/(cli|demo)\//],
];

function layer(file: string): number {
  const hit = LAYERS.find(([, re]) => re.test(file));
  if (!hit) throw new Error(`${file} belongs to no layer: add it to LAYERS and docs/architecture.md`);
  return hit[0];
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a file (static, dynamic and type-only), as repository paths. */
function imports(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.[^'"]+)['"]/g)) {
    const target = resolve(dirname(path), m[1]!).replace(/\.js$/, '.ts');
    out.push(relative(ROOT, target));
  }
  return out;
}

const all = files(SRC).map((p) => relative(ROOT, p)).sort();
const graph = new Map(all.map((f) => [f, imports(join(ROOT, f)).filter((t) => t.startsWith('src/'))]));

describe('source layout', () => {
  it('keeps every source file under 400 lines', () => {
    const long = all.filter((f) => readFileSync(join(ROOT, f), 'utf8').split('\n').length > 400);
    expect(long).toEqual([]);
  });

  it('imports only its own layer or lower ones', () => {
    const upward = [...graph].flatMap(([from, tos]) => tos.filter((to) => layer(to) > layer(from)).map((to) => `${from} -> ${to}`));
    expect(upward).toEqual([]);
  });

  it('has no import cycle', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const to of graph.get(f) ?? []) visit(to, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of all) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('finds the imports it checks (the parser sees real edges)', () => {
    expect(graph.get('src/cluster/cluster.ts')).toContain('src/cluster/write-session.ts');
    expect(graph.get('src/githa.ts')).toContain('src/state/state.ts');
  });
});
