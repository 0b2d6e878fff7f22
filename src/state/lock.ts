import type { Redis } from 'ioredis';
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock';
import { ClusterStateUnavailableError, LockLostError, RepositoryBusyError } from '../errors.js';
import type { Keys } from './keys.js';

export interface HeldLock {
  /** The random value stored under the lock key: the guarded scripts compare it. */
  readonly token: string;
  /** Aborted (with LockLostError) when the lease could not be extended: stop before the last byte. */
  readonly signal: AbortSignal;
}

const RETRY_DELAY_MS = 100;

/**
 * The per-repository write lock (Redlock on one Redis). It is an efficiency
 * lock: it queues pushes to one repository. Safety comes from the scripts that
 * check its token before any commit (design: "Safety rules"). The lease is
 * extended while the holder runs, a third of a lease before it ends; the
 * schedule uses performance.now() so wall-clock jumps cannot stretch it.
 */
export class WriteLocks {
  private readonly redlock: Redlock;
  /** Told how long each acquire waited (seconds) and how it ended: acquired, busy, unavailable (metrics). */
  onWait: (seconds: number, outcome: 'acquired' | 'busy' | 'unavailable') => void = () => {};

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly opts: { leaseMs: number; waitMs: number },
  ) {
    this.redlock = new Redlock([redis], {
      retryCount: Math.max(0, Math.ceil(opts.waitMs / RETRY_DELAY_MS)),
      retryDelay: RETRY_DELAY_MS,
      retryJitter: 50,
    });
    this.redlock.on('error', () => {});
  }

  async withLock<T>(repo: string, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
    let lock: Lock;
    const waitStarted = performance.now();
    const waited = (): number => (performance.now() - waitStarted) / 1000;
    try {
      lock = await this.redlock.acquire([this.keys.lock(repo)], this.opts.leaseMs);
    } catch (err) {
      const e = err instanceof ExecutionError ? await this.explain(repo, err) : new ClusterStateUnavailableError('cluster state unavailable: cannot take the write lock', { cause: err });
      this.onWait(waited(), e instanceof RepositoryBusyError ? 'busy' : 'unavailable');
      throw e;
    }
    this.onWait(waited(), 'acquired');
    const controller = new AbortController();
    const lease = this.opts.leaseMs;
    let validUntil = performance.now() + lease;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const schedule = (): void => {
      timer = setTimeout(extend, Math.max(0, validUntil - performance.now() - lease / 3));
    };
    const extend = (): void => {
      const started = performance.now();
      lock
        .extend(lease)
        .then((next) => {
          lock = next;
          validUntil = started + lease;
          if (!stopped) schedule();
        })
        .catch((err: unknown) => {
          if (!stopped) controller.abort(new LockLostError(`the write lock on ${repo} could not be extended`, { cause: err }));
        });
    };
    schedule();
    try {
      return await fn({ token: lock.value, signal: controller.signal });
    } finally {
      stopped = true;
      clearTimeout(timer);
      await lock.release().catch(() => {});
    }
  }

  /** Busy (someone holds the lock) or unavailable (Redis refused to answer). */
  private async explain(repo: string, err: ExecutionError): Promise<Error> {
    const stats = await Promise.allSettled(err.attempts);
    const reasons = stats.flatMap((s) => (s.status === 'fulfilled' ? [...s.value.votesAgainst.values()] : []));
    if (reasons.length > 0 && reasons.every((r) => !(r instanceof ResourceLockedError))) {
      return new ClusterStateUnavailableError('cluster state unavailable: cannot take the write lock', { cause: err });
    }
    return new RepositoryBusyError(
      `repository ${repo} is busy: another push has held it for over ${Math.round(this.opts.waitMs / 1000)} s; try again`,
    );
  }
}
