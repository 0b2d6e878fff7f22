/**
 * The checker's rules for copies changed behind githa's back (issue 16,
 * docs/chaos.md "Copy faults"): a read through githa never fails or answers
 * an empty repository while the record is not empty, never passes on a commit
 * a fault added to one copy, and such a commit is never destroyed: after the
 * run some ref on some backend reaches it (repair keeps divergent tips under
 * refs/githa/kept/<backend>/…, docs/architecture.md).
 */
import type { Violation } from './checker-base.js';
import type { FaultKind, History, ReadOp } from './history.js';

/** Faults that stop githa, a backend or Redis: a read failing around one is no violation. */
const OUTAGES: ReadonlySet<FaultKind> = new Set<FaultKind>(['backend-kill', 'backend-pause', 'backend-unreachable', 'githa-pause', 'githa-kill-mid-push', 'redis-restart', 'redis-slow']);

/** After an outage is healed, reads may fail this long (health probes, reconnects, a githa starting). */
export const OUTAGE_MARGIN_MS = 5_000;

/**
 * When each repository's record is known not to be empty: the end of its
 * first acknowledged creation of a branch that no push ever deletes or
 * force-pushes (a push with any result but `rejected` may have applied).
 */
function nonEmptySince(history: History): Map<string, number> {
  const destroyed = new Set<string>();
  for (const o of history.ops) {
    if (o.kind === 'push' && o.result !== 'rejected' && o.mode !== 'ff') destroyed.add(`${o.repo}\u0000${o.branch}`);
  }
  const since = new Map<string, number>();
  for (const o of history.ops) {
    if (o.kind !== 'push' || o.result !== 'ok' || o.newOid === null || destroyed.has(`${o.repo}\u0000${o.branch}`)) continue;
    since.set(o.repo, Math.min(since.get(o.repo) ?? Infinity, o.end));
  }
  return since;
}

/** Copy faults that destroy a repository's files: a transfer from that copy already under way cannot be moved to another leader. */
const DESTROYING: ReadonlySet<FaultKind> = new Set<FaultKind>(['copy-wipe', 'copy-reinit', 'copy-delete']);

function duringOutage(history: History, r: ReadOp): boolean {
  return history.faults.some(
    (f) =>
      (OUTAGES.has(f.kind) && f.start <= r.end && f.end + OUTAGE_MARGIN_MS >= r.start) ||
      // A copy destroyed while it streams a pack: bytes already reached the client, so githa cannot retry elsewhere.
      (DESTROYING.has(f.kind) && f.repo === r.repo && f.start <= r.end && f.start >= r.start),
  );
}

/** Copy faults on the read's repository that may explain what it saw (for the message). */
function copyFaultsNear(history: History, r: ReadOp): string {
  const near = history.faults.filter((f) => f.repo === r.repo && f.start <= r.end);
  const last = near.at(-1);
  return last ? ` (last copy fault on ${r.repo}: ${last.kind} ${last.target} at ${last.start.toFixed(0)} ms)` : '';
}

/** Reads that failed or answered an empty repository while the record was not empty. */
export function checkCopyReads(history: History): Violation[] {
  const since = nonEmptySince(history);
  const out: Violation[] = [];
  for (const r of history.ops) {
    if (r.kind !== 'read' || !(r.start > (since.get(r.repo) ?? Infinity))) continue;
    if (r.result === 'error' && !duringOutage(history, r)) {
      out.push({
        kind: 'read-failed',
        repo: r.repo,
        ops: [r.id],
        window: [r.start, r.end],
        message: `read #${r.id} (${r.how} via ${r.via}, ${r.start.toFixed(0)}–${r.end.toFixed(0)} ms) failed with no outage around it: ${r.detail ?? ''}${copyFaultsNear(history, r)}`,
      });
    } else if (r.result === 'ok' && Object.keys(r.refs).length === 0) {
      out.push({
        kind: 'read-empty',
        repo: r.repo,
        ops: [r.id],
        window: [r.start, r.end],
        message: `read #${r.id} (${r.how} via ${r.via}, ${r.start.toFixed(0)} ms) answered an empty repository; the record was not empty since ${since.get(r.repo)!.toFixed(0)} ms${copyFaultsNear(history, r)}`,
      });
    }
  }
  return out;
}

/** Reads that passed on a commit a copy-divergent fault added (githa served a copy that contradicts its record). */
export function checkDivergentReads(history: History): Violation[] {
  const divergent = new Map((history.divergent ?? []).map((d) => [d.oid, d]));
  if (divergent.size === 0) return [];
  const out: Violation[] = [];
  for (const r of history.ops) {
    if (r.kind !== 'read' || r.result !== 'ok') continue;
    for (const [branch, oid] of Object.entries(r.refs)) {
      const d = divergent.get(oid);
      if (!d || d.repo !== r.repo) continue;
      out.push({
        kind: 'read-divergent',
        repo: r.repo,
        branch,
        ops: [r.id],
        window: [d.t, r.end],
        message: `read #${r.id} (${r.how} via ${r.via}) saw ${branch} = ${oid}, the commit a fault added on ${d.backend} at ${d.t.toFixed(0)} ms behind githa's back`,
      });
    }
  }
  return out;
}

/** Every commit a copy-divergent fault added is reachable from some ref on some backend after the run. */
export function checkDivergentKept(history: History): Violation[] {
  const final = history.final;
  if (!final) return [];
  const out: Violation[] = [];
  for (const d of history.divergent ?? []) {
    const reachable = final.repos[d.repo]?.reachable;
    if (!reachable) continue;
    const refs = reachable[d.oid] ?? [];
    if (refs.length > 0) continue;
    out.push({
      kind: 'divergent-commit-lost',
      repo: d.repo,
      branch: d.branch,
      ops: [],
      window: [d.t, d.t],
      message: `${d.repo}: commit ${d.oid} that a fault added to ${d.branch} on ${d.backend} at ${d.t.toFixed(0)} ms is reachable from no ref on any backend (repair keeps such tips under refs/githa/kept/${d.backend}/…)`,
    });
  }
  return out;
}
