import { isCluster, type RedisClient } from './redis.js';
import { RedisClock } from './clock.js';
import { Keys } from './keys.js';
import { WriteLocks, type LockWaitObserver } from './lock.js';
import { RedisPairLocks } from './pair-locks.js';
import { PushLog } from './push-log.js';
import { guarded, type Durability } from './redis-call.js';
import { PlacementUsage } from './placement-usage.js';
import { RepositoryIndex } from './repo-index.js';
import { RedisRepositoryStore } from './repository-store.js';
import { ScriptRunner } from './script.js';

/** The parts of githa's state in Redis, each with one job (docs/architecture.md "State"). */
export interface StateParts {
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly scripts: ScriptRunner;
  readonly repos: RedisRepositoryStore;
  readonly pushLog: PushLog;
  readonly index: RepositoryIndex;
  readonly clock: RedisClock;
  readonly pairs: RedisPairLocks;
  readonly writeLocks: WriteLocks;
  readonly usage: PlacementUsage;
  ping(): Promise<void>;
}

export interface StateOptions {
  prefix: string;
  /** Push-log entries kept per repository (pushLog.maxLength). */
  logMax: number;
  /** Replicas that must confirm durable changes (redis.waitReplicas). */
  durable?: Durability | undefined;
  locks: { leaseMs: number; waitMs: number };
  onLockWait?: LockWaitObserver | undefined;
  /** The configured backend ids (the work index's "missing" pairs; src/state/scripts/work.ts). */
  backends?: readonly string[] | undefined;
  /** Redis Cluster: the work index sharded per slot (Keys.work). */
  shardWork?: boolean | undefined;
  /** Where a failed lock release is told (it is retried behind). */
  log?: { warn(fields: object, msg: string): void } | undefined;
}

/** Builds every state part on one Redis connection. */
export function openState(redis: RedisClient, opts: StateOptions): StateParts {
  // On Redis Cluster the work index is sharded per slot (docs/redis.md "githa:work"): a script may touch only its repository's slot.
  const keys = new Keys(opts.prefix, opts.shardWork ?? isCluster(redis));
  const scripts = new ScriptRunner(redis, keys, opts.durable, opts.backends ?? []);
  const index = new RepositoryIndex(redis, keys);
  const usage = new PlacementUsage(redis, keys);
  return {
    redis,
    keys,
    scripts,
    index,
    repos: new RedisRepositoryStore(scripts, index, opts.logMax, usage),
    usage,
    pushLog: new PushLog(redis, keys),
    clock: new RedisClock(redis, keys),
    pairs: new RedisPairLocks(scripts),
    writeLocks: new WriteLocks(redis, keys, opts.locks, opts.onLockWait, opts.log),
    async ping() {
      await guarded(() => redis.ping());
    },
  };
}
