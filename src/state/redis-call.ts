import type { Redis } from 'ioredis';
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
    throw new ClusterStateUnavailableError('cluster state unavailable: Redis cannot be reached', { cause: err });
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
 */
export async function replicated(redis: Redis, durable: Durability): Promise<void> {
  const acked = await guarded(() => redis.wait(durable.replicas, durable.timeoutMs));
  if (acked < durable.replicas) {
    throw new ClusterStateUnavailableError(
      `cluster state unavailable: ${acked} of the ${durable.replicas} Redis replica(s) required (redis.waitReplicas) confirmed the change within ${durable.timeoutMs} ms`,
    );
  }
}
