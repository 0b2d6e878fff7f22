import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { guarded, replicated, type Durability } from './redis-call.js';

/**
 * A Lua script as a typed descriptor, as ioredis's own `lib/Script.ts` keeps
 * them: its `name`, its source, the keys it touches (derived from the
 * repository, so the key count can never drift from a call site) and how its
 * reply is read. Every script touches keys of one repository only (one hash
 * slot, so it runs on Redis Cluster too: docs/redis.md).
 */
export interface ScriptDescriptor<A extends readonly unknown[], R> {
  /** Unique; the ioredis command name (defineCommand: EVALSHA, EVAL on NOSCRIPT). */
  readonly name: string;
  readonly lua: string;
  keys(k: Keys, repo: string, ...args: A): string[];
  args(...args: A): (string | number)[];
  parse(reply: unknown): R;
  /** A change that must reach redis.waitReplicas replicas before it counts (docs/deploy.md). */
  readonly durable?: boolean;
}

/** The reply of a script as an array (scripts answer `{status, …}`). */
export function replyOf(reply: unknown): unknown[] {
  return Array.isArray(reply) ? reply : [reply];
}

/**
 * Runs descriptors on one Redis connection. Each is defined once with
 * ioredis `defineCommand` (its key count taken from the descriptor), so every
 * call is an EVALSHA with ioredis's NOSCRIPT fallback. Failures surface as
 * ClusterStateUnavailableError (fail closed: docs/architecture.md).
 */
export class ScriptRunner {
  private readonly defined = new Set<string>();

  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
    /** Replicas that must hold durable changes (redis.waitReplicas, redis.waitTimeoutMs). */
    private readonly durability?: Durability,
  ) {}

  async run<A extends readonly unknown[], R>(script: ScriptDescriptor<A, R>, repo: string, ...args: A): Promise<R> {
    const keys = script.keys(this.keys, repo, ...args);
    if (!this.defined.has(script.name)) {
      this.redis.defineCommand(script.name, { numberOfKeys: keys.length, lua: script.lua });
      this.defined.add(script.name);
    }
    const fn = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[script.name]!;
    const reply = await guarded(() => fn.call(this.redis, ...keys, ...script.args(...args)));
    if (script.durable && this.durability && this.durability.replicas > 0) await replicated(this.redis, this.durability, keys[0]!);
    return script.parse(reply);
  }
}

/** Lua: `local <name> = 1 + the highest version in the hash <key>` (every new version is above all recorded ones). */
export function nextVersion(name: string, key: string): string {
  return `local ${name} = 0
for _, v in ipairs(redis.call('HVALS', ${key})) do
  local n = tonumber(v)
  if n and n > ${name} then ${name} = n end
end
${name} = ${name} + 1`;
}

/** Fields (a push-log entry, a marker) as a flat field, value, … argument list. */
export function flattenFields(fields: Record<string, string | number>): string[] {
  return Object.entries(fields).flatMap(([f, v]) => [f, String(v)]);
}
