import { describe, expect, it } from 'vitest';
import { leadership, planRead, planWrite, rotate, type BackendView } from '../../src/cluster/routing.js';

const b = (id: string, extra: Partial<BackendView> = {}): BackendView => ({ id, enabled: true, writable: true, healthy: true, ...extra });
const v = (o: Record<string, number>): Map<string, number> => new Map(Object.entries(o));

describe('leadership', () => {
  it('names the backends at the highest version', () => {
    expect(leadership(v({ b1: 3, b2: 2, b3: 3 }))).toEqual({ max: 3, leaders: ['b1', 'b3'] });
  });
  it('has no leader when nothing is recorded', () => {
    expect(leadership(new Map())).toEqual({ max: 0, leaders: [] });
  });
});

describe('rotate', () => {
  it('spreads successive turns over the items', () => {
    expect([0, 1, 2, 3].map((t) => rotate(['a', 'b', 'c'], t)[0])).toEqual(['a', 'b', 'c', 'a']);
    expect(rotate(['a', 'b'], -1)).toEqual(['b', 'a']);
    expect(rotate([], 5)).toEqual([]);
  });
});

describe('planRead', () => {
  const backends = [b('b1', { zone: 'west' }), b('b2', { zone: 'east' }), b('b3', { zone: 'east' })];

  it('serves only leaders, round robin, without zones', () => {
    const plans = [0, 1].map((t) => planRead(v({ b1: 2, b2: 2, b3: 1 }), backends, undefined, t));
    expect(plans[0]).toEqual({ kind: 'serve', candidates: ['b1', 'b2'] });
    expect(plans[1]).toEqual({ kind: 'serve', candidates: ['b2', 'b1'] });
  });

  it('prefers a leader of its own zone', () => {
    expect(planRead(v({ b1: 2, b2: 2, b3: 1 }), backends, 'east', 0)).toEqual({ kind: 'serve', candidates: ['b2', 'b1'] });
  });

  it('catches up a stale backend of its zone when no leader is in the zone', () => {
    expect(planRead(v({ b1: 3, b2: 2, b3: 2 }), backends, 'east', 0)).toEqual({
      kind: 'catch-up',
      target: 'b2',
      source: 'b1',
      fallback: ['b1'],
    });
  });

  it('puts leaders marked down last instead of dropping them', () => {
    const down = [b('b1', { healthy: false }), b('b2'), b('b3')];
    expect(planRead(v({ b1: 2, b2: 2, b3: 2 }), down, undefined, 0)).toEqual({ kind: 'serve', candidates: ['b2', 'b3', 'b1'] });
  });

  it('never serves from a stale or disabled backend', () => {
    const plan = planRead(v({ b1: 2, b2: 1, b3: 2 }), [b('b1', { enabled: false }), b('b2'), b('b3')], undefined, 0);
    expect(plan).toEqual({ kind: 'serve', candidates: ['b3'] });
  });

  it('reports no leader when every leader is disabled', () => {
    expect(planRead(v({ b1: 2, b2: 1 }), [b('b1', { enabled: false }), b('b2')], undefined, 0)).toEqual({ kind: 'no-leader', leaders: ['b1'] });
  });

  it('falls back to any leader when no backend of its zone is healthy', () => {
    const bs = [b('b1'), b('b2', { zone: 'east', healthy: false })];
    expect(planRead(v({ b1: 2, b2: 1 }), bs, 'east', 0)).toEqual({ kind: 'serve', candidates: ['b1'] });
  });
});

describe('planWrite', () => {
  it('writes to a healthy writable leader', () => {
    expect(planWrite(v({ b1: 2, b2: 2, b3: 1 }), [b('b1'), b('b2'), b('b3')], undefined, 1)).toEqual({ kind: 'write', candidates: ['b2', 'b1'] });
  });

  it('skips leaders that prevent writes', () => {
    expect(planWrite(v({ b1: 2, b2: 2 }), [b('b1', { writable: false }), b('b2')], undefined, 0)).toEqual({ kind: 'write', candidates: ['b2'] });
  });

  it('catches a writable backend up when every leader prevents writes', () => {
    expect(planWrite(v({ b1: 2, b2: 1 }), [b('b1', { writable: false }), b('b2')], undefined, 0)).toEqual({ kind: 'catch-up', target: 'b2', source: 'b1' });
  });

  it('tries a leader marked down last', () => {
    expect(planWrite(v({ b1: 2, b2: 2 }), [b('b1', { healthy: false }), b('b2')], undefined, 0)).toEqual({ kind: 'write', candidates: ['b2', 'b1'] });
  });

  it('reports no leader when none is enabled', () => {
    expect(planWrite(v({ b1: 2, b2: 1 }), [b('b1', { enabled: false }), b('b2')], undefined, 0)).toEqual({ kind: 'no-leader', leaders: ['b1'] });
  });
});

describe('routing flags: drift, suspects and interrupted writes', () => {
  const backends = [b('b1'), b('b2'), b('b3')];

  it('a drifted copy is no leader, even at the highest version', () => {
    expect(leadership(v({ b1: 4, b2: 4, b3: 3 }), new Set(['b1']))).toEqual({ max: 4, leaders: ['b2'] });
    expect(planRead(v({ b1: 4, b2: 4, b3: 3 }), backends, undefined, 0, { notLeaders: new Set(['b1']) })).toEqual({ kind: 'serve', candidates: ['b2'] });
  });

  it('with every copy at the highest version drifted there is no leader, for reads and writes', () => {
    const flags = { notLeaders: new Set(['b1']) };
    expect(planRead(v({ b1: 4, b2: 3 }), backends, undefined, 0, flags)).toEqual({ kind: 'no-leader', leaders: [] });
    expect(planWrite(v({ b1: 4, b2: 3 }), backends, undefined, 0, flags)).toEqual({ kind: 'no-leader', leaders: [] });
  });

  it('avoided (suspect) leaders serve reads last and take writes only when no other leader can', () => {
    const flags = { avoid: new Set(['b1']) };
    for (const turn of [0, 1, 2]) {
      const read = planRead(v({ b1: 2, b2: 2, b3: 2 }), backends, undefined, turn, flags);
      expect(read.kind === 'serve' && read.candidates.at(-1)).toBe('b1');
      const write = planWrite(v({ b1: 2, b2: 2, b3: 2 }), backends, undefined, turn, flags);
      expect(write.kind === 'write' && write.candidates.at(-1)).toBe('b1');
    }
    expect(planWrite(v({ b1: 3, b2: 2 }), backends, undefined, 0, flags)).toEqual({ kind: 'write', candidates: ['b1'] });
  });

  it('a down leader still comes after an avoided healthy one', () => {
    const read = planRead(v({ b1: 2, b2: 2 }), [b('b1'), b('b2', { healthy: false })], undefined, 0, { avoid: new Set(['b1']) });
    expect(read).toEqual({ kind: 'serve', candidates: ['b1', 'b2'] });
  });

  it('never catches a drifted copy up for a zone read', () => {
    const zoned = [b('b1', { zone: 'west' }), b('b2', { zone: 'east' })];
    const plan = planRead(v({ b1: 2, b2: 1 }), zoned, 'east', 0, { notLeaders: new Set(['b2']) });
    expect(plan).toEqual({ kind: 'serve', candidates: ['b1'] });
  });
});
