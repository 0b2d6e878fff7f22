/**
 * src/protocol/pack-commits.ts against packs real git writes: every commit
 * with its parents and subject, whether git stored it whole or as a delta
 * against another commit (OBJ_REF_DELTA by default, OBJ_OFS_DELTA with
 * --delta-base-offset, as upload-pack sends with ofs-delta).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packCommits } from '../../src/protocol/pack-commits.js';

let dir: string;
const git = (args: string[], input?: string | Buffer): Buffer =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: dir, input, maxBuffer: 64 * 1024 * 1024 });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pack-commits-'));
  git(['init', '-q', '-b', 'master']);
  // Long, nearly equal messages: git stores most of these commits as deltas.
  const body = Array.from({ length: 400 }, (_, i) => String(i)).join(' ');
  for (let i = 1; i <= 6; i++) {
    writeFileSync(join(dir, 'f.txt'), `${'line\n'.repeat(200)}${i}\n`);
    git(['add', 'f.txt']);
    git(['commit', '-q', '-m', `subject ${i}`, '-m', body]);
  }
  git(['checkout', '-q', '-b', 'side', 'HEAD~3']);
  writeFileSync(join(dir, 'g.txt'), 'side\n');
  git(['add', 'g.txt']);
  git(['commit', '-q', '-m', 'on the side']);
  git(['checkout', '-q', 'master']);
  git(['merge', '-q', '--no-ff', '-m', 'merge side', 'side']);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expected(): Map<string, { parents: string[]; subject: string }> {
  const out = new Map<string, { parents: string[]; subject: string }>();
  for (const line of git(['log', '--all', '--format=%H%x00%P%x00%s']).toString().trim().split('\n')) {
    const [oid, parents, subject] = line.split('\0');
    out.set(oid!, { parents: parents ? parents.split(' ') : [], subject: subject! });
  }
  return out;
}

describe('packCommits', () => {
  for (const [name, extra] of [['REF_DELTA', []], ['OFS_DELTA', ['--delta-base-offset']]] as const) {
    it(`reads every commit of a pack with ${name} deltas`, () => {
      const tips = git(['rev-parse', 'master', 'side']).toString();
      const pack = git(['pack-objects', '--stdout', '--revs', '--window=50', '--depth=50', ...extra], tips);
      // The pack does hold deltified commits (verify-pack's 6th column is the delta depth).
      writeFileSync(join(dir, 'p.pack'), pack);
      git(['index-pack', '-o', join(dir, 'p.idx'), join(dir, 'p.pack')]);
      const deltaCommits = git(['verify-pack', '-v', join(dir, 'p.idx')]).toString().split('\n').filter((l) => / commit /.test(l) && l.trim().split(/\s+/).length > 5);
      expect(deltaCommits.length).toBeGreaterThan(0);

      const got = packCommits(pack);
      const want = expected();
      expect(new Set(got.keys())).toEqual(new Set(want.keys()));
      for (const [oid, c] of got) expect({ parents: c.parents, subject: c.subject }).toEqual(want.get(oid));
    });
  }

  it('refuses what is not a pack', () => {
    expect(() => packCommits(Buffer.from('not a pack at all'))).toThrow(/not a packfile/);
  });
});
