import type { Drift, DriftKind, RepoState } from '../state/repo-state.js';
import { scoped, scopedState, writeQuorumOf, type QuorumConfig } from './assignment.js';
import { EMPTY_CHECKSUM } from './checksum.js';
import { leadership } from './routing.js';

/** What a drifted copy holds: its repair's finding, or what its live value shows (`changed`: not repaired yet). */
export type CopyKind = DriftKind | 'changed';

export function driftKind(d: Drift): CopyKind {
  return d.kind ?? (d.checksum === 'missing' ? 'missing' : d.checksum === EMPTY_CHECKSUM ? 'empty' : 'changed');
}

/**
 * How safe one repository's data is, as `githa status`, `/status` and the
 * metrics show it (Phorge's "Repository Servers" states, plus ambiguity):
 * - synchronized: every active backend is a leader;
 * - partial: at least writeQuorum leaders, or a push under a minute old
 *   (replication is on its way);
 * - unsynchronized: the newest version is on fewer than writeQuorum
 *   backends: losing them loses it;
 * - ambiguous: githa cannot tell which copy is right;
 * - frozen: writes (or reads) refused for another reason (write-interrupted,
 *   maintenance, …).
 * Only assigned backends count (docs/architecture.md "Replication factor"): an
 * unassigned holder is neither a leader nor stale, and the write quorum is the
 * repository's own (`writeQuorum` given as the replication config).
 * Pure: callers read the state; unit-tested in test/cluster/status.test.ts.
 */
export type RepoHealth = 'synchronized' | 'partial' | 'unsynchronized' | 'ambiguous' | 'frozen';

export interface RepoSummary {
  state: RepoHealth;
  /** Why frozen (frozen / ambiguous). */
  reason?: string;
  version: number;
  leaders: string[];
  /** Active backends below the newest version (or without one). */
  stale: string[];
  drifted: string[];
  /** What each drifted copy holds (docs/operations.md "A copy contradicts its record"). */
  driftKinds?: Record<string, CopyKind>;
  suspect: string[];
  /** A write in flight (lock held) or interrupted (no lock). */
  writing?: { backend: string; interrupted: boolean };
  /** The backends that should hold it, when it has an assignment (docs/redis.md `assigned`). */
  assigned?: string[];
  /** Its write quorum (a majority of the assignment unless replication.writeQuorum is set). */
  writeQuorum?: number;
}

/** A push younger than this counts as replication in progress, not as data at risk. */
export const RECENT_PUSH_MS = 60_000;

export function summarize(
  all: RepoState,
  allActive: readonly string[],
  quorum: number | QuorumConfig,
  lastWriteAt: number | undefined,
  now: number,
): RepoSummary {
  const state = scopedState(all);
  const active = scoped(all, allActive);
  const writeQuorum = writeQuorumOf(typeof quorum === 'number' ? { writeQuorum: quorum } : quorum, all);
  const notLeaders = new Set(state.drift.keys());
  const { max, leaders } = leadership(state.versions, notLeaders);
  const activeSet = new Set(active);
  const activeLeaders = leaders.filter((b) => activeSet.has(b));
  const base = {
    version: max,
    leaders,
    stale: active.filter((b) => (state.versions.get(b) ?? 0) < max),
    drifted: [...state.drift.keys()].sort(),
    driftKinds: Object.fromEntries([...state.drift].map(([b, d]) => [b, driftKind(d)])),
    suspect: [...state.suspect.keys()].sort(),
    ...(state.writing ? { writing: { backend: state.writing.backend, interrupted: !state.locked } } : {}),
    ...(all.assigned ? { assigned: [...all.assigned] } : {}),
    writeQuorum,
  };
  if (state.frozen?.reason === 'ambiguous') return { ...base, state: 'ambiguous', reason: state.frozen.detail || 'ambiguous' };
  if (state.frozen) return { ...base, state: 'frozen', reason: state.frozen.reason };
  if (state.writing && !state.locked) return { ...base, state: 'frozen', reason: 'write-interrupted' };
  if (active.length > 0 && active.every((b) => activeLeaders.includes(b))) return { ...base, state: 'synchronized' };
  const recent = lastWriteAt !== undefined && now - lastWriteAt < RECENT_PUSH_MS;
  if (activeLeaders.length >= writeQuorum || recent) return { ...base, state: 'partial' };
  return { ...base, state: 'unsynchronized' };
}
