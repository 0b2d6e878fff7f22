import type { Keys } from './keys.js';
import { guarded } from './redis-call.js';
import { isCluster, type RedisClient } from './redis.js';

/** Time as Redis tells it. */
export interface Clock {
  /** Now, on the Redis that holds `repo`'s keys when given (a Redis Cluster's masters keep clocks of their own). */
  now(repo?: string): Promise<number>;
}

/** Redis's clock in ms: marker heartbeats are written with it, so their ages are measured with it too. */
export class RedisClock implements Clock {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys?: Keys,
  ) {}

  async now(repo?: string): Promise<number> {
    const [sec, usec] = await guarded(async () => {
      const redis = this.redis;
      if (!isCluster(redis) || repo === undefined || !this.keys) return redis.time();
      // Heartbeats are written with the TIME of the master of repo's slot (src/state/scripts/write.ts): ask that master, routed by a key of repo's.
      const rows = (await redis.pipeline().exists(this.keys.writing(repo)).time().exec()) ?? [];
      const [err, value] = rows[1] ?? [new Error('no reply to TIME'), undefined];
      if (err) throw err;
      return value as [string, string];
    });
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }
}
