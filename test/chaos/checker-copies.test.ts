/**
 * The chaos checker's rules for copies changed behind githa's back
 * (tools/chaos/checker-copies.ts, issue 16) on hand-built histories: reads
 * that fail or answer an empty repository while the record is not empty,
 * reads that pass on a commit a fault added, and such a commit destroyed.
 */
import { describe, expect, it } from 'vitest';
import { checkHistory, OUTAGE_MARGIN_MS, type Violation } from '../../tools/chaos/checker.js';
import type { DivergentCommit, FaultRecord, FinalState, History, Op, PushOp, ReadOp } from '../../tools/chaos/history.js';

const R = 'chaos/r1.git';
const oid = (n: number): string => n.toString(16).padStart(40, '0');
let nextId = 1;

function push(p: Partial<PushOp> & { branch: string; newOid: string | null; start: number; end: number }): PushOp {
  return { kind: 'push', id: nextId++, client: 'w1', repo: R, mode: 'ff', result: 'ok', via: 'g1/http', ...p };
}
function read(p: Partial<ReadOp> & { refs: Record<string, string>; start: number; end: number }): ReadOp {
  return { kind: 'read', id: nextId++, client: 'r1', repo: R, how: 'ls-remote', result: 'ok', via: 'g2/ssh', ...p };
}
/** A converged final state: every backend has `refs`, plus `reachable` for the divergent commits. */
function final(refs: Record<string, string>, reachable?: Record<string, string[]>): FinalState {
  const text = Object.entries(refs)
    .map(([b, o]) => `${o} refs/heads/${b}`)
    .join('\n');
  return {
    converged: true,
    convergenceMs: 100,
    repos: { [R]: { refs: { b1: text, b2: text, b3: text }, fsck: { b1: null, b2: null, b3: null }, versions: { b1: 3, b2: 3, b3: 3 }, frozen: null, writing: false, ...(reachable ? { reachable } : {}) } },
  };
}
function history(ops: Op[], commits: Record<string, string | null>, fin: FinalState, extra: Partial<History> = {}): History {
  return { ops, commits, faults: [], versionSamples: [], final: fin, ...extra };
}
const kinds = (v: Violation[]): string[] => v.map((x) => x.kind);
const fault = (f: Partial<FaultRecord> & Pick<FaultRecord, 'kind' | 'start' | 'end'>): FaultRecord => ({ target: 'b2', ...f });
const commits = { [oid(1)]: null, [oid(2)]: oid(1) };

describe('chaos checker: copies changed behind githa\'s back', () => {
  it('catches a read that fails while the record is not empty, unless an outage is around it', () => {
    const ops = [push({ branch: 'main', newOid: oid(1), start: 0, end: 10 }), read({ refs: {}, result: 'error', detail: 'fatal: not our ref', start: 100, end: 120 })];
    const wiped = [fault({ kind: 'copy-wipe', repo: R, start: 50, end: 60 })];
    const v = checkHistory(history(ops, commits, final({ main: oid(1) }), { faults: wiped }));
    expect(kinds(v)).toEqual(['read-failed']);
    expect(v[0]!.message).toContain('copy-wipe b2');
    // A githa killed around the read explains its failure, for OUTAGE_MARGIN_MS after it is back.
    const killed = [fault({ kind: 'githa-kill-mid-push', target: 'g2', start: 90, end: 95 })];
    expect(checkHistory(history(ops, commits, final({ main: oid(1) }), { faults: killed }))).toEqual([]);
    const long = [fault({ kind: 'githa-kill-mid-push', target: 'g2', start: 0, end: 99 - OUTAGE_MARGIN_MS })];
    expect(kinds(checkHistory(history(ops, commits, final({ main: oid(1) }), { faults: long })))).toEqual(['read-failed']);
    // A copy of the repository destroyed while the read ran (its pack already flowing) explains it; one destroyed before does not.
    const during = [fault({ kind: 'copy-reinit', repo: R, start: 110, end: 115 })];
    expect(checkHistory(history(ops, commits, final({ main: oid(1) }), { faults: during }))).toEqual([]);
    const otherRepo = [fault({ kind: 'copy-reinit', repo: 'chaos/r2.git', start: 110, end: 115 })];
    expect(kinds(checkHistory(history(ops, commits, final({ main: oid(1) }), { faults: otherRepo })))).toEqual(['read-failed']);
  });

  it('accepts a failed or empty read while the record may be empty (nothing acknowledged yet, or only a deletable branch)', () => {
    const early = [read({ refs: {}, result: 'error', start: 0, end: 5 }), read({ refs: {}, start: 1, end: 6 }), push({ branch: 'main', newOid: oid(1), start: 0, end: 10 })];
    expect(checkHistory(history(early, commits, final({ main: oid(1) })))).toEqual([]);
    const volatile = [push({ branch: 'vol-1', newOid: oid(1), start: 0, end: 10 }), push({ branch: 'vol-1', newOid: null, mode: 'delete', start: 20, end: 30 }), read({ refs: {}, start: 40, end: 50 })];
    expect(checkHistory(history(volatile, commits, final({})))).toEqual([]);
  });

  it('catches a read that answers an empty repository after a branch was acknowledged', () => {
    const ops = [push({ branch: 'main', newOid: oid(1), start: 0, end: 10 }), read({ refs: {}, how: 'clone', via: 'g1/ssh', start: 100, end: 120 })];
    const v = checkHistory(history(ops, commits, final({ main: oid(1) }), { faults: [fault({ kind: 'copy-reinit', repo: R, start: 50, end: 60 })] }));
    expect(kinds(v)).toEqual(['stale-read', 'read-empty']);
    expect(v[1]!.message).toContain('empty repository');
  });

  const divergent: DivergentCommit = { repo: R, backend: 'b2', branch: 'main', oid: oid(7), parent: oid(1), t: 50 };

  it('catches a divergent commit a fault added that no ref reaches after the run, and accepts one kept', () => {
    const ops = [push({ branch: 'main', newOid: oid(1), start: 0, end: 10 })];
    const lost = checkHistory(history(ops, commits, final({ main: oid(1) }, { [oid(7)]: [] }), { divergent: [divergent] }));
    expect(kinds(lost)).toEqual(['divergent-commit-lost']);
    expect(lost[0]!.message).toContain('refs/githa/kept/b2/');
    const kept = final({ main: oid(1) }, { [oid(7)]: ['b1 refs/githa/kept/b2/20261206T050000Z/heads/main'] });
    expect(checkHistory(history(ops, commits, kept, { divergent: [divergent] }))).toEqual([]);
  });

  it('catches a read that passes on the divergent commit (a copy that contradicts its record), without calling it a phantom', () => {
    const ops = [push({ branch: 'main', newOid: oid(1), start: 0, end: 10 }), read({ refs: { main: oid(7) }, start: 60, end: 70 })];
    const v = checkHistory(history(ops, commits, final({ main: oid(1) }, { [oid(7)]: ['b2 refs/heads/main'] }), { divergent: [divergent] }));
    expect(kinds(v)).toEqual(['read-divergent']);
    expect(v[0]!.message).toContain('added on b2');
  });
});
