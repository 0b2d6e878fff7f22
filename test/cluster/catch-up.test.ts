import { describe, expect, it } from 'vitest';
import { catchUp, planCommands } from '../../src/cluster/catch-up.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { memoryCluster } from '../support/memory-cluster.js';
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

describe('catchUp into a copy off its record (docs/architecture.md "Verified copies")', () => {
  const R = 'team/app.git';
  const D = 'd'.repeat(40);
  const at = (refs: Record<string, string>): string => refsChecksum(Object.entries(refs).map(([name, oid]) => ({ name, oid })));

  function setup() {
    const m = memoryCluster(['b1', 'b2']);
    const v3 = { 'refs/heads/main': A };
    const v4 = { 'refs/heads/main': B };
    m.backends.get('b1')!.set(R, v4);
    m.backends.get('b2')!.set(R, v3);
    m.store.seed(R, { b1: [4, at(v4)], b2: [3, at(v3)] });
    const repairs: string[] = [];
    const ctx = { ...m.ctx, repairs: { schedule: (_r: string, b: string) => void repairs.push(b) } };
    const req = { repo: R, source: m.ctx.backends.client('b1'), target: m.ctx.backends.client('b2'), version: 4, checksum: at(v4) };
    return { m, ctx, req, repairs };
  }

  it('overwrites nothing on a stale copy that gained a commit behind githa\'s back: drifted and repaired instead', async () => {
    const { m, ctx, req, repairs } = setup();
    m.backends.get('b2')!.refs.get(R)!.set('refs/heads/main', D); // a divergent commit on the stale copy
    const out = await catchUp(ctx, req);
    expect(out).toEqual({ status: 'not-recorded', reason: 'contradicts' });
    expect(m.backends.get('b2')!.refs.get(R)!.get('refs/heads/main')).toBe(D);
    const state = await m.store.read(R);
    expect(state.versions.get('b2')).toBe(3);
    expect(state.drift.has('b2')).toBe(true);
    expect(repairs).toEqual(['b2']);
  });

  it('catches up a stale copy that holds its record', async () => {
    const { m, ctx, req, repairs } = setup();
    expect((await catchUp(ctx, req)).status).toBe('ok');
    expect(m.backends.get('b2')!.refs.get(R)!.get('refs/heads/main')).toBe(B);
    expect(repairs).toEqual([]);
  });
});
