import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Clock } from '../state/clock.js';
import type { WriteLockService } from '../state/lock.js';
import type { PairLocks } from '../state/pair-locks.js';
import type { RepositoryIndex } from '../state/repo-index.js';
import type { RepositoryStore } from '../state/repository-store.js';
import type { BackendDirectory } from './backends.js';
import type { Health } from './health.js';
import type { Observer } from './observer.js';
import type { CopyRepairs } from './read-check.js';

/**
 * What the cluster's parts (write sessions, copies, the replicator, the
 * resolver, the verifier, adoption, recovery) are built with: narrow
 * interfaces, handed over in their constructors (docs/architecture.md
 * "Cluster"). Unit tests build one from in-memory fakes
 * (test/support/memory-store.ts).
 */
export interface ClusterContext {
  readonly config: Config;
  readonly log: Logger;
  readonly repos: RepositoryStore;
  readonly index: Pick<RepositoryIndex, 'noteWrite' | 'repositories' | 'claimVerify' | 'contains' | 'noteKept' | 'count'>;
  readonly clock: Clock;
  readonly pairs: PairLocks;
  readonly writeLocks: WriteLockService;
  readonly health: Health;
  readonly observer: Observer;
  readonly backends: BackendDirectory;
  /** Repairs a copy found contradicting its record (docs/architecture.md "Verified copies"). */
  readonly repairs: CopyRepairs;
}

/** Tells the index (and so the replicators) that a backend reached a version; a hint, so a failure is only logged. */
export function noteWrite(ctx: Pick<ClusterContext, 'index' | 'log'>, repo: string, backend: string, version: number): void {
  ctx.index.noteWrite(repo, backend, version).catch((err: unknown) => {
    // The next scan finds the stale copies anyway (docs/architecture.md "Background replication").
    ctx.log.debug({ repo, backend, version, err: (err as Error).message }, 'could not note the write for the replicators');
  });
}

/** The repository state as Cluster.state reads it: checked against Redis going back in time. */
export interface StateReader {
  state(repo: string): Promise<import('../state/repo-state.js').RepoState>;
}
