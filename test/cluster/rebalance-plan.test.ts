/**
 * The rebalance planner (src/cluster/rebalance-plan.ts; docs/architecture.md
 * "Moves"): drains first, then evens the repository count out from the most
 * used backends to the least used, keeping the placement rules (one copy per
 * host, never fewer zones), within --max-moves and --max-bytes.
 */
import { describe, expect, it } from 'vitest';
import { planRebalance, type PlanBackend, type PlanRepo } from '../../src/cluster/rebalance-plan.js';

const backend = (id: string, o: Partial<PlanBackend> = {}): PlanBackend => ({ id, accepting: true, ...o });

/** `n` repositories on `assigned`, `bytes` each. */
function repos(n: number, assigned: string[], bytes = 100): PlanRepo[] {
  return Array.from({ length: n }, (_, i) => ({ repo: `r${String(i).padStart(2, '0')}.git`, assigned, bytes }));
}

/** backend → copies after the moves. */
function counts(list: PlanRepo[], moves: ReturnType<typeof planRebalance>): Record<string, number> {
  const at = new Map(list.map((r) => [r.repo, [...r.assigned]]));
  for (const m of moves) {
    const a = at.get(m.repo)!;
    expect(a).toContain(m.from);
    expect(a).not.toContain(m.to);
    at.set(m.repo, a.map((b) => (b === m.from ? m.to : b)));
  }
  const out: Record<string, number> = {};
  for (const a of at.values()) for (const b of a) out[b] = (out[b] ?? 0) + 1;
  return out;
}

describe('planRebalance', () => {
  it('evens 30 repositories of factor 3 from 3 backends over 5: 18 copies each, every repository keeps 3 distinct backends', () => {
    const bs = ['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => backend(id));
    const list = repos(30, ['b1', 'b2', 'b3']);
    const moves = planRebalance(bs, list);
    expect(counts(list, moves)).toEqual({ b1: 18, b2: 18, b3: 18, b4: 18, b5: 18 });
    expect(moves).toHaveLength(36);
    expect(moves.every((m) => m.why === 'balance' && ['b4', 'b5'].includes(m.to))).toBe(true);
  });

  it('is deterministic, and a balanced cluster needs no move', () => {
    const bs = ['b1', 'b2', 'b3', 'b4'].map((id) => backend(id));
    const list = repos(8, ['b1', 'b2']);
    expect(planRebalance(bs, list)).toEqual(planRebalance([...bs].reverse(), [...list].reverse()));
    const even = [...repos(2, ['b1', 'b2']), { repo: 'x.git', assigned: ['b3', 'b4'], bytes: 1 }, { repo: 'y.git', assigned: ['b3', 'b4'], bytes: 1 }];
    expect(planRebalance(bs, even)).toEqual([]);
  });

  it('stops at --max-moves and at --max-bytes', () => {
    const bs = ['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => backend(id));
    const list = repos(30, ['b1', 'b2', 'b3'], 100);
    expect(planRebalance(bs, list, { maxMoves: 5 })).toHaveLength(5);
    const capped = planRebalance(bs, list, { maxBytes: 750 });
    expect(capped).toHaveLength(7);
    expect(capped.reduce((s, m) => s + m.bytes, 0)).toBeLessThanOrEqual(750);
  });

  it('never puts two copies on one host, and never leaves a repository in fewer zones', () => {
    const bs = [
      backend('a1', { zone: 'a' }),
      backend('a2', { zone: 'a' }),
      backend('b1', { zone: 'b' }),
      backend('n1', { zone: 'b', host: 'm1' }),
      backend('n2', { zone: 'b', host: 'm1' }),
    ];
    const list = repos(10, ['a1', 'b1']);
    const moves = planRebalance(bs, list);
    expect(moves.length).toBeGreaterThan(0);
    const at = new Map(list.map((r) => [r.repo, [...r.assigned]]));
    for (const m of moves) {
      const next = at.get(m.repo)!.map((b) => (b === m.from ? m.to : b));
      at.set(m.repo, next);
      expect(next.filter((b) => b === 'n1' || b === 'n2').length).toBeLessThanOrEqual(1);
      expect(new Set(next.map((b) => bs.find((x) => x.id === b)!.zone)).size).toBe(2);
    }
  });

  it('a drained backend gives every copy up first, to backends that take new copies; a disabled one gets none', () => {
    const bs = [backend('b1'), backend('b2'), backend('b3', { draining: true, accepting: false }), backend('b4'), backend('b5', { accepting: false })];
    const list = repos(6, ['b1', 'b2', 'b3']);
    const moves = planRebalance(bs, list);
    const drains = moves.filter((m) => m.why === 'drain');
    expect(drains).toHaveLength(6);
    expect(moves.slice(0, 6)).toEqual(drains);
    expect(drains.every((m) => m.from === 'b3' && m.to === 'b4')).toBe(true);
    const c = counts(list, moves);
    expect(c.b3 ?? 0).toBe(0);
    expect(c.b5 ?? 0).toBe(0);
  });

  it('the largest repository moves first when the counts differ (bytes as the tie-break of use)', () => {
    const bs = ['b1', 'b2'].map((id) => backend(id));
    const list: PlanRepo[] = [
      { repo: 'big.git', assigned: ['b1'], bytes: 900 },
      { repo: 'small.git', assigned: ['b1'], bytes: 10 },
      { repo: 'mid.git', assigned: ['b1'], bytes: 50 },
    ];
    expect(planRebalance(bs, list)).toEqual([{ repo: 'big.git', from: 'b1', to: 'b2', bytes: 900, why: 'balance' }]);
  });
});
