/**
 * When a read waits rather than fails (docs/architecture.md "A read"): no
 * leader speaks the client's transport and no stale copy that does can be
 * caught up, but one that does is being repaired (drifted: it leads again
 * once refilled). The chaos run found it: b3 speaks no HTTP, b1 and b2 were
 * both drifted at once, and HTTP reads failed "no leader is reachable" while
 * the repairs ran. Pure: the cluster hands in what it knows.
 */
import type { ReadPlan, RepoFlags, BackendView } from './routing.js';

/** The ids of enabled, healthy copies that are not leaders because they drifted, and that this transport can use. */
export function repairedForTransport(plan: ReadPlan, views: readonly BackendView[], flags: RepoFlags, accepts: (id: string) => boolean): string[] {
  if (plan.kind !== 'serve' || plan.candidates.length === 0) return [];
  // A leader this transport can use serves (or is waited for as a push's target): nothing to wait for here.
  if (plan.candidates.some(accepts)) return [];
  return views.filter((b) => b.enabled && b.healthy && flags.notLeaders?.has(b.id) && accepts(b.id)).map((b) => b.id);
}
