import { BackendUnavailableError, NoLeaderError, RepositoryGoneError, RepositoryNotFoundError } from '../errors.js';
import type { Gone } from '../state/repo-state.js';
import type { LentCredentials, RefTip } from '../backends/types.js';
import type { RepoState } from '../state/repo-state.js';
import { refsChecksum } from './checksum.js';
import type { ClusterContext } from './context.js';
import { placeHeld } from './placer.js';
import { leadership } from './routing.js';

/** What a client of a deleted or renamed repository is told (docs/operations.md "Repository lifecycle"). */
export function goneError(repo: string, gone: Gone): RepositoryGoneError {
  switch (gone.kind) {
    case 'deleted':
      return RepositoryGoneError.deleted(repo);
    case 'renamed':
      return RepositoryGoneError.renamed(repo, gone.to ?? '?');
    case 'deleting':
      return RepositoryGoneError.changing(repo, 'deleted');
    case 'renaming':
      return RepositoryGoneError.changing(repo, 'renamed', gone.to);
  }
}

export interface CopyComparison {
  /** Backend → checksum of its copy. */
  copies: Map<string, string>;
  /** Backends without the repository. */
  missing: string[];
  /** Backends that could not be asked (marked down). */
  unreachable: string[];
}

/**
 * How githa comes to know a repository (docs/operations.md "Redis lost or restored from an old snapshot"):
 * a repository without a record is adopted when all its copies agree, frozen
 * as ambiguous when they differ; a record whose leaders contradict each other
 * is frozen as ambiguous too.
 */
export class Adoption {
  constructor(private readonly ctx: Pick<ClusterContext, 'repos' | 'index' | 'backends' | 'health' | 'log' | 'config'>) {}

  /**
   * The state of a repository, adopting it on first sight (all copies agree) or freezing it as ambiguous.
   * `lent`: a passthrough client's credentials for the listing on first sight only (LentCredentials).
   */
  async known(repo: string, state: RepoState, lent?: LentCredentials): Promise<RepoState> {
    if (state.gone) throw goneError(repo, state.gone);
    if (state.frozen) return state;
    if (state.versions.size > 0) return this.consistent(repo, state);
    await this.refuseNested(repo, lent);
    const { copies: found, unreachable } = await this.compareCopies(repo, lent);
    if (found.size === 0 && unreachable.length === 0) throw RepositoryNotFoundError.nowhere(repo);
    if (unreachable.length > 0) {
      throw new NoLeaderError(
        `githa has no record of ${repo} yet and cannot compare its copies while ${unreachable.join(', ')} ${unreachable.length > 1 ? 'are' : 'is'} unreachable`,
      );
    }
    const { repos, log } = this.ctx;
    const distinct = new Set(found.values());
    if (distinct.size === 1) {
      // With a factor, its assignment (docs/architecture.md "Placement"): chosen among the holders.
      const placed = await placeHeld(this.ctx, repo, [...found.keys()]);
      // Only assigned holders are recorded, as recovery does: an equal copy elsewhere stays on disk untracked (it counts nowhere).
      const leading = placed ? new Map([...found].filter(([b]) => placed.assigned.includes(b))) : found;
      if (await repos.adopt(repo, leading, placed)) log.info({ repo, backends: [...leading.keys()], assigned: placed?.assigned }, 'repository adopted');
    } else {
      const sorted = [...found].sort(([a], [b]) => a.localeCompare(b));
      await repos.freeze(repo, 'ambiguous', `copies differ: ${sorted.map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ')}`, sorted.map(([b]) => b));
      log.warn({ repo }, 'repository frozen: copies differ and no version is recorded');
    }
    return repos.read(repo);
  }

  /**
   * A repository inside another one's directory is never adopted
   * (docs/protocol.md "Repository names"): backends are asked for `X`, and a
   * stock git serves any directory that looks like a repository there — a
   * bare `a`'s `a/worktrees/w`, or a directory pushed into a non-bare
   * `a/.git`'s work tree — so `a/b.git` could be a second identity of `a.git`'s
   * copy, or a repository planted by whoever may push to `a`. Refused when a
   * leading part of the name is a repository githa knows, or one a backend
   * serves; answered as not found (the same answer as for a repository the
   * caller may not see).
   */
  private async refuseNested(repo: string, lent?: LentCredentials): Promise<void> {
    const parts = repo.slice(0, -'.git'.length).split('/');
    const prefixes = parts.slice(0, -1).map((_, i) => `${parts.slice(0, i + 1).join('/')}.git`);
    if (prefixes.length === 0) return;
    const known = await this.ctx.index.contains(prefixes);
    let outer = prefixes.find((_, i) => known[i]);
    if (!outer) {
      for (const prefix of prefixes) {
        const { copies } = await this.compareCopies(prefix, lent);
        if (copies.size > 0) {
          outer = prefix;
          break;
        }
      }
    }
    if (outer) {
      this.ctx.log.warn({ repo, outer }, 'refused: the repository lies inside another repository');
      throw RepositoryNotFoundError.missing(repo);
    }
  }

  /**
   * Leaders at one version must hold one checksum. If Redis says otherwise
   * (a bug, or hand-edited state), githa cannot tell which copy is right:
   * frozen as ambiguous.
   */
  private async consistent(repo: string, state: RepoState): Promise<RepoState> {
    const { leaders } = leadership(state.versions);
    const sums = new Set(leaders.map((b) => state.checksums.get(b) ?? ''));
    if (sums.size <= 1) return state;
    const detail = `leaders at one version with different checksums: ${leaders.map((b) => `${b}=${(state.checksums.get(b) ?? '').slice(0, 12)}`).join(' ')}`;
    await this.ctx.repos.freeze(repo, 'ambiguous', detail, leaders);
    this.ctx.log.error({ repo, detail }, 'repository frozen: contradicting checksums');
    return this.ctx.repos.read(repo);
  }

  /** Every enabled backend's checksum of `repo`. */
  async compareCopies(repo: string, lent?: LentCredentials): Promise<CopyComparison> {
    return compareCopiesOf(this.ctx, repo, lent);
  }

}

/**
 * Every enabled backend's checksum of `repo`, listed over the Git protocol;
 * `known` answers a backend's listing when it was read already (a batch of
 * admin listings, src/cluster/batch-copies.ts): null = no repository there,
 * undefined = list it now.
 */
export async function compareCopiesOf(
  ctx: Pick<ClusterContext, 'backends' | 'health'>,
  repo: string,
  lent?: LentCredentials,
  known: (backend: string) => readonly RefTip[] | null | undefined = () => undefined,
): Promise<CopyComparison> {
  const copies = new Map<string, string>();
  const missing: string[] = [];
  const unreachable: string[] = [];
  await Promise.all(
    ctx.backends.activeBackends().map(async (b) => {
      const answer = known(b.id);
      if (answer === null) return void missing.push(b.id);
      try {
        const refs = answer ?? (await ctx.backends.client(b.id).listRefs(repo, undefined, lent));
        if (refs) copies.set(b.id, refsChecksum(refs));
        else missing.push(b.id);
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        ctx.health.markDown(b.id);
        unreachable.push(b.id);
      }
    }),
  );
  return { copies, missing: missing.sort(), unreachable: unreachable.sort() };
}
