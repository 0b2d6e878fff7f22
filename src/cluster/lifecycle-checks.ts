/**
 * The pure and narrow checks of the repository lifecycle (src/cluster/lifecycle.ts;
 * docs/operations.md "Repository lifecycle"), kept apart so the lifecycle
 * itself stays one readable sequence per command.
 */
import type { RepositoryStore } from '../state/repository-store.js';
import type { SavedRecord } from '../state/repo-state.js';
import { leadership } from './routing.js';

/**
 * Waits for every backend's step, then fails with the first failure: a step
 * still running on one backend is never left behind (the command would
 * close its connection under it).
 */
export async function settled(steps: Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(steps);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** The saved record of the backends in `ids` only. */
export function only(r: SavedRecord, ids: readonly string[]): SavedRecord {
  const keep = new Set(ids);
  return {
    versions: new Map([...r.versions].filter(([b]) => keep.has(b))),
    checksums: new Map([...r.checksums].filter(([b]) => keep.has(b))),
    // The assignment goes with the record whole (docs/architecture.md "Replication factor"): a copy not kept is filled again.
    ...(r.assigned ? { assigned: r.assigned } : {}),
  };
}

/**
 * The repository `repo` would lie inside (docs/protocol.md "Repository
 * names": a stock git serves a directory below another repository's, so
 * `a/b.git` inside a plain `a` copy would be trashed or renamed with it):
 * a leading part of its name that is recorded, tombstoned, or has a copy.
 */
export async function outerRepository(repo: string, repos: Pick<RepositoryStore, 'read'>, hasCopy: (name: string) => Promise<boolean>): Promise<string | undefined> {
  const parts = repo.slice(0, -'.git'.length).split('/');
  for (let i = 1; i < parts.length; i++) {
    const prefix = `${parts.slice(0, i).join('/')}.git`;
    const state = await repos.read(prefix);
    if (state.versions.size > 0 || state.gone || state.frozen || (await hasCopy(prefix))) return prefix;
  }
  return undefined;
}

/**
 * What a rename gives the new name: the old record of the backends whose
 * copies move with it (`moving`: the enabled ones; a disabled backend keeps
 * its copy under the old name, a leftover). A string when that would leave
 * the newest version behind: only a backend that does not move holds it.
 */
export function renameRecord(record: SavedRecord, moving: readonly string[]): SavedRecord | string {
  const kept = only(record, moving);
  const all = leadership(record.versions);
  const left = leadership(kept.versions);
  if (all.max > 0 && left.max < all.max) {
    return `the newest version (${all.max}) is only on ${all.leaders.filter((b) => !moving.includes(b)).join(', ')}, which is disabled: enable it first (githa backend enable B), or catch another copy up`;
  }
  return kept;
}
