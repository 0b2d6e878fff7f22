import type { Redis } from 'ioredis';
import { ClusterStateUnavailableError } from '../errors.js';

/**
 * Calling Redis for the state stores (StateStore, OperatorStore): any failure
 * surfaces as ClusterStateUnavailableError, so callers fail closed
 * (design: "Fail closed").
 */

/** Runs `op`; a failure becomes ClusterStateUnavailableError with the original as cause. */
export async function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new ClusterStateUnavailableError('cluster state unavailable: Redis cannot be reached', { cause: err });
  }
}

/** Calls the Lua script defined on `redis` as `command` (defineCommand) with its keys and arguments, guarded. */
export async function runScript<T>(redis: Redis, command: string, keys: string[], args: (string | number)[]): Promise<T> {
  const fn = (redis as unknown as Record<string, (...a: (string | number)[]) => Promise<T>>)[command];
  if (!fn) throw new Error(`script ${command} is not defined`);
  return guarded(() => fn.call(redis, ...keys, ...args));
}

/** Fields (a push-log entry, a marker) as a flat field, value, … argument list. */
export function flattenFields(fields: Record<string, string | number>): string[] {
  return Object.entries(fields).flatMap(([f, v]) => [f, String(v)]);
}
