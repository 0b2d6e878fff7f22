import { Redis } from 'ioredis';

/**
 * A Redis client that fails fast instead of queueing: with Redis down a request
 * must get "cluster state unavailable" now, not hang (design: "Fail closed").
 * It keeps reconnecting in the background.
 */
export function connectRedis(url: string, opts: { commandTimeoutMs: number }): Redis {
  const redis = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.min(opts.commandTimeoutMs, 5_000),
    retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    enableReadyCheck: true,
  });
  // Errors surface on the commands; without a listener ioredis would print them.
  redis.on('error', () => {});
  return redis;
}

/** Waits until the client is ready, or the timeout passes (then resolves false). */
export async function redisReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    redis.once('ready', onReady);
  });
}
