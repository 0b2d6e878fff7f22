/**
 * src/protocol/pack-commits.ts against packs real git writes: every commit
 * with its parents and subject, whether git stored it whole or as a delta
 * against another commit (OBJ_REF_DELTA by default, OBJ_OFS_DELTA with
 * --delta-base-offset, as upload-pack sends with ofs-delta).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
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

/** A pack of hand-made entries (gitformat-pack(5)): a backend's bytes need not be what git would write. */
function pack(...entries: Buffer[]): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(entries.length, 8);
  return Buffer.concat([head, ...entries, Buffer.alloc(20)]);
}

/** An entry's type-and-size header (gitformat-pack(5) "Size encoding"). */
function header(type: number, size: number): Buffer {
  const out = [((size > 15 ? 0x80 : 0) | (type << 4) | (size & 0x0f))];
  for (let rest = Math.floor(size / 16); rest > 0; rest = Math.floor(rest / 128)) out.push((rest > 127 ? 0x80 : 0) | (rest & 0x7f));
  return Buffer.from(out);
}

const varint = (n: number): Buffer => {
  const out: number[] = [];
  do {
    out.push((n > 127 ? 0x80 : 0) | (n & 0x7f));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(out);
};

const entry = (type: number, data: Buffer, declared = data.length): Buffer => Buffer.concat([header(type, declared), deflateSync(data)]);

describe('packCommits on hostile packs (a backend\'s bytes, read by the promote prompt)', () => {
  const MiB = 1024 * 1024;

  it('refuses a pack whose objects inflate to more than maxInflatedBytes (a zlib bomb)', () => {
    const bomb = pack(entry(3, Buffer.alloc(8 * MiB)));
    expect(bomb.length).toBeLessThan(64 * 1024);
    expect(() => packCommits(bomb, 'sha1', { maxInflatedBytes: MiB })).toThrow(/inflate/);
  });

  it('refuses an object that inflates to more than its header says', () => {
    const liar = pack(entry(3, Buffer.alloc(4 * MiB), 10));
    expect(() => packCommits(liar, 'sha1', { maxInflatedBytes: MiB })).toThrow(/declared|inflate/);
  });

  it('refuses a delta whose result is larger than maxInflatedBytes, before building it', () => {
    const commit = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor a <a> 0 +0000\ncommitter a <a> 0 +0000\n\nbase\n');
    const baseOid = createHash('sha1').update(`commit ${commit.length}\0`).update(commit).digest();
    // Claims a 64 MiB result made of one 1-byte insert.
    const delta = Buffer.concat([varint(commit.length), varint(64 * MiB), Buffer.from([1, 0x41])]);
    const hostile = pack(entry(1, commit), Buffer.concat([header(7, delta.length), baseOid, deflateSync(delta)]));
    expect(() => packCommits(hostile, 'sha1', { maxInflatedBytes: MiB })).toThrow(/inflate|delta/);
  });

  it('refuses a delta that copies from outside its base', () => {
    const commit = Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nbase\n');
    const baseOid = createHash('sha1').update(`commit ${commit.length}\0`).update(commit).digest();
    // Copy 16 bytes from offset 0x7000 of a 50-byte base.
    const delta = Buffer.concat([varint(commit.length), varint(16), Buffer.from([0x80 | 0x02 | 0x10, 0x70, 16])]);
    const hostile = pack(entry(1, commit), Buffer.concat([header(7, delta.length), baseOid, deflateSync(delta)]));
    expect(() => packCommits(hostile)).toThrow(/delta/);
  });

  it('refuses a truncated pack', () => {
    const whole = pack(entry(3, Buffer.from('hello')), entry(3, Buffer.from('world')));
    expect(() => packCommits(whole.subarray(0, 14))).toThrow();
  });
});
