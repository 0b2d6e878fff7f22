import { goneError, type Adoption } from './adoption.js';
import { copiesOf as assignedCopies } from './assignment.js';
import { noteWrite, type ClusterContext } from './context.js';
import { placeHeld } from './placer.js';
import { leadership } from './routing.js';

export type RecoveryResult =
  /**
   * Every copy had the same checksum: the assigned ones (all without a factor) are leaders at `version`;
   * `assigned`: with `replication.factor`, the assignment written (docs/architecture.md "Placement").
   */
  | { repo: string; status: 'recovered'; version: number; backends: string[]; assigned?: string[] }
  /** The copies differ, but the record still proves which is right (its leaders match it): kept; stale copies catch up. */
  | { repo: string; status: 'intact'; version: number; leaders: string[] }
  /** The copies differ: frozen as ambiguous until an operator promotes one. */
  | { repo: string; status: 'ambiguous'; copies: Record<string, string> }
  /** Not all copies could be compared; nothing was changed. */
  | { repo: string; status: 'skipped'; reason: string };

/**
 * Rebuilds one repository's record from its copies (docs/operations.md
 * "Redis lost or restored from an old snapshot", `githa recover`). Under the write lock, every enabled backend's refs are
 * read; copies with equal checksums become leaders together at a version
 * above anything recorded (under a new epoch, so no githa takes the new
 * record for a regression); differing copies freeze the repository as
 * ambiguous, unless the record still proves which copy is right (every
 * leader's live checksum is its recorded one): then it is kept and the stale
 * copies are caught up as usual. With `replication.factor`, equal copies get
 * an assignment as adoption does (placement among the holders, those the old
 * record assigned first; fewer holders than the factor: placement adds the
 * rest, which replication creates and fills), written with the versions,
 * and only assigned holders lead: a copy on an unassigned backend stays on
 * disk untracked (docs/operations.md "Inventory and recovery after Redis
 * loss"). A backend that cannot be reached leaves the
 * record untouched: it may hold the newest copy. A deleted or renamed
 * repository (a tombstone) is refused with RepositoryGoneError: its copies
 * are leftovers, brought back only by `githa restore`.
 */
export async function recoverRepository(ctx: ClusterContext, copiesOf: Pick<Adoption, 'compareCopies'>, repo: string): Promise<RecoveryResult> {
  return ctx.writeLocks.withLock(repo, async (lock) => {
    const before = await ctx.repos.read(repo);
    if (before.gone) throw goneError(repo, before.gone);
    const { copies, missing, unreachable } = await copiesOf.compareCopies(repo);
    if (unreachable.length > 0) return { repo, status: 'skipped', reason: `unreachable: ${unreachable.join(', ')}` };
    if (copies.size === 0) return { repo, status: 'skipped', reason: 'no backend has it' };
    const sorted = new Map([...copies].sort(([a], [b]) => a.localeCompare(b)));
    if (new Set(copies.values()).size > 1) {
      // Stale copies are no ambiguity while Redis still proves which copy is right.
      const state = await ctx.repos.read(repo);
      const { max, leaders } = leadership(state.versions);
      const proven = leaders.length > 0 && leaders.every((b) => copies.get(b) !== undefined && copies.get(b) === state.checksums.get(b));
      if (proven && !state.frozen) return { repo, status: 'intact', version: max, leaders };
    }
    // A backend removed from the configuration but still assigned may hold the newest version (docs/architecture.md
    // "Re-replication", `orphaned`): githa cannot list it, so a record rebuilt without it could drop that version.
    const configured = new Set(ctx.config.backends.map((b) => b.id));
    const removed = (before.assigned ?? []).filter((b) => !configured.has(b));
    const known = Math.max(0, ...[...copies.keys()].map((b) => before.versions.get(b) ?? 0));
    const ahead = removed.filter((b) => (before.versions.get(b) ?? 0) > known);
    if (ahead.length > 0) return { repo, status: 'skipped', reason: `assigned to ${ahead.join(', ')}, not in the configuration, recorded at a version above every configured copy's: put it back in the configuration first` };
    const detail = [...sorted].map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ') + (missing.length ? ` missing on ${missing.join(',')}` : '');
    // Equal copies: with a factor (the configured one, else the repository's own: `githa repo factor`), the assignment
    // is chosen among their holders (the freeze changes none).
    const own = before.assigned ? assignedCopies(before) : undefined;
    const placed = new Set(copies.values()).size === 1 ? await placeHeld(ctx, repo, [...sorted.keys()], before.assigned, own) : undefined;
    const leading = placed ? new Map([...sorted].filter(([b]) => placed.assigned.includes(b))) : sorted;
    const r = await ctx.repos.recover(repo, lock.token, leading, detail, placed);
    if (r.status === 'ok') {
      const backends = [...leading.keys()];
      ctx.log.warn({ repo, version: r.version, backends, assigned: placed?.assigned }, 'repository record rebuilt from its copies');
      noteWrite(ctx, repo, backends[0]!, r.version);
      return { repo, status: 'recovered', version: r.version, backends, ...(placed ? { assigned: [...placed.assigned].sort() } : {}) };
    }
    if (r.status === 'ambiguous') {
      ctx.log.error({ repo, detail }, 'recovery: copies differ; frozen as ambiguous');
      return { repo, status: 'ambiguous', copies: Object.fromEntries(sorted) };
    }
    return { repo, status: 'skipped', reason: `the write lock was lost (${r.status})` };
  });
}
