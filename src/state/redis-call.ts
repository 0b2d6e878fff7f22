import { isCluster, type RedisClient } from './redis.js';
import { ClusterStateUnavailableError } from '../errors.js';

/**
 * Calling Redis for the state parts (src/state/state.ts, OperatorStore): any failure
 * surfaces as ClusterStateUnavailableError, so callers fail closed
 * (docs/operations.md "Redis unreachable").
 */

/** Runs `op`; a failure becomes ClusterStateUnavailableError with the original as cause. */
export async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new ClusterStateUnavailableError('cluster state unavailable: RedisClient cannot be reached', { cause: err });
  }
}

/** Replicas that must hold a change before it counts (config redis.waitReplicas, redis.waitTimeoutMs). */
export interface Durability {
  replicas: number;
  timeoutMs: number;
}

/**
 * WAIT for `replicas` replicas (ScriptRunner, after a durable script):
 * Redis replicates asynchronously, so without it a Sentinel failover right
 * after an acknowledged push could promote a replica that never saw the
 * version bump (https://redis.io/docs/latest/commands/wait/). Fewer replicas
 * in time: ClusterStateUnavailableError, so the push is not acknowledged.
 *
 * WAIT counts the replicas of the connection it is sent on, and covers that
 * connection's writes. On a Redis Cluster it goes to the master of `key`
 * (the key the script just wrote: one of the repository's, all in one slot),
 * on the very connection the script went through: a pipeline of a keyed
 * command and WAIT is routed by the key (docs/deploy.md "Redis Cluster").
 */
export async function replicated(redis: RedisClient, durable: Durability, key: string): Promise<void> {
  const acked = await guarded(async () => {
    if (!isCluster(redis)) return redis.wait(durable.replicas, durable.timeoutMs);
    const rows = (await redis.pipeline().exists(key).wait(durable.replicas, durable.timeoutMs).exec()) ?? [];
    const [err, n] = rows[1] ?? [new Error('no reply to WAIT'), 0];
    if (err) throw err;
    return Number(n);
  });
  if (acked < durable.replicas) {
    throw new ClusterStateUnavailableError(
      `cluster state unavailable: ${acked} of the ${durable.replicas} Redis replica(s) required (redis.waitReplicas) confirmed the change within ${durable.timeoutMs} ms`,
    );
  }
}
