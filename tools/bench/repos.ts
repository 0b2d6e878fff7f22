/**
 * The benchmark's repositories, generated with `git fast-import` from a seeded
 * generator (the same bytes on every machine) and cached as bare
 * repositories under bench/.cache/, so a re-run does not regenerate them:
 *
 * - big-<S>mb: a history of many commits over a tree of source-like text files
 *   (edited a few lines at a time: deltas, like real code) plus binary blobs of
 *   seeded pseudo-random bytes that do not compress (assets). About half of
 *   the packed size is each; S is the packed size aimed at.
 * - refs-5000: a short history and 5,000 tags (half annotated, so ls-refs
 *   carries peeled lines), refs packed as a server would have them.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../src/demo/process.js';

/** Bumped whenever the generator changes, so a stale cache is not reused. */
const GENERATOR_VERSION = 1;

/** mulberry32: a tiny seeded PRNG (uniform 32-bit outputs); enough for synthetic data. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** `n` incompressible bytes from the generator. */
function noise(next: () => number, n: number): Buffer {
  const buf = Buffer.allocUnsafe(n + 3);
  for (let i = 0; i < n; i += 4) buf.writeUInt32LE(next(), i);
  return buf.subarray(0, n);
}

const SYLLABLES = ['ka', 're', 'mon', 'di', 'sto', 'lu', 'pra', 'ven', 'tor', 'ix', 'al', 'be', 'cor', 'gen', 'har', 'ob', 'set', 'val', 'que', 'nd'];

function textLine(next: () => number, words: readonly string[]): string {
  const w = (): string => words[next() % words.length]!;
  switch (next() % 5) {
    case 0:
      return `  const ${w()} = ${w()}(${w()}, ${next() % 1000});`;
    case 1:
      return `  if (${w()}.${w()} > ${next() % 100}) return ${w()}(${w()});`;
    case 2:
      return `  // ${w()} ${w()} ${w()} ${w()} the ${w()} of ${w()} ${w()}`;
    case 3:
      return `export function ${w()}${w()}(${w()}: ${w()}): ${w()} {`;
    default:
      return `  ${w()}.${w()}(${w()}, '${w()}-${next() % 10000}');`;
  }
}

/** A writer to `git fast-import`'s stdin that respects back-pressure. */
class Stream {
  private pending: Buffer[] = [];
  private size = 0;
  constructor(private readonly child: ReturnType<typeof spawn>) {}
  async write(data: string | Buffer): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    this.pending.push(b);
    this.size += b.length;
    if (this.size >= 1 << 20) await this.flush();
  }
  async data(content: string | Buffer): Promise<void> {
    const b = typeof content === 'string' ? Buffer.from(content) : content;
    await this.write(`data ${b.length}\n`);
    await this.write(b);
    await this.write('\n');
  }
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk = Buffer.concat(this.pending);
    this.pending = [];
    this.size = 0;
    if (!this.child.stdin!.write(chunk)) await new Promise<void>((r) => this.child.stdin!.once('drain', () => r()));
  }
}

/** Runs `git fast-import` into a new bare repository and feeds it what `produce` writes. */
async function fastImport(dir: string, produce: (s: Stream) => Promise<void>): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  await run('git', ['init', '-q', '--bare', '--initial-branch=main', dir]);
  const child = spawn('git', ['--git-dir', dir, 'fast-import', '--quiet', '--done'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const s = new Stream(child);
  await produce(s);
  await s.write('done\n');
  await s.flush();
  child.stdin!.end();
  const code = await exited;
  if (code !== 0) throw new Error(`git fast-import failed (${code}): ${err.slice(-2000)}`);
  // A server's repository: one pack (with a bitmap, the default for bare repositories) and packed refs.
  await run('git', ['--git-dir', dir, 'repack', '-a', '-d', '-q'], { timeoutMs: 30 * 60_000 });
  await run('git', ['--git-dir', dir, 'pack-refs', '--all']);
}

function signature(i: number): string {
  return `Bench Author <bench@githa.invalid> ${1_600_000_000 + i * 600} +0000`;
}

/** Packed size of a bare repository's objects, bytes. */
export function packedBytes(dir: string): number {
  const packDir = join(dir, 'objects', 'pack');
  if (!existsSync(packDir)) return 0;
  return readdirSync(packDir)
    .filter((f) => f.endsWith('.pack'))
    .reduce((sum, f) => sum + statSync(join(packDir, f)).size, 0);
}

async function generateBig(dir: string, targetMb: number): Promise<void> {
  const next = prng(0x6174 + targetMb);
  const words = Array.from({ length: 600 }, () => Array.from({ length: 1 + (next() % 3) }, () => SYLLABLES[next() % SYLLABLES.length]).join(''));
  const target = targetMb * 1024 * 1024;
  // Half the packed size is incompressible assets; the text half packs about 2:1 (measured: zlib of this
  // vocabulary, plus the deltas of the edits) and is mostly new files.
  const noiseBudget = target / 2;
  const textBudget = (target / 2) * 2;
  const commits = Math.max(100, Math.round(targetMb * 8));
  const files: string[][] = [];
  const paths: string[] = [];
  let noiseSpent = 0;
  let textSpent = 0;
  await fastImport(dir, async (s) => {
    for (let c = 1; c <= commits; c++) {
      const changes: string[] = [];
      const bodies: Array<string | Buffer> = [];
      // Edit a few existing files: replace and insert lines.
      for (let e = 0; e < 3 && files.length > 0; e++) {
        const f = next() % files.length;
        const lines = files[f]!;
        for (let k = 0; k < 1 + (next() % 4); k++) lines[next() % lines.length] = textLine(next, words);
        lines.splice(next() % lines.length, 0, ...Array.from({ length: next() % 6 }, () => textLine(next, words)));
        changes.push(paths[f]!);
        bodies.push(`${lines.join('\n')}\n`);
      }
      // New source files until the text budget is spent, spread over the history.
      const textGoal = (textBudget * c) / commits;
      while (textSpent < textGoal) {
        const lines = Array.from({ length: 80 + (next() % 400) }, () => textLine(next, words));
        const path = `src/${words[next() % 40]}/${words[next() % words.length]}${files.length}.ts`;
        files.push(lines);
        paths.push(path);
        const body = `${lines.join('\n')}\n`;
        textSpent += body.length;
        changes.push(path);
        bodies.push(body);
      }
      // Assets: incompressible blobs, 16 KiB – 1 MiB.
      const noiseGoal = (noiseBudget * c) / commits;
      while (noiseSpent < noiseGoal) {
        const size = 16_384 + (next() % (1 << 20));
        changes.push(`assets/${words[next() % 20]}/blob${c}-${noiseSpent}.bin`);
        bodies.push(noise(next, size));
        noiseSpent += size;
      }
      await s.write(`commit refs/heads/main\nmark :${c}\nauthor ${signature(c)}\ncommitter ${signature(c)}\n`);
      await s.data(`change ${c}: ${words[next() % words.length]} ${words[next() % words.length]}\n`);
      if (c > 1) await s.write(`from :${c - 1}\n`);
      for (let i = 0; i < changes.length; i++) {
        await s.write(`M 100644 inline ${changes[i]}\n`);
        await s.data(bodies[i]!);
      }
      if (c % 50 === 0) await s.write(`reset refs/tags/release-${c / 50}\nfrom :${c}\n\n`);
    }
  });
}

async function generateRefs(dir: string, tags: number): Promise<void> {
  const next = prng(0x7265);
  const commits = 300;
  await fastImport(dir, async (s) => {
    for (let c = 1; c <= commits; c++) {
      await s.write(`commit refs/heads/main\nmark :${c}\nauthor ${signature(c)}\ncommitter ${signature(c)}\n`);
      await s.data(`commit ${c}\n`);
      if (c > 1) await s.write(`from :${c - 1}\n`);
      await s.write(`M 100644 inline file${c % 20}.txt\n`);
      await s.data(`version ${c} ${next()}\n`);
    }
    for (let t = 1; t <= tags; t++) {
      const target = 1 + (next() % commits);
      if (t % 2) {
        await s.write(`tag v${t}\nfrom :${target}\ntagger ${signature(t)}\n`);
        await s.data(`release v${t}\n`);
      } else {
        await s.write(`reset refs/tags/l${t}\nfrom :${target}\n\n`);
      }
    }
  });
}

export interface CachedRepo {
  /** The bare repository in the cache. */
  path: string;
  /** Its packed size, bytes. */
  bytes: number;
  /** Whether it was generated by this call (false: taken from the cache). */
  generated: boolean;
}

async function cached(cacheDir: string, name: string, generate: (dir: string) => Promise<void>): Promise<CachedRepo> {
  mkdirSync(cacheDir, { recursive: true });
  const path = join(cacheDir, `${name}-v${GENERATOR_VERSION}.git`);
  if (existsSync(join(path, 'packed-refs'))) return { path, bytes: packedBytes(path), generated: false };
  // Generated aside and renamed: an interrupted run never leaves a half repository in the cache.
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await generate(tmp);
    rmSync(path, { recursive: true, force: true });
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { path, bytes: packedBytes(path), generated: true };
}

export function bigRepo(cacheDir: string, targetMb: number): Promise<CachedRepo> {
  return cached(cacheDir, `big-${targetMb}mb`, (dir) => generateBig(dir, targetMb));
}

export function manyRefsRepo(cacheDir: string, tags = 5000): Promise<CachedRepo> {
  return cached(cacheDir, `refs-${tags}`, (dir) => generateRefs(dir, tags));
}

/**
 * Puts a cached repository on a backend as `dest` (a bare repository path):
 * a local mirror clone, which hard-links the pack, so three backends cost no
 * more disk than one, and pushes are allowed over HTTP.
 */
export async function install(source: string, dest: string): Promise<void> {
  rmSync(dest, { recursive: true, force: true });
  await run('git', ['clone', '-q', '--mirror', '--local', source, dest], { timeoutMs: 10 * 60_000 });
  await run('git', ['--git-dir', dest, 'config', 'http.receivepack', 'true']);
  // `git config --unset` exits 5 when the key is absent (a source without a mirror remote): nothing to undo.
  await run('git', ['--git-dir', dest, 'config', '--unset', 'remote.origin.mirror']).catch(() => {});
}
