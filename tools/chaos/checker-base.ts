/**
 * What the chaos checker's parts share (docs/chaos.md): the violation types
 * and the commit graph. Pure, no I/O.
 *
 * A push answered `ok` is an obligation; a push with any other result except
 * `rejected` may or may not have been applied, so it can explain what a read
 * saw but obliges nothing. Commit ids are unique per created commit and the
 * history knows every commit's parent, so "contains" is ancestry.
 *
 * A value that does not contain an acknowledged push must be explained by a
 * destructive push (force or delete; any result but `rejected`) that could be
 * ordered after it: it started before the observation and was not
 * acknowledged before the acknowledged push started (a push answered with an
 * error may take effect later, when githa resolves the interrupted write). Fast-forward pushes never explain a
 * missing commit: a backend applies one only on top of the current value.
 * Branches that are never force-pushed or deleted are thus checked exactly.
 */
import type { History, Op, PushOp } from './history.js';

export type ViolationKind =
  | 'acked-push-lost'
  | 'stale-read'
  | 'read-went-backwards'
  | 'read-older-version'
  | 'uncommitted-read-reverted'
  | 'phantom-value'
  | 'version-decreased'
  | 'not-converged'
  | 'refs-differ'
  | 'fsck-failed'
  | 'frozen'
  | 'marker-left'
  /** A read through githa failed (no fault that stops githa, a backend or Redis around it) while the record was not empty. */
  | 'read-failed'
  /** A read through githa answered an empty repository while the record was not empty. */
  | 'read-empty'
  /** A read through githa passed on a commit a fault added behind githa's back (a copy contradicting its record). */
  | 'read-divergent'
  /** A commit a fault added on one copy is reachable from no ref on any backend after the run. */
  | 'divergent-commit-lost'
  /** Under a replication factor, a repository does not end assigned to exactly that many backends (a move lost or added a copy). */
  | 'wrong-copies';

export interface Violation {
  readonly kind: ViolationKind;
  readonly message: string;
  readonly repo?: string;
  readonly branch?: string;
  /** Ids of the operations involved (for the minimal history). */
  readonly ops: readonly number[];
  /** Time window of interest, for printing the history around it. */
  readonly window?: readonly [number, number];
}

/** Ancestry over the recorded commit graph (single parents: clients only make such commits). */
export class Commits {
  constructor(private readonly parents: Readonly<Record<string, string | null>>) {}

  known(oid: string): boolean {
    return Object.hasOwn(this.parents, oid);
  }

  /** `oid` and all its ancestors (bounded by the graph's size). */
  lineage(oid: string): Set<string> {
    const seen = new Set<string>();
    let cur: string | null | undefined = oid;
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      cur = this.parents[cur];
    }
    return seen;
  }

  contains(tip: string | undefined, oid: string): boolean {
    return tip !== undefined && this.lineage(tip).has(oid);
  }
}

/**
 * The commit graph of a run: every commit a client created, and every commit
 * a copy-divergent fault added (so that ancestry through one still works).
 */
export function commitGraph(history: History): Commits {
  const divergent = Object.fromEntries((history.divergent ?? []).map((d) => [d.oid, d.parent]));
  return new Commits({ ...history.commits, ...divergent });
}

export const key = (repo: string, branch: string): string => `${repo}\u0000${branch}`;

/** Pushes that may have applied, per (repo, branch). */
export interface Index {
  pushes: Map<string, PushOp[]>;
}

export function index(ops: readonly Op[]): Index {
  const pushes = new Map<string, PushOp[]>();
  for (const op of ops) {
    if (op.kind !== 'push' || op.result === 'rejected') continue;
    const k = key(op.repo, op.branch);
    let list = pushes.get(k);
    if (!list) pushes.set(k, (list = []));
    list.push(op);
  }
  for (const list of pushes.values()) list.sort((a, b) => a.end - b.end);
  return { pushes };
}

/**
 * Whether the value `seen` of a branch (undefined = absent) is consistent
 * with the acknowledged push `p`, for an observation made no earlier than
 * `observedBy` (a read's end, or the end of the run): it contains p's commit
 * (or, for a delete, the branch is absent), or another push that could be
 * ordered after p (it did not end before p started, and started before the
 * observation) explains it.
 */
export function explains(idx: Index, commits: Commits, p: PushOp, seen: string | undefined, lineage: Set<string> | undefined, observedBy: number): boolean {
  if (p.newOid !== null ? seen !== undefined && (lineage ?? commits.lineage(seen)).has(p.newOid) : seen === undefined) return true;
  for (const d of idx.pushes.get(key(p.repo, p.branch)) ?? []) {
    if (d === p || effectiveEnd(d) <= p.start || d.start >= observedBy) continue;
    if (seen === undefined) {
      if (d.mode === 'delete') return true;
    } else if (d.mode === 'force' && d.newOid !== null && (lineage ?? commits.lineage(seen)).has(d.newOid)) {
      // The value descends from a force-push that may be later than p. (A
      // fast-forward push cannot explain it: the backend applies one only on
      // top of the current value, which after p contains p's commit.)
      return true;
    }
  }
  return false;
}

/**
 * By when a push took effect, if it did. An acknowledged push: before its
 * answer. Any other outcome: possibly much later (a write interrupted by a
 * fault is adopted when githa resolves it, after the client got its error).
 */
export function effectiveEnd(d: PushOp): number {
  return d.result === 'ok' ? d.end : Number.POSITIVE_INFINITY;
}

export function window(...ops: Op[]): [number, number] {
  return [Math.min(...ops.map((o) => o.start)), Math.max(...ops.map((o) => o.end))];
}

