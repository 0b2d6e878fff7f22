import type { RepositoryIndex } from '../state/repo-index.js';
import type { ClusterContext } from './context.js';

/** How many of the most recently written repositories a returning backend's copies are verified of. */
export const RETURNING_VERIFY_LIMIT = 1_000;

/**
 * A backend is verified before it leads again (docs/architecture.md
 * "Verified copies"): when it comes back up and when an operator enables it,
 * its copies of the most recently written repositories
 * (at most RETURNING_VERIFY_LIMIT) are handed to the copy repairs, which list
 * each copy, compare it with the record and do nothing when they agree. At
 * most `verify.perSecond` copies a second, so a returning backend is not
 * flooded with listings. Reads are checked against the record meanwhile
 * (src/cluster/read-check.ts), and the replicator catches the backend up at
 * once (src/cluster/replicator.ts): this is the sweep for copies no request
 * touches.
 */
export class ReturningCopies {
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void)[] = [];
  private running = false;

  constructor(
    private readonly ctx: Pick<ClusterContext, 'config' | 'log' | 'health' | 'backends' | 'repairs'>,
    private readonly index: Pick<RepositoryIndex, 'recent'>,
    private readonly limit = RETURNING_VERIFY_LIMIT,
  ) {}

  /** From now on, verifies every backend that returns (githa's start is left to the verifier's first sweep). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = [
      this.ctx.health.onChange((id, up) => {
        if (up) this.verify(id, 'up');
      }),
      this.ctx.backends.onReturn((id, how) => {
        if (how === 'enabled') this.verify(id, 'enabled');
      }),
    ];
    // At githa start no copy is listed: every read is checked against the record anyway, and the verifier's
    // first sweep (within verify.intervalMs) lists them all; a burst here would hit every backend at once.
  }

  stop(): void {
    this.running = false;
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }

  /** Number of copies waiting to be handed to the repairs. */
  backlog(): number {
    return this.pending.size;
  }

  /** Queues `backend`'s copies of the most recently written repositories. */
  verify(backend: string, why: 'up' | 'enabled' | 'start'): void {
    if (!this.running) return;
    this.index.recent(this.limit).then(
      (repos) => {
        if (!this.running) return;
        for (const repo of repos) this.pending.add(`${backend}\0${repo}`);
        this.ctx.log.info({ backend, why, copies: repos.length }, 'verifying a returning backend\'s copies against the record');
        this.pump();
      },
      (err: unknown) => this.ctx.log.warn({ backend, why, err: (err as Error).message }, 'could not list the repositories to verify a returning backend'),
    );
  }

  private pump(): void {
    if (this.timer || this.pending.size === 0) return;
    const every = Math.max(1, Math.floor(1000 / Math.max(1, this.ctx.config.verify.perSecond)));
    this.timer = setInterval(() => {
      const next = this.pending.values().next();
      if (next.done) {
        clearInterval(this.timer);
        this.timer = undefined;
        return;
      }
      this.pending.delete(next.value);
      const [backend = '', repo = ''] = next.value.split('\0');
      // A backend disabled again meanwhile is verified when it returns next time.
      if (this.ctx.backends.isEnabled(backend)) this.ctx.repairs.schedule(repo, backend, 'returned');
    }, every);
    this.timer.unref();
  }
}
