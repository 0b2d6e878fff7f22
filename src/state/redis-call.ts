import type { Redis } from 'ioredis';
import { ClusterStateUnavailableError } from '../errors.js';

/**
 * Calling Redis for the state stores (StateStore, OperatorStore): any failure
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
 * Calls the Lua script defined on `redis` as `command` (defineCommand) with its
 * keys and arguments, guarded. With `durable` (replicas > 0) it then waits,
 * with Redis WAIT, until that many replicas hold every write this connection
 * made: Redis replicates asynchronously, so without it a Sentinel failover
 * right after an acknowledged push could promote a replica that never saw the
 * version bump (https://redis.io/docs/latest/commands/wait/). Fewer replicas
 * in time: ClusterStateUnavailableError, so the push is not acknowledged.
 */
export async function runScript<T>(redis: Redis, command: string, keys: string[], args: (string | number)[], durable?: Durability): Promise<T> {
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[command];
  if (!fn) throw new Error(`script ${command} is not defined`);
  const reply = await guarded(() => fn.call(redis, ...keys, ...args));
  if (durable && durable.replicas > 0) await replicated(redis, durable);
  return reply;
}

/** WAIT for `replicas` replicas (see runScript). */
export async function replicated(redis: Redis, durable: Durability): Promise<void> {
  const acked = await guarded(() => redis.wait(durable.replicas, durable.timeoutMs));
  if (acked < durable.replicas) {
    throw new ClusterStateUnavailableError(
      `cluster state unavailable: ${acked} of the ${durable.replicas} Redis replica(s) required (redis.waitReplicas) confirmed the change within ${durable.timeoutMs} ms`,
    );
  }
}

/** Fields (a push-log entry, a marker) as a flat field, value, … argument list. */
export function flattenFields(fields: Record<string, string | number>): string[] {
  return Object.entries(fields).flatMap(([f, v]) => [f, String(v)]);
}
