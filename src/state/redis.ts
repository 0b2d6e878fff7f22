import { Redis, type RedisOptions } from 'ioredis';

/**
 * Where the cluster state lives: one Redis URL, or a master found through Redis
 * Sentinel (config `redis.url` or `redis.sentinels` + `redis.name`). Every
 * connection githa opens (requests, locks, the replicator's XREAD, the
 * override pub/sub, the CLI) is made from this, so all of them follow a
 * failover to the same master.
 */
export interface RedisTarget {
  readonly url?: string | undefined;
  /** "host:port" of each sentinel (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/). */
  readonly sentinels?: readonly string[] | undefined;
  /** The master's name as the sentinels know it (`sentinel monitor <name> …`). */
  readonly name?: string | undefined;
  /** AUTH of the master and replicas (with `url`, a password in the URL also works). */
  readonly password?: string | undefined;
  /** AUTH of the sentinels themselves (`requirepass` in sentinel.conf). */
  readonly sentinelPassword?: string | undefined;
}

/** "host:port" or "[v6]:port" → { host, port }. */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(address);
  if (!m) throw new Error(`expected "host:port", got ${JSON.stringify(address)}`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/**
 * A Redis client that fails fast instead of queueing: with Redis down a request
 * must get "cluster state unavailable" now, not hang (docs/operations.md "Redis unreachable").
 * It keeps reconnecting in the background; in Sentinel mode each reconnect asks
 * the sentinels for the current master, and `failoverDetector` drops the
 * connection as soon as a sentinel announces +switch-master.
 */
export function connectRedis(target: string | RedisTarget, opts: { commandTimeoutMs: number }): Redis {
  const t: RedisTarget = typeof target === 'string' ? { url: target } : target;
  const common: RedisOptions = {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: Math.min(opts.commandTimeoutMs, 5_000),
    retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    enableReadyCheck: true,
    ...(t.password !== undefined ? { password: t.password } : {}),
  };
  let redis: Redis;
  if (t.sentinels && t.sentinels.length > 0) {
    redis = new Redis({
      ...common,
      sentinels: t.sentinels.map(parseHostPort),
      name: t.name ?? 'mymaster',
      role: 'master',
      ...(t.sentinelPassword !== undefined ? { sentinelPassword: t.sentinelPassword } : {}),
      sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
      sentinelCommandTimeout: Math.min(opts.commandTimeoutMs, 2_000),
      failoverDetector: true,
    });
  } else {
    redis = new Redis(t.url ?? 'redis://127.0.0.1:6379', common);
  }
  // Errors surface on the commands; without a listener ioredis would print them.
  redis.on('error', () => {});
  return redis;
}

/** Where Redis is, for messages: the URL without its password, or the sentinels and master name. */
export function describeRedis(target: string | RedisTarget): string {
  const t: RedisTarget = typeof target === 'string' ? { url: target } : target;
  if (t.sentinels && t.sentinels.length > 0) return `master ${t.name ?? 'mymaster'} of sentinels ${t.sentinels.join(', ')}`;
  try {
    const u = new URL(t.url ?? '');
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis';
  }
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
