import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM, refsChecksum } from '../../src/cluster/checksum.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('refsChecksum', () => {
  it('is the SHA-256 of sorted "<oid> <ref>\\n" lines without HEAD', () => {
    const expected = createHash('sha256').update(`${B} refs/heads/a\n${A} refs/heads/main\n`).digest('hex');
    expect(refsChecksum([{ name: 'refs/heads/main', oid: A }, { name: 'HEAD', oid: A }, { name: 'refs/heads/a', oid: B }])).toBe(expected);
  });

  it('of no refs is the hash of nothing', () => {
    expect(EMPTY_CHECKSUM).toBe(createHash('sha256').digest('hex'));
  });

  it('does not depend on the order refs are listed in', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^refs\/[a-z0-9/]{1,12}$/), { maxLength: 12 }), (names) => {
        const refs = names.map((name, i) => ({ name, oid: String(i % 10).repeat(40) }));
        expect(refsChecksum([...refs].reverse())).toBe(refsChecksum(refs));
      }),
      { numRuns: 200 },
    );
  });

  it('sorts by the ref names\' UTF-8 bytes, not by locale or UTF-16 code units', () => {
    // Byte order: "B" 42 < "a" 61 < "z" 7a < "é" c3 a9 < "！" (U+FF01) ef bc 81 < "😀" (U+1F600) f0 9f 98 80.
    // localeCompare puts "a" before "B" and "é" before "z"; a default (UTF-16) sort puts "😀" (d83d de00) before "！" (ff01).
    const names = ['refs/heads/B', 'refs/heads/a', 'refs/heads/z', 'refs/heads/é', 'refs/heads/\uff01', 'refs/heads/\u{1f600}'];
    const refs = names.map((name, i) => ({ name, oid: String(i).repeat(40) }));
    const expected = createHash('sha256')
      .update(refs.map((r) => `${r.oid} ${r.name}\n`).join(''), 'utf8')
      .digest('hex');
    const byLocale = [...refs].sort((x, y) => x.name.localeCompare(y.name));
    const byUtf16 = [...refs].sort((x, y) => (x.name < y.name ? -1 : 1));
    expect(byLocale.map((r) => r.name)).not.toEqual(names);
    expect(byUtf16.map((r) => r.name)).not.toEqual(names);
    for (const listed of [refs, [...refs].reverse(), byLocale, byUtf16]) expect(refsChecksum(listed)).toBe(expected);
  });

  it('changes when one ref moves', () => {
    expect(refsChecksum([{ name: 'refs/heads/main', oid: A }])).not.toBe(refsChecksum([{ name: 'refs/heads/main', oid: B }]));
  });
});

describe('refsChecksum, fast path', () => {
  /** The definition, line by line: sorted by UTF-8 bytes, one update per line. */
  function reference(refs: { name: string; oid: string }[]): string {
    const lines = refs
      .filter((r) => r.name !== 'HEAD')
      .map((r) => ({ key: Buffer.from(r.name, 'utf8'), line: `${r.oid} ${r.name}\n` }))
      .sort((a, b) => Buffer.compare(a.key, b.key));
    const hash = createHash('sha256');
    for (const { line } of lines) hash.update(line, 'utf8');
    return hash.digest('hex');
  }

  it('equals the definition for any names, astral characters included', () => {
    const name = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('HEAD', 'refs/heads/\uff01', 'refs/heads/\u{1f600}', 'refs/heads/\ue000'));
    fc.assert(
      fc.property(fc.uniqueArray(name, { maxLength: 20 }), (names) => {
        const refs = names.map((n, i) => ({ name: n, oid: String(i % 10).repeat(40) }));
        expect(refsChecksum(refs)).toBe(reference(refs));
      }),
      { numRuns: 500 },
    );
  });
});
