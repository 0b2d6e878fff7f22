import { BackendAdminError, BackendUnavailableError } from '../errors.js';
import type { AdminRefs } from '../backends/types.js';
import { compareCopiesOf, type Adoption, type CopyComparison } from './adoption.js';
import type { ClusterContext } from './context.js';

/**
 * The copies of many untracked repositories compared at once, for `githa
 * inventory --all` (docs/architecture.md "Adoption in batches"): each backend
 * with an admin account lists the refs of a whole batch in one call
 * (RepositoryAdmin.refs: `git for-each-ref` on the backend, no `git
 * http-backend` or upload-pack per repository); the others, and any name the
 * admin answered `ask` for, are listed over the Git protocol as before
 * (Adoption.compareCopies). The checksum is the protocol listing's
 * (refsChecksum: every ref except HEAD, no peeled lines).
 *
 * The batch is read before each repository's write lock is taken. What
 * githa writes to a repository needs its record, so `compareCopies`, called
 * under the lock by recoverRepository, serves the batch only while the
 * repository still has no record and no tombstone; otherwise (another githa
 * adopted it meanwhile, and may have written) it lists afresh.
 */
export class BatchCopies implements Pick<Adoption, 'compareCopies'> {
  /** Backend → its answers for this batch (a backend whose call failed has none: the protocol path). */
  private readonly listed = new Map<string, AdminRefs>();

  constructor(
    private readonly ctx: Pick<ClusterContext, 'repos' | 'backends' | 'health' | 'log'>,
    private readonly fallback: Pick<Adoption, 'compareCopies'>,
  ) {}

  /** Reads the refs of `repos` from every enabled backend with an admin account, one call each, together. */
  async load(repos: readonly string[], signal?: AbortSignal): Promise<void> {
    this.listed.clear();
    await Promise.all(
      this.ctx.backends.activeBackends().map(async (b) => {
        const admin = this.ctx.backends.admin(b.id);
        if (!admin?.refs) return;
        try {
          this.listed.set(b.id, await admin.refs(repos, signal));
        } catch (err) {
          if (!(err instanceof BackendAdminError || err instanceof BackendUnavailableError)) throw err;
          this.ctx.log.warn({ backend: b.id, err: (err as Error).message }, 'adoption: the batched ref listing failed; listing over the Git protocol');
        }
      }),
    );
  }

  async compareCopies(repo: string): Promise<CopyComparison> {
    const state = await this.ctx.repos.read(repo);
    if (state.versions.size > 0 || state.gone) return this.fallback.compareCopies(repo);
    return compareCopiesOf(this.ctx, repo, undefined, (backend) => this.listed.get(backend)?.get(repo));
  }
}
