import type { RepoState } from './repo-state.js';

/** Why a repository is in the work index (the breakdown of /metrics' `githa_work_repositories`). */
export type WorkReason = 'writing' | 'frozen' | 'suspect' | 'drift' | 'stale' | 'none';

/**
 * The work index's judgement (src/state/scripts/work.ts NEEDS_WORK_LUA) on a state already read: the first reason
 * the repository needs work, or `none`. `backends`: the configured ids, replaced by the assignment when recorded;
 * with neither, the recorded backends. Both must agree: the in-memory store and the status counts use this one.
 */
export function workReason(state: RepoState, backends: readonly string[]): WorkReason {
  if (state.writing) return 'writing';
  if (state.frozen) return 'frozen';
  if (state.suspect.size > 0) return 'suspect';
  if (state.drift.size > 0) return 'drift';
  if (state.versions.size === 0) return 'none';
  const max = Math.max(0, ...state.versions.values());
  const targets = state.assigned && state.assigned.length > 0 ? state.assigned : backends.length > 0 ? backends : [...state.versions.keys()];
  return targets.some((b) => (state.versions.get(b) ?? 0) < max) ? 'stale' : 'none';
}
