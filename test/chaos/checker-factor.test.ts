/**
 * The chaos checker under a replication factor (issue 22, docs/chaos.md
 * "Under a factor"): only the assigned copies count at the end, each must
 * converge, no version stays recorded for a backend moved away from, the
 * assignment keeps exactly `factor` backends, and an acknowledged push only
 * in a moved-away copy (its backend's trash) is lost. Moves are counted in the
 * report apart from faults.
 */
import { describe, expect, it } from 'vitest';
import { checkHistory, type Violation } from '../../tools/chaos/checker.js';
import type { ChaosResult } from '../../tools/chaos/harness.js';
import type { FinalRepoState, FinalState, History, PushOp } from '../../tools/chaos/history.js';
import { counts } from '../../tools/chaos/report.js';

const R = 'chaos/r1.git';
const oid = (n: number): string => n.toString(16).padStart(40, '0');
const kinds = (v: Violation[]): string[] => v.map((x) => x.kind);
const push = (id: number, newOid: string, start: number, end: number): PushOp => ({ kind: 'push', id, client: 'w1', repo: R, branch: 'main', mode: 'ff', newOid, start, end, result: 'ok', via: 'g1/http' });

/** A final state of R assigned to `assigned`, each copy with main at `tip`. */
function repoState(assigned: string[], tip: string, patch: Partial<FinalRepoState> = {}): FinalRepoState {
  const text = `${tip} refs/heads/main`;
  return {
    assigned,
    refs: Object.fromEntries(assigned.map((b) => [b, text])),
    fsck: Object.fromEntries(assigned.map((b) => [b, null])),
    versions: Object.fromEntries(assigned.map((b) => [b, 4])),
    frozen: null,
    writing: false,
    ...patch,
  };
}
const finalOf = (s: FinalRepoState, factor = 3): FinalState => ({ converged: true, convergenceMs: 50, factor, repos: { [R]: s } });
const history = (fin: FinalState, ops: PushOp[] = [push(1, oid(1), 0, 10), push(2, oid(2), 20, 30)]): History => ({
  ops,
  commits: { [oid(1)]: null, [oid(2)]: oid(1) },
  faults: [{ kind: 'move', target: 'b3→b5', repo: R, start: 15, end: 40, detail: 'exit 0: chaos/r1.git moved from b3 to b5' }],
  versionSamples: [],
  final: fin,
});

describe('chaos checker under a replication factor', () => {
  it('accepts 3 assigned copies of 5 backends that hold every acknowledged push (a move in between)', () => {
    expect(checkHistory(history(finalOf(repoState(['b1', 'b2', 'b5'], oid(2)))))).toEqual([]);
  });

  it('catches an acknowledged push missing from the assigned copies (only in the trash of the backend moved away from)', () => {
    expect(kinds(checkHistory(history(finalOf(repoState(['b1', 'b2', 'b5'], oid(1))))))).toEqual(['acked-push-lost']);
  });

  it('catches an assignment that lost or gained a copy', () => {
    expect(kinds(checkHistory(history(finalOf(repoState(['b1', 'b5'], oid(2))))))).toEqual(['wrong-copies']);
    expect(kinds(checkHistory(history(finalOf(repoState(['b1', 'b2', 'b3', 'b5'], oid(2))))))).toEqual(['wrong-copies']);
  });

  it('catches a version left recorded for a backend moved away from, and an assigned copy behind', () => {
    const s = repoState(['b1', 'b2', 'b5'], oid(2));
    expect(kinds(checkHistory(history(finalOf({ ...s, versions: { b1: 4, b2: 4, b3: 4 } }))))).toEqual(['not-converged']);
    expect(kinds(checkHistory(history(finalOf({ ...s, versions: { b1: 4, b2: 4, b5: 3 } }))))).toEqual(['not-converged']);
    expect(kinds(checkHistory(history(finalOf({ ...s, refs: { ...s.refs, b5: '' } }))))).toEqual(['refs-differ']);
  });

  it('counts moves and rebalances apart from faults, and the copies they moved', () => {
    const h = history(finalOf(repoState(['b1', 'b2', 'b5'], oid(2))));
    const faults = [
      ...h.faults,
      { kind: 'move' as const, target: 'b1→b4', repo: R, start: 50, end: 60, detail: 'exit 1: b4 is disabled' },
      { kind: 'rebalance' as const, target: '-', start: 70, end: 80, detail: 'exit 0: 1 of 1 planned move made, 2 KiB relayed' },
      { kind: 'backend-kill' as const, target: 'b2', start: 5, end: 8 },
    ];
    const result: ChaosResult = { seed: 1, history: { ...h, faults }, violations: [], known: [], durationMs: 1 };
    const c = counts(result);
    expect(c.faults).toBe(1);
    expect(c.moves).toEqual({ 'move exit 0': 1, 'move exit 1': 1, 'rebalance exit 0': 1 });
    expect(c.movesMade).toBe(2);
  });
});
