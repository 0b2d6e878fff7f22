/**
 * Chains of small commits made ahead of the timed pushes (one `git
 * fast-import` for all of them), so a push figure times the push only.
 * Each commit changes one small file: a new blob, a new tree, a new commit.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/demo/process.js';

export interface Chains {
  /** The common root commit every chain starts from. */
  root: string;
  /** branch → its commits in order (each the child of the one before; the first is a child of root). */
  chains: Map<string, string[]>;
}

/** Creates `dir` (bare) with a root commit and, per branch, `count` commits on top of it. */
export async function makeChains(dir: string, branches: ReadonlyArray<{ name: string; count: number }>): Promise<Chains> {
  await run('git', ['init', '-q', '--bare', '--initial-branch=main', dir]);
  const marks = join(dir, 'bench-marks');
  let stream = '';
  const data = (s: string): string => `data ${Buffer.byteLength(s)}\n${s}\n`;
  const sig = (i: number): string => `Bench <bench@githa.invalid> ${1_700_000_000 + i} +0000`;
  let mark = 1;
  stream += `commit refs/heads/main\nmark :${mark}\ncommitter ${sig(0)}\n${data('root\n')}M 100644 inline README\n${data('bench\n')}`;
  const layout = new Map<string, number[]>();
  for (const b of branches) {
    const ids: number[] = [];
    let parent = 1;
    for (let i = 0; i < b.count; i++) {
      const m = ++mark;
      stream += `commit refs/heads/${b.name}\nmark :${m}\ncommitter ${sig(m)}\n${data(`${b.name} ${i}\n`)}from :${parent}\n`;
      stream += `M 100644 inline ${b.name}.txt\n${data(`${b.name} change ${i} ${'x'.repeat(64)}\n`)}`;
      ids.push(m);
      parent = m;
    }
    layout.set(b.name, ids);
  }
  stream += 'done\n';
  await new Promise<void>((resolve, reject) => {
    const child = spawn('git', ['--git-dir', dir, 'fast-import', '--quiet', '--done', `--export-marks=${marks}`], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`git fast-import failed (${code}): ${err}`))));
    child.stdin.end(stream);
  });
  const byMark = new Map<number, string>();
  for (const line of readFileSync(marks, 'utf8').split('\n')) {
    const m = /^:(\d+) ([0-9a-f]{40,64})$/.exec(line);
    if (m) byMark.set(Number(m[1]), m[2]!);
  }
  const sha = (m: number): string => {
    const s = byMark.get(m);
    if (!s) throw new Error(`fast-import exported no mark :${m}`);
    return s;
  };
  return { root: sha(1), chains: new Map([...layout].map(([name, ids]) => [name, ids.map(sha)])) };
}
