import type { Logger } from 'pino';
import type { RepositoryIndex } from '../state/repo-index.js';
import type { RepositoryStore } from '../state/repository-store.js';

export interface WorkSweepOptions {
  index: Pick<RepositoryIndex, 'repositories' | 'claimPeriodic' | 'swapSweepBackends'>;
  repos: Pick<RepositoryStore, 'reindex'>;
  /** This githa's proxyId: the claim's value (who swept). */
  owner: string;
  /** The configured backend ids: a list other than the last sweep's (a backend added or removed) sweeps at once. */
  backends: readonly string[];
  intervalMs: number;
  log: Logger;
  /** The script runner's shard hints (Redis Cluster): forgotten as a sweep starts, so the sweep names every shard it touches again. */
  hints?: { forgetHints(): void };
  /** Repositories judged per round trip. */
  pageSize?: number;
}

/**
 * The rare full sweep of the work index (docs/architecture.md "Background replication"): judges every known
 * repository again (REINDEX), which repairs what no script could know (a backend added to the config makes every
 * repository miss a copy; on Redis Cluster, a shard hint lost to a crash). Shared: one githa per interval sweeps,
 * the one that takes the `periodic:sweep` claim; a changed backend list sweeps at once.
 */
export class WorkSweep {
  private running: Promise<boolean> | undefined;

  constructor(private readonly opts: WorkSweepOptions) {}

  /** Sweeps when this githa's turn has come (or the backend list changed); true when it swept. One at a time. */
  maybeSweep(): Promise<boolean> {
    this.running ??= this.attempt().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async attempt(): Promise<boolean> {
    const { index, owner, intervalMs } = this.opts;
    const changed = await index.swapSweepBackends([...this.opts.backends].sort().join(' '));
    const claimed = await index.claimPeriodic('sweep', owner, Math.floor(intervalMs * 0.9));
    if (!changed && !claimed) return false;
    const started = performance.now();
    this.opts.hints?.forgetHints();
    let n = 0;
    for await (const page of index.repositories(this.opts.pageSize ?? 500)) {
      await Promise.all(page.map((r) => this.opts.repos.reindex(r)));
      n += page.length;
    }
    this.opts.log.info({ repositories: n, ms: Math.round(performance.now() - started), backendsChanged: changed }, 'work index swept');
    return true;
  }
}
