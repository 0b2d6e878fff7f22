import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/**
 * A connection to the cluster state: one Redis (or a Sentinel-managed master),
 * or a Redis Cluster (docs/deploy.md "Redis Cluster"). Every state part takes
 * either; what differs on a cluster (WAIT on the key's master, a SCAN of every
 * master, no pipeline across slots) is handled in this layer (docs/redis.md
 * "On Redis Cluster").
 */
export type RedisClient = Redis | Cluster;

/**
 * Where the cluster state lives: one Redis URL, a master found through Redis
 * Sentinel (config `redis.url` or `redis.sentinels` + `redis.name`), or the
 * seed nodes of a Redis Cluster (`redis.cluster`). Every connection githa
 * opens (requests, locks, the replicator's XREAD, the override pub/sub, the
 * CLI) is made from this, so all of them follow a failover to the same master.
 */
export interface RedisTarget {
  readonly url?: string | undefined;
  /** "host:port" of each sentinel (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/). */
  readonly sentinels?: readonly string[] | undefined;
  /** "host:port" of some Redis Cluster nodes; the others are found with CLUSTER SLOTS (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/). */
  readonly cluster?: readonly string[] | undefined;
  /** The master's name as the sentinels know it (`sentinel monitor <name> …`). */
  readonly name?: string | undefined;
  /** AUTH of the master and replicas (with `url`, a password in the URL also works; with `cluster`, every node's). */
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

/** Whether `redis` is a Redis Cluster client (ioredis `Cluster`). */
export function isCluster(redis: RedisClient): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/**
 * A Redis client that fails fast instead of queueing: with Redis down a request
 * must get "cluster state unavailable" now, not hang (docs/operations.md "Redis unreachable").
 * It keeps reconnecting in the background; in Sentinel mode each reconnect asks
 * the sentinels for the current master, and `failoverDetector` drops the
 * connection as soon as a sentinel announces +switch-master. A Redis Cluster
 * client follows MOVED/ASK redirections and refreshes its slot map itself.
 */
export function connectRedis(target: string | RedisTarget, opts: { commandTimeoutMs: number }): RedisClient {
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
  let redis: RedisClient;
  if (t.cluster && t.cluster.length > 0) {
    const options: ClusterOptions = {
      lazyConnect: false,
      enableOfflineQueue: false,
      enableReadyCheck: true,
      // Every read and write goes to the slot's master: the state is read right after it is written.
      scaleReads: 'master',
      clusterRetryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
      // A failover or a migrating slot: retried briefly, inside the command timeout.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: Math.min(opts.commandTimeoutMs, 2_000),
      // Node connections: the cluster client reconnects them itself (ioredis ConnectionPool).
      redisOptions: { password: common.password, commandTimeout: common.commandTimeout, connectTimeout: common.connectTimeout, maxRetriesPerRequest: 0 },
    };
    redis = new Cluster(t.cluster.map(parseHostPort), options);
  } else if (t.sentinels && t.sentinels.length > 0) {
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

/** Where Redis is, for messages: the URL without its password, the sentinels and master name, or the cluster's seed nodes. */
export function describeRedis(target: string | RedisTarget): string {
  const t: RedisTarget = typeof target === 'string' ? { url: target } : target;
  if (t.cluster && t.cluster.length > 0) return `Redis Cluster of ${t.cluster.join(', ')}`;
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
export async function redisReady(redis: RedisClient, timeoutMs: number): Promise<boolean> {
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

/**
 * The masters to ask for something no key routes (a SCAN of the key space):
 * every master of a cluster, or the one Redis.
 */
export function masters(redis: RedisClient): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

/** A new client to the same Redis or cluster (a subscriber connection takes no other command). */
export function duplicateClient(redis: RedisClient): RedisClient {
  const copy: RedisClient = isCluster(redis) ? redis.duplicate() : redis.duplicate();
  copy.on('error', () => {});
  return copy;
}
