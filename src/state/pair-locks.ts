import { randomUUID } from 'node:crypto';
import { CatchUpError } from '../errors.js';
import { ACQUIRE_PAIR, EXTEND_PAIR, FENCE_PAIR, RELEASE_PAIR, type Standing } from './scripts/copy.js';
import { Lease } from './lease.js';
import type { ScriptRunner } from './script.js';

export type { Standing } from './scripts/copy.js';

/** A held copy lock of one (repository, backend). */
export interface PairLease {
  readonly lease: Lease;
  /** The target's record as read when the lock was taken. */
  readonly standing: Standing;
}

/**
 * The per-(repository, backend) copy locks (docs/redis.md `sync:{R}:B`): one
 * githa copies into one backend's copy at a time, and a copy is fenced
 * against the record before its push (docs/architecture.md "Catch-up relay").
 */
export interface PairLocks {
  /** The lock and the target's standing read in the same turn; null when another copy holds it. */
  acquire(repo: string, backend: string, ttlMs: number, outer?: AbortSignal): Promise<PairLease | null>;
  /**
   * Checks that `held` is still this holder's, extends it, and re-reads the
   * target's standing in one turn; null (and the lease marked lost) when the
   * lock is gone.
   */
  fence(repo: string, backend: string, held: Lease, ttlMs: number): Promise<Standing | null>;
}

export class RedisPairLocks implements PairLocks {
  constructor(private readonly scripts: ScriptRunner) {}

  async acquire(repo: string, backend: string, ttlMs: number, outer?: AbortSignal): Promise<PairLease | null> {
    const token = randomUUID();
    const sentAt = performance.now();
    const standing = await this.scripts.run(ACQUIRE_PAIR, repo, backend, token, ttlMs);
    if (!standing) return null;
    const driver = {
      extend: (ms: number) => this.scripts.run(EXTEND_PAIR, repo, backend, token, ms),
      release: async () => {
        await this.scripts.run(RELEASE_PAIR, repo, backend, token);
      },
    };
    const lease = new Lease(token, driver, ttlMs, sentAt, {
      outer,
      lostError: (cause) => new CatchUpError(`the copy lock on ${repo} → ${backend} expired`, { cause, reason: 'lock-lost' }),
    });
    return { lease, standing };
  }

  async fence(repo: string, backend: string, held: Lease, ttlMs: number): Promise<Standing | null> {
    const sentAt = performance.now();
    const standing = await this.scripts.run(FENCE_PAIR, repo, backend, held.token, ttlMs);
    if (!standing) {
      held.lost(new Error('the fence found the copy lock gone'));
      return null;
    }
    held.renewed(sentAt);
    return standing;
  }
}
