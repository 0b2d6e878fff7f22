import type { RedisClient } from './redis.js';
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock';
import { ClusterStateUnavailableError, LockLostError, RepositoryBusyError } from '../errors.js';
import type { Keys } from './keys.js';
import { Lease, type Held } from './lease.js';
import { LockHandoff } from './lock-notify.js';
import { readRepoState, type RepoState } from './repo-state.js';

export type { Held as HeldLock } from './lease.js';

/** A first waiter's own pace while other githas' releases are heard: it only finds a lease that ran out. */
const RETRY_DELAY_MS = 100;
const RETRY_JITTER_MS = 50;
/** Its pace while they are not (the subscriber is connecting): from a few ms, doubling up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 4;
const MAX_BACKOFF_MS = 50;
/** redlock's own settings for one attempt: githa retries itself, timing each attempt. */
const ONE_ATTEMPT = { retryCount: 0 };

/** Where a lock wait is reported (metrics): seconds waited, and acquired, busy or unavailable. */
export type LockWaitObserver = (seconds: number, outcome: 'acquired' | 'busy' | 'unavailable') => void;

/** How a caller holds the lock (both optional; a fake may ignore them, see WriteLockService.withLock). */
export interface LockOptions {
  /**
   * Return once `fn` has returned, the release going on behind (Cluster.write:
   * the client's acknowledgement does not wait for it; docs/architecture.md
   * "A push"). The lease still retries a failed release until its end, and
   * the failure is logged. When `fn` throws, and without this option,
   * withLock returns after the release's first attempt.
   */
  releaseAfter?: boolean;
  /**
   * Read the repository's state in the same turn as each attempt, right
   * behind it on the connection: granted, `fn` gets the state Redis held
   * with the lock taken (one round trip for both). `whileBusy` sees each
   * state read while another holds the lock and may throw to stop waiting.
   */
  readState?: { whileBusy?: (state: RepoState) => void };
}

/** The write lock as the cluster sees it (an in-memory fake implements it in unit tests). */
export interface WriteLockService {
  /**
   * Runs `fn` holding the repository's write lock; its signal aborts when the
   * lease may be lost. `state` is the state read with the grant when
   * `opts.readState` asked for it and the store could (else undefined: the
   * caller reads it).
   */
  withLock<T>(repo: string, fn: (lock: Held, state?: RepoState) => Promise<T>, opts?: LockOptions): Promise<T>;
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
 * expired the moment it was granted. Waiters are woken by releases
 * (src/state/lock-notify.ts) rather than polling.
 */
export class WriteLocks implements WriteLockService {
  private readonly redlock: Redlock;
  private readonly handoff: LockHandoff;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly opts: { leaseMs: number; waitMs: number },
    private readonly onWait: LockWaitObserver = () => {},
    private readonly log?: { warn(fields: object, msg: string): void },
  ) {
    this.redlock = new Redlock([redis], { retryCount: 0 });
    // Failed attempts surface through acquire's rejection (explained below); the event adds nothing.
    this.redlock.on('error', () => {});
    this.handoff = new LockHandoff(redis, keys.lockReleased());
  }

  async withLock<T>(repo: string, fn: (lock: Held, state?: RepoState) => Promise<T>, opts: LockOptions = {}): Promise<T> {
    const waitStarted = performance.now();
    const waited = (): number => (performance.now() - waitStarted) / 1000;
    let acquired: Granted;
    try {
      acquired = await this.acquire(repo, waitStarted, opts.readState);
    } catch (e) {
      // A wait the caller stopped (readState.whileBusy) is neither.
      if (e instanceof RepositoryBusyError) this.onWait(waited(), 'busy');
      else if (e instanceof ClusterStateUnavailableError) this.onWait(waited(), 'unavailable');
      throw e;
    }
    this.onWait(waited(), 'acquired');
    let lock = acquired.lock;
    const failed = { logged: false };
    const driver = {
      extend: async (ms: number) => {
        lock = await this.redlock.extend(lock, ms, ONE_ATTEMPT);
        return true;
      },
      release: () => this.release(repo, lock, failed),
    };
    const lease = new Lease(lock.value, driver, this.opts.leaseMs, acquired.sentAt, {
      outer: undefined,
      lostError: (cause) => new LockLostError(`the write lock on ${repo} could not be extended`, { cause }),
    });
    let result: T;
    try {
      result = await fn(lease, acquired.state);
    } catch (err) {
      await lease.release();
      throw err;
    }
    // Lease.release never rejects: a failed release is retried behind, until the lease has run out.
    const released = lease.release();
    if (!opts.releaseAfter) await released;
    return result;
  }

  /**
   * One release: redlock's script, and right behind it on the connection the
   * announcement to the other githas (one turn). Once both are answered this
   * githa's next waiter asks, at the same moment as the others hear of it. A
   * lock no longer this holder's (a retry after a reply that was lost, a lease
   * run out) is released already. A failure is logged once per lock; the
   * lease retries it until its end, then Redis lets the lock expire.
   */
  private async release(repo: string, lock: Lock, failed: { logged: boolean }): Promise<void> {
    const released = this.redlock.release(lock, ONE_ATTEMPT);
    const announced = this.handoff.announce(repo).catch(() => {});
    try {
      await released;
    } catch (err) {
      if (!(err instanceof ExecutionError) || !(await this.notHeld(err))) {
        if (!failed.logged) this.log?.warn({ repo, err: (err as Error).message }, 'write lock release failed; retried until its lease runs out');
        failed.logged = true;
        throw err;
      }
    }
    await announced;
    this.handoff.released(repo);
  }

  /** Attempts until granted or `waitMs` passed; the lease counts from the winning attempt's send time. */
  private async acquire(repo: string, waitStarted: number, readState: LockOptions['readState']): Promise<Granted> {
    const key = this.keys.lock(repo);
    const waiter = this.handoff.join(repo);
    let granted = false;
    let backoff = FIRST_BACKOFF_MS;
    try {
      for (;;) {
        if (waiter.first) {
          const sentAt = performance.now();
          const attempt = this.redlock.acquire([key], this.opts.leaseMs, ONE_ATTEMPT);
          // Sent behind the attempt on the same connection; its GET of the lock tells whether the reads ran with the lock taken.
          const read = readState ? this.readBehind(repo, key) : undefined;
          try {
            const lock = await attempt;
            const seen = await read;
            granted = true;
            return { lock, sentAt, ...(seen && seen.holder === lock.value ? { state: seen.state } : {}) };
          } catch (err) {
            if (!(err instanceof ExecutionError) || !(await this.busy(err))) {
              throw new ClusterStateUnavailableError('cluster state unavailable: cannot take the write lock', { cause: err });
            }
            const seen = await read;
            if (seen) readState?.whileBusy?.(seen.state);
          }
        }
        const left = this.opts.waitMs - (performance.now() - waitStarted);
        if (left <= 0) {
          throw new RepositoryBusyError(
            `repository ${repo} is busy: another push has held it for over ${Math.round(this.opts.waitMs / 1000)} s; try again`,
          );
        }
        const pace = this.handoff.listening ? RETRY_DELAY_MS + Math.random() * RETRY_JITTER_MS : backoff;
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
        // A waiter behind others only looks whether it is first when its timer fires: it asks Redis nothing.
        await waiter.next(Math.min(pace, left));
      }
    } finally {
      waiter.leave(granted);
    }
  }

  /** The state and the lock's holder, read in one pipeline sent right behind an attempt (undefined when Redis failed it). */
  private async readBehind(repo: string, key: string): Promise<{ state: RepoState; holder: string | null } | undefined> {
    // Both handled at once (Promise.all): a GET refused while the pipeline is pending must not go unhandled.
    try {
      const [state, holder] = await Promise.all([readRepoState(this.redis, this.keys, repo), this.redis.get(key)]);
      return { state, holder };
    } catch {
      return undefined;
    }
  }

  /** Busy (someone holds the lock), as opposed to unavailable (Redis refused to answer). */
  private async busy(err: ExecutionError): Promise<boolean> {
    const reasons = await this.against(err);
    return reasons.length === 0 || reasons.some((r) => r instanceof ResourceLockedError);
  }

  /** A release Redis answered, finding the lock not this holder's. */
  private async notHeld(err: ExecutionError): Promise<boolean> {
    const reasons = await this.against(err);
    return reasons.length > 0 && reasons.every((r) => r instanceof ResourceLockedError);
  }

  private async against(err: ExecutionError): Promise<Error[]> {
    const stats = await Promise.allSettled(err.attempts);
    return stats.flatMap((s) => (s.status === 'fulfilled' ? [...s.value.votesAgainst.values()] : []));
  }
}

interface Granted {
  lock: Lock;
  sentAt: number;
  /** The state read right behind the winning attempt, when asked for and read with the lock taken. */
  state?: RepoState;
}
