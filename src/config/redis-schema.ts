import { z } from 'zod';
import { DEFAULTS } from './defaults.js';

/** A positive whole number. */
const positiveInt = z.number().int().positive();
/** A Redis sentinel: "host:port", IPv6 hosts in brackets. */
const sentinelAddress = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, { message: 'expected "host:port"' });

/** `redis` (docs/config.md "Redis", docs/deploy.md). */
export const redisSchema = z
  .object({
    /** One Redis; the default when `sentinels` is absent. */
    url: z.string().regex(/^rediss?:\/\//, { message: 'expected a redis:// URL' }).optional(),
    /** Redis Sentinel instead of `url`: "host:port" of each sentinel (docs/deploy.md#redis-sentinel). */
    sentinels: z.array(sentinelAddress).min(1).optional(),
    name: z.string().min(1).default(DEFAULTS.redis.name),
    password: z.string().min(1).optional(),
    sentinelPassword: z.string().min(1).optional(),
    prefix: z.string().regex(/^[A-Za-z0-9_.:-]*$/).default(DEFAULTS.redis.prefix),
    commandTimeoutMs: positiveInt.default(DEFAULTS.redis.commandTimeoutMs),
    /** Absent: 1 with `sentinels` (a failover must not lose an acknowledged push), else 0. */
    waitReplicas: z.number().int().nonnegative().optional(),
    waitTimeoutMs: positiveInt.default(DEFAULTS.redis.waitTimeoutMs),
    /** The explicit opt-out that `waitReplicas: 0` with `sentinels` needs (docs/deploy.md#redis-sentinel). */
    acceptFailoverLoss: z.boolean().default(DEFAULTS.redis.acceptFailoverLoss),
  })
  .strict()
  .refine((r) => !(r.url && r.sentinels), { message: 'set either redis.url or redis.sentinels, not both' })
  .refine((r) => !(r.sentinels && r.waitReplicas === 0 && !r.acceptFailoverLoss), {
    path: ['waitReplicas'],
    message:
      '0 with redis.sentinels lets a failover lose acknowledged pushes (Redis replicates asynchronously); use 1 (the default with sentinels), or set redis.acceptFailoverLoss: true to run so anyway',
  })
  .transform((r) => {
    const waitReplicas = r.waitReplicas ?? (r.sentinels ? DEFAULTS.redis.waitReplicasWithSentinels : DEFAULTS.redis.waitReplicas);
    return r.sentinels ? { ...r, waitReplicas } : { ...r, waitReplicas, url: r.url ?? DEFAULTS.redis.url };
  })
  .prefault({});
