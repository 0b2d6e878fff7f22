import { trashStamp } from '../backends/admin.js';
import { RepositoryFrozenError, RepositoryNotFoundError, ReplicationFactorError } from '../errors.js';
import { goneError } from './adoption.js';
import { copiesOf, scopedState } from './assignment.js';
import type { ClusterContext } from './context.js';
import { trashByHand } from './manual-commands.js';
import { place, toUnassign } from './placement.js';
import { candidates } from './placer.js';
import { leadership } from './routing.js';

/**
 * `githa repo factor R N` (docs/architecture.md "Replication factor"): a
 * repository's own factor, changed under its write lock. Raised: placement
 * picks the extra backends (the current ones stay), which background
 * replication creates and fills like any missing copy. Lowered: the extra
 * backends are unassigned, non-leaders first; their records go in the same
 * script, then each copy is moved to its backend's trash directory over the
 * admin account, as `githa delete` does. A copy that cannot be trashed now
 * (no admin, or unreachable) is left where it is, ignored by routing, and
 * named with the command to trash it by hand.
 */

export interface FactorResult {
  repo: string;
  factor: number;
  assigned: string[];
  added: string[];
  removed: string[];
  /** Removed backends whose copy went to the trash directory (`stamp`). */
  trashed: string[];
  /** Removed backends whose copy is left: what to run there. */
  left: { backend: string; command: string }[];
  stamp?: string;
}

export async function changeFactor(ctx: ClusterContext, repo: string, factor: number, who: string, now: () => Date = () => new Date()): Promise<FactorResult> {
  if (!Number.isInteger(factor) || factor < 1) throw new ReplicationFactorError(`the replication factor must be a positive integer, not ${factor}`);
  return ctx.writeLocks.withLock(repo, async (lock) => {
    const state = await ctx.repos.read(repo);
    if (state.gone) throw goneError(repo, state.gone);
    if (state.versions.size === 0) throw RepositoryNotFoundError.missing(repo);
    if (state.frozen || state.writing) throw new RepositoryFrozenError(`repository ${repo} is frozen or has a write to resolve; its factor is changed once it is not`, state.frozen?.reason ?? 'write-interrupted');
    const all = ctx.config.backends.map((b) => b.id);
    const current = state.assigned ? [...state.assigned] : all;
    const known = await candidates(ctx);
    // A backend being re-replicated and its replacement count as one copy, as in the write quorum (copiesOf).
    const copies = (assigned: readonly string[]): number => copiesOf({ assigned: [...assigned], replacing: state.replacing }) ?? assigned.length;
    const pairs = current.length - copies(current);
    let next: string[];
    if (factor >= copies(current)) {
      next = place(repo, factor + pairs, known, { keep: current });
      if (copies(next) < factor) throw new ReplicationFactorError(`cannot place ${factor} copies of ${repo}: only ${copies(next)} enabled, undrained backends on distinct hosts can hold it`);
    } else {
      const { leaders } = leadership(scopedState(state).versions, new Set(state.drift.keys()));
      // Keeping every pair whole first; fewer backends when the ones unassigned break a pair (it then counts twice).
      next = current;
      for (let n = factor + pairs; n >= factor; n--) {
        const gone = new Set(toUnassign(repo, current, n, new Set(leaders), known));
        next = current.filter((b) => !gone.has(b));
        if (copies(next) <= factor) break;
      }
      if (!next.some((b) => leaders.includes(b))) throw new ReplicationFactorError(`lowering ${repo} to ${factor} would leave no current copy assigned`);
    }
    const added = next.filter((b) => !state.assigned?.includes(b));
    const removed = current.filter((b) => !next.includes(b));
    const log = { event: 'factor', user: who, factor, assigned: [...next].sort().join(','), ...(removed.length ? { removed: removed.join(',') } : {}) };
    // A drifted or suspect copy may hold commits no other has: repaired or settled before it is unassigned (REASSIGN refuses too).
    const unsettled = removed.filter((b) => state.drift.has(b) || state.suspect.has(b));
    if (unsettled.length > 0) throw new ReplicationFactorError(unsettledCopies(repo, unsettled));
    const status = await ctx.repos.reassign(repo, lock.token, factor, added, removed, log);
    if (status === 'lock') throw new ReplicationFactorError(`the write lock on ${repo} was lost; run the command again`);
    if (status === 'unsettled') throw new ReplicationFactorError(unsettledCopies(repo, removed));
    const result: FactorResult = { repo, factor, assigned: [...next].sort(), added: added.filter((b) => !current.includes(b)).sort(), removed: removed.sort(), trashed: [], left: [] };
    if (removed.length === 0) return result;
    const stamp = trashStamp(now());
    result.stamp = stamp;
    for (const id of removed) {
      const admin = ctx.backends.admin(id);
      const backend = ctx.config.backends.find((b) => b.id === id)!;
      const byHand = { backend: id, command: trashByHand(backend, repo, stamp, ctx.config.repositories) };
      if (!admin || !ctx.backends.isEnabled(id)) {
        result.left.push(byHand);
        continue;
      }
      try {
        await admin.trash(repo, stamp, lock.signal);
        result.trashed.push(id);
      } catch (err) {
        ctx.log.warn({ repo, backend: id, err: (err as Error).message }, 'could not trash the unassigned copy; it is left (routing ignores it)');
        result.left.push(byHand);
      }
    }
    ctx.log.info({ repo, factor, assigned: result.assigned, added: result.added, removed: result.removed, trashed: result.trashed }, 'replication factor changed');
    return result;
  });
}

function unsettledCopies(repo: string, backends: readonly string[]): string {
  return `cannot unassign ${repo} from ${backends.join(', ')}: a drifted or suspect copy is repaired or settled first (it may hold commits no other copy has); run the command again once \`githa repo ${repo}\` shows it neither drifted nor suspect`;
}
