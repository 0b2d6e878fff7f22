import type { Config } from '../config/schema.js';
import type { RepoState } from '../state/repo-state.js';

/**
 * A repository's assignment (docs/architecture.md "Replication factor",
 * docs/redis.md `assigned`): the backends that should hold it. No assignment
 * recorded means every configured backend (`replication.factor` unset, and
 * every repository recorded before githa had a factor). Reads, writes, the
 * write quorum, catch-up, replication, status, `githa dataloss` and the
 * verifier count only assigned backends: a backend that holds a copy but is
 * not assigned is ignored (a move trashes it). Pure; unit-tested in
 * test/cluster/assignment.test.ts.
 */

type Assigned = Pick<RepoState, 'assigned' | 'replacing'>;

/**
 * How many copies the assignment stands for: a backend being replaced
 * (re-replication: docs/architecture.md "Re-replication") and its
 * replacement count once, so adding the replacement does not raise the
 * write quorum while the lost backend is down and the replacement not yet
 * caught up.
 */
export function copiesOf(state: Assigned): number | undefined {
  const assigned = state.assigned;
  if (assigned === undefined) return undefined;
  const pairs = [...(state.replacing ?? [])].filter(([r, lost]) => assigned.includes(r) && assigned.includes(lost)).length;
  return assigned.length - pairs;
}

/** Whether `id` is one of the backends that should hold the repository. */
export function isAssigned(state: Assigned, id: string): boolean {
  return state.assigned === undefined || state.assigned.includes(id);
}

/** The items (backends, views, ids) of the assignment, in their given order. */
export function scoped<T extends { id: string } | string>(state: Assigned, items: readonly T[]): T[] {
  if (state.assigned === undefined) return [...items];
  return items.filter((x) => isAssigned(state, typeof x === 'string' ? x : x.id));
}

/** The assigned backends' ids among `all` (the configured ones). */
export function assignedIds(state: Assigned, all: readonly string[]): string[] {
  return scoped(state, all);
}

/** A map keyed by backend id, restricted to the assignment. */
function scopedMap<V>(state: Assigned, m: ReadonlyMap<string, V>): Map<string, V> {
  return new Map([...m].filter(([b]) => isAssigned(state, b)));
}

/**
 * The state as routing sees it: versions, checksums, suspects and drift of
 * assigned backends only, so an unassigned holder is never a leader, a read
 * candidate or a catch-up source. Scripts still see the whole record.
 */
export function scopedState(state: RepoState): RepoState {
  if (state.assigned === undefined) return state;
  return {
    ...state,
    versions: scopedMap(state, state.versions),
    checksums: scopedMap(state, state.checksums),
    suspect: scopedMap(state, state.suspect),
    drift: scopedMap(state, state.drift),
  };
}

export type QuorumConfig = Pick<Config['replication'], 'writeQuorum'> & { readonly writeQuorumDerived?: boolean | undefined };

/**
 * The write quorum of one repository (docs/architecture.md "Write quorum"):
 * `replication.writeQuorum` when the operator set it, never more than the
 * assignment holds; else a majority of the assignment. Without an assignment
 * it is the configured (or derived: a majority of every backend) value.
 */
export function writeQuorumOf(replication: QuorumConfig, state: Assigned): number {
  const n = copiesOf(state);
  if (n === undefined) return replication.writeQuorum;
  if (replication.writeQuorumDerived === true) return Math.floor(n / 2) + 1;
  return Math.max(1, Math.min(replication.writeQuorum, n));
}
