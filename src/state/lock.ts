import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock';
import { ClusterStateUnavailableError, LockLostError, RepositoryBusyError } from '../errors.js';
import type { Keys } from './keys.js';
import { Lease, type Held } from './lease.js';

export type { Held as HeldLock } from './lease.js';

const RETRY_DELAY_MS = 100;
const RETRY_JITTER_MS = 50;
/** redlock's own settings for one attempt: githa retries itself, timing each attempt. */
const ONE_ATTEMPT = { retryCount: 0 };

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
 * release as its driver, as redlock's own `using()` does. githa makes the
 * attempts itself, one redlock attempt each: redlock's own retries count the
 * lease from the first attempt, so a lock won after a long wait would look
 * expired the moment it was granted.
 */
export class WriteLocks implements WriteLockService {
  private readonly redlock: Redlock;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
    private readonly opts: { leaseMs: number; waitMs: number },
    private readonly onWait: LockWaitObserver = () => {},
  ) {
    this.redlock = new Redlock([redis], { retryCount: 0 });
    // Failed attempts surface through acquire's rejection (explained below); the event adds nothing.
    this.redlock.on('error', () => {});
  }

  async withLock<T>(repo: string, fn: (lock: Held) => Promise<T>): Promise<T> {
    const waitStarted = performance.now();
    const waited = (): number => (performance.now() - waitStarted) / 1000;
    let acquired: { lock: Lock; sentAt: number };
    try {
      acquired = await this.acquire(repo, waitStarted);
    } catch (e) {
      this.onWait(waited(), e instanceof RepositoryBusyError ? 'busy' : 'unavailable');
      throw e;
    }
    this.onWait(waited(), 'acquired');
    let lock = acquired.lock;
    const driver = {
      extend: async (ms: number) => {
        lock = await this.redlock.extend(lock, ms, ONE_ATTEMPT);
        return true;
      },
      release: async () => {
        await this.redlock.release(lock, ONE_ATTEMPT);
      },
    };
    const lease = new Lease(lock.value, driver, this.opts.leaseMs, acquired.sentAt, {
      outer: undefined,
      lostError: (cause) => new LockLostError(`the write lock on ${repo} could not be extended`, { cause }),
    });
    try {
      return await fn(lease);
    } finally {
      await lease.release();
    }
  }

  /** Attempts until granted or `waitMs` passed; the lease counts from the winning attempt's send time. */
  private async acquire(repo: string, waitStarted: number): Promise<{ lock: Lock; sentAt: number }> {
    const key = this.keys.lock(repo);
    for (;;) {
      const sentAt = performance.now();
      try {
        return { lock: await this.redlock.acquire([key], this.opts.leaseMs, ONE_ATTEMPT), sentAt };
      } catch (err) {
        if (!(err instanceof ExecutionError) || !(await this.busy(err))) {
          throw new ClusterStateUnavailableError('cluster state unavailable: cannot take the write lock', { cause: err });
        }
        if (performance.now() - waitStarted + RETRY_DELAY_MS > this.opts.waitMs) {
          throw new RepositoryBusyError(
            `repository ${repo} is busy: another push has held it for over ${Math.round(this.opts.waitMs / 1000)} s; try again`,
          );
        }
        await sleep(RETRY_DELAY_MS + Math.random() * RETRY_JITTER_MS);
      }
    }
  }

  /** Busy (someone holds the lock), as opposed to unavailable (Redis refused to answer). */
  private async busy(err: ExecutionError): Promise<boolean> {
    const stats = await Promise.allSettled(err.attempts);
    const reasons = stats.flatMap((s) => (s.status === 'fulfilled' ? [...s.value.votesAgainst.values()] : []));
    return reasons.length === 0 || reasons.some((r) => r instanceof ResourceLockedError);
  }
}
