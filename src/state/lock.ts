import type { Redis } from 'ioredis';
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock';
import { ClusterStateUnavailableError, RepositoryBusyError } from '../errors.js';
import type { Keys } from './keys.js';
import { Lease, type Held } from './lease.js';

export type { Held as HeldLock } from './lease.js';

const RETRY_DELAY_MS = 100;

/** Where a lock wait is reported (metrics): seconds waited, and acquired, busy or unavailable. */
export type LockWaitObserver = (seconds: number, outcome: 'acquired' | 'busy' | 'unavailable') => void;

/** The write lock as the cluster sees it (an in-memory fake implements it in unit tests). */
export interface WriteLockService {
  /** Runs `fn` holding the repository's write lock; its signal aborts when the lease may be lost. */
  withLock<T>(repo: string, fn: (lock: Held) => Promise<T>): Promise<T>;
}

/**
 * The per-repository write lock (Redlock on one Redis; docs/architecture.md
 * "Leases"). It is an efficiency lock: it queues pushes to one repository.
 * Safety comes from the scripts that check its token before any commit. The
 * lease follows the one discipline of Lease (renewal on a performance.now()
 * schedule, abort when lost, release retried), with redlock's extend and
 * release as its driver, as redlock's own `using()` does.
 */
export class WriteLocks implements WriteLockService {
  private readonly redlock: Redlock;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly opts: { leaseMs: number; waitMs: number },
    private readonly onWait: LockWaitObserver = () => {},
  ) {
    this.redlock = new Redlock([redis], {
      retryCount: Math.max(0, Math.ceil(opts.waitMs / RETRY_DELAY_MS)),
      retryDelay: RETRY_DELAY_MS,
      retryJitter: 50,
    });
    // Failed attempts surface through acquire's rejection (explained below); the event adds nothing.
    this.redlock.on('error', () => {});
  }

  async withLock<T>(repo: string, fn: (lock: Held) => Promise<T>): Promise<T> {
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
    const driver = {
      extend: async (ms: number) => {
        lock = await lock.extend(ms);
        return true;
      },
      release: async () => {
        await lock.release();
      },
    };
    // redlock's expiration counts from before its last attempt was sent (less clock drift): the lease as granted.
    const grantedAt = performance.now() + (lock.expiration - Date.now()) - this.opts.leaseMs;
    const lease = new Lease(lock.value, driver, this.opts.leaseMs, `write lock on ${repo}`, undefined, grantedAt);
    try {
      return await fn(lease);
    } finally {
      await lease.release();
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
