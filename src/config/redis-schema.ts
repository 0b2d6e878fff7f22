import { z } from 'zod';
import { DEFAULTS } from './defaults.js';

/** A positive whole number. */
const positiveInt = z.number().int().positive();
/** A Redis sentinel or cluster node: "host:port", IPv6 hosts in brackets. */
const sentinelAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, { message: 'expected "host:port"' });

/** `redis` (docs/config.md "Redis", docs/deploy.md). */
export const redisSchema = z
  .object({
    /** One Redis; the default when `sentinels` is absent. */
    url: z.string().regex(/^rediss?:\/\//, { message: 'expected a redis:// URL' }).optional(),
    /** Redis Sentinel instead of `url`: "host:port" of each sentinel (docs/deploy.md#redis-sentinel). */
    sentinels: z.array(sentinelAddress).min(1).optional(),
    /** Redis Cluster instead of `url`: "host:port" of some of its nodes, the others found from them (docs/deploy.md#redis-cluster). */
    cluster: z.array(sentinelAddress).min(1).optional(),
    name: z.string().min(1).default(DEFAULTS.redis.name),
    password: z.string().min(1).optional(),
    sentinelPassword: z.string().min(1).optional(),
    prefix: z.string().regex(/^[A-Za-z0-9_.:-]*$/).default(DEFAULTS.redis.prefix),
    commandTimeoutMs: positiveInt.default(DEFAULTS.redis.commandTimeoutMs),
    /** Absent: 1 with `sentinels` or `cluster` (a failover must not lose an acknowledged push), else 0. */
    waitReplicas: z.number().int().nonnegative().optional(),
    waitTimeoutMs: positiveInt.default(DEFAULTS.redis.waitTimeoutMs),
    /** The explicit opt-out that `waitReplicas: 0` with `sentinels` or `cluster` needs (docs/deploy.md#redis-sentinel). */
    acceptFailoverLoss: z.boolean().default(DEFAULTS.redis.acceptFailoverLoss),
  })
  .strict()
  .refine((r) => [r.url, r.sentinels, r.cluster].filter((x) => x !== undefined).length <= 1, {
    message: 'set one of redis.url, redis.sentinels and redis.cluster',
  })
  .refine((r) => !((r.sentinels || r.cluster) && r.waitReplicas === 0 && !r.acceptFailoverLoss), {
    path: ['waitReplicas'],
    message:
      '0 with redis.sentinels or redis.cluster lets a failover lose acknowledged pushes (Redis replicates asynchronously); use 1 (the default there), or set redis.acceptFailoverLoss: true to run so anyway',
  })
  .transform((r) => {
    const failover = r.sentinels !== undefined || r.cluster !== undefined;
    const waitReplicas = r.waitReplicas ?? (failover ? DEFAULTS.redis.waitReplicasWithSentinels : DEFAULTS.redis.waitReplicas);
    return failover ? { ...r, waitReplicas } : { ...r, waitReplicas, url: r.url ?? DEFAULTS.redis.url };
  })
  .prefault({});
