import { describe, expect, it } from 'vitest';
import { planCommands } from '../../src/cluster/catch-up.js';
import { ZERO_OID } from '../../src/protocol/receive-pack-request.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

describe('planCommands', () => {
  it('creates, updates with the advertised old id, and deletes', () => {
    const want = [
      { name: 'HEAD', oid: A },
      { name: 'refs/heads/main', oid: A },
      { name: 'refs/heads/new', oid: B },
      { name: 'refs/tags/v1', oid: C },
    ];
    const have = [
      { name: 'refs/heads/main', oid: B },
      { name: 'refs/heads/gone', oid: C },
      { name: 'refs/tags/v1', oid: C },
    ];
    expect(planCommands(want, have)).toEqual([
      { oldOid: B, newOid: A, ref: 'refs/heads/main' },
      { oldOid: ZERO_OID, newOid: B, ref: 'refs/heads/new' },
      { oldOid: C, newOid: ZERO_OID, ref: 'refs/heads/gone' },
    ]);
  });

  it('has nothing to do for equal copies', () => {
    const refs = [{ name: 'refs/heads/main', oid: A }];
    expect(planCommands(refs, refs)).toEqual([]);
  });

  it('treats ".have" lines (an alternate object store) as no ref at all', () => {
    expect(planCommands([{ name: 'refs/heads/main', oid: A }], [{ name: '.have', oid: B }])).toEqual([
      { oldOid: ZERO_OID, newOid: A, ref: 'refs/heads/main' },
    ]);
  });

  it('never touches HEAD on the target', () => {
    expect(planCommands([], [{ name: 'HEAD', oid: A }])).toEqual([]);
  });
});
