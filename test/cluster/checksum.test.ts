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

  it('changes when one ref moves', () => {
    expect(refsChecksum([{ name: 'refs/heads/main', oid: A }])).not.toBe(refsChecksum([{ name: 'refs/heads/main', oid: B }]));
  });
});
