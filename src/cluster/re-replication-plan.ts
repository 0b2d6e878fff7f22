/**
 * The decisions of re-replication, pure (docs/architecture.md
 * "Re-replication"): which backends are lost, what to do next for one
 * repository that a lost backend holds, and which backend replaces it.
 */
import type { RepoState } from '../state/repo-state.js';
import { place, type PlacementCandidate } from './placement.js';

/** What the re-replicating githa knows of one configured backend. */
export interface BackendView {
  id: string;
  zone?: string | undefined;
  /** backends[].host; backends without one are a host of their own. */
  host?: string | undefined;
  /** Enabled (configuration and operator override). */
  enabled: boolean;
  /** The shared health (fresh): true up, false down, undefined unknown (nobody probes it). */
  up: boolean | undefined;
  /** Disabled with `--maintenance`: coming back. */
  maintenance: boolean;
  /** Being drained (gets nothing new). */
  draining?: boolean;
}

/**
 * Whether `b` is lost: down in the shared health for at least `afterMs`
 * since `downSince`, and not under maintenance. An unknown health (no githa
 * probes it: a configured-disabled backend) is not a loss.
 */
export function isLost(b: BackendView, downSince: number | undefined, now: number, afterMs: number): boolean {
  return b.up === false && !b.maintenance && downSince !== undefined && now - downSince >= afterMs;
}

/** A backend that may take a new copy: enabled, up, not drained, not under maintenance. */
export function eligible(b: BackendView): boolean {
  return b.enabled && b.up === true && !b.draining && !b.maintenance;
}

function hostOf(b: Pick<BackendView, 'id' | 'host'>): string {
  return b.host ?? `\0${b.id}`;
}

/**
 * The replacement of the lost backend(s) in `repo`'s assignment, by the
 * placement rules of new repositories (src/cluster/placement.ts: least used,
 * spread over zones, never two copies on one `backends[].host`, a
 * per-repository hash among equals), with the assigned backends that are
 * not down kept: an eligible backend that is not assigned and not on the
 * host of an assigned one (the lost one included: a machine that went away
 * takes all its backends). Undefined when no backend qualifies.
 * Deterministic given the same inputs.
 */
export function chooseReplacement(
  repo: string,
  assigned: readonly string[],
  backends: readonly BackendView[],
  usage: ReadonlyMap<string, number>,
): string | undefined {
  const byId = new Map(backends.map((b) => [b.id, b]));
  const taken = new Set(assigned);
  const hosts = new Set(assigned.map((id) => hostOf(byId.get(id) ?? { id })));
  // A backend removed from the configuration (no view) is not kept: it is being replaced.
  const keep = assigned.filter((id) => byId.has(id) && byId.get(id)!.up !== false);
  const candidate = (b: BackendView): PlacementCandidate => ({ id: b.id, zone: b.zone, host: b.host, enabled: true, repos: usage.get(b.id) ?? 0, bytes: 0 });
  const pool = backends.filter((b) => eligible(b) && !taken.has(b.id) && !hosts.has(hostOf(b)));
  const kept = keep.flatMap((id) => (byId.get(id) ? [byId.get(id)!] : []));
  return place(repo, kept.length + 1, [...kept, ...pool].map(candidate), { keep }).find((id) => !taken.has(id));
}

export type Step =
  /** Nothing left to do for this repository and lost backend. */
  | { kind: 'done'; why: string }
  /** Add `target` to the assignment as the lost backend's replacement. */
  | { kind: 'add'; target: string }
  /** The replacement is catching up. */
  | { kind: 'wait'; replacement: string }
  /** The replacement caught up: the lost backend leaves the assignment. */
  | { kind: 'drop'; replacement: string }
  /** No replacement may start (the backend came back, or is under maintenance). */
  | { kind: 'hold' }
  /** No backend can take the copy. */
  | { kind: 'stuck'; why: string }
  /**
   * `lost` is not in the configuration and only it (or other backends not in the configuration) holds the newest
   * version: no configured copy can be caught up to it, so nothing is changed (the record keeps the version).
   */
  | { kind: 'orphaned'; version: number; reachable: number };

/** The highest version among the assigned backends. */
function assignedMax(state: RepoState, assigned: readonly string[]): number {
  return Math.max(0, ...assigned.map((b) => state.versions.get(b) ?? 0));
}

/** Whether `backend` is at the highest version of the assigned backends, and not drifted. */
export function caughtUp(state: RepoState, backend: string): boolean {
  const assigned = state.assigned ?? [];
  const v = state.versions.get(backend);
  return v !== undefined && v >= assignedMax(state, assigned) && !state.drift.has(backend);
}

/**
 * Whether `id` was removed from the configuration: an id in an assignment that
 * no configured backend has (docs/architecture.md "Re-replication": such a
 * backend is lost at once, it can never come back as configured).
 */
export function isRemoved(id: string, backends: readonly Pick<BackendView, 'id'>[]): boolean {
  return !backends.some((b) => b.id === id);
}

/**
 * The next step for `repo`, whose state was just read (with its `replacing`
 * hash), for the lost backend `lost`. `mayStart`: whether a new replacement may be
 * added (false once the backend came back or the operator put it under
 * maintenance: replacements already added still finish, so the factor is
 * kept).
 */
export function planRepo(
  repo: string,
  state: RepoState,
  lost: string,
  o: { mayStart: boolean; backends: readonly BackendView[]; usage: ReadonlyMap<string, number> },
): Step {
  if (state.gone) return { kind: 'done', why: `the repository is ${state.gone.kind}` };
  const assigned = state.assigned;
  if (!assigned) return { kind: 'done', why: 'no assignment: every backend holds it' };
  if (!assigned.includes(lost)) return { kind: 'done', why: `${lost} is no longer assigned` };
  if (isRemoved(lost, o.backends)) {
    // Removed from the configuration: its copy can never be read again, so a replacement can only be caught up from a
    // configured, undrifted copy. When none is at the newest version, that version is on removed backends alone: the
    // record is left as it is (githa dataloss lists it) rather than re-recorded at an older version.
    const max = assignedMax(state, assigned);
    const reachable = Math.max(0, ...assigned.filter((b) => !isRemoved(b, o.backends) && !state.drift.has(b)).map((b) => state.versions.get(b) ?? 0));
    if (max > 0 && reachable < max) return { kind: 'orphaned', version: max, reachable };
  }
  const replacement = [...(state.replacing ?? [])].find(([r, l]) => l === lost && assigned.includes(r))?.[0];
  if (replacement) return caughtUp(state, replacement) ? { kind: 'drop', replacement } : { kind: 'wait', replacement };
  if (!o.mayStart) return { kind: 'hold' };
  if (state.versions.size === 0) return { kind: 'done', why: 'the repository has no record' };
  const target = chooseReplacement(repo, assigned, o.backends, o.usage);
  if (!target) return { kind: 'stuck', why: 'no enabled, healthy backend outside the assignment on a host of its own' };
  return { kind: 'add', target };
}
