import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { guarded, replicated, type Durability } from './redis-call.js';
import { workKeys, wrapLua, wrapsWork } from './scripts/work.js';

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
  /** Work shards this process already named in the hint set (Redis Cluster). */
  private readonly hinted = new Set<string>();

  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
    /** Replicas that must hold durable changes (redis.waitReplicas, redis.waitTimeoutMs). */
    private readonly durability?: Durability,
    /** The configured backend ids, which a repository without an assignment should be on (the work index's "missing" pairs). */
    private readonly backends: readonly string[] = [],
  ) {}

  async run<A extends readonly unknown[], R>(script: ScriptDescriptor<A, R>, repo: string, ...args: A): Promise<R> {
    // Every script that changes a record keeps the work index (src/state/scripts/work.ts): its keys and arguments appended.
    const wrap = wrapsWork(script.name);
    const keys = [...script.keys(this.keys, repo, ...args), ...(wrap ? workKeys(this.keys, repo) : [])];
    if (!this.defined.has(script.name)) {
      this.redis.defineCommand(script.name, { numberOfKeys: keys.length, lua: wrap ? wrapLua(script.lua) : script.lua });
      this.defined.add(script.name);
    }
    const fn = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[script.name]!;
    const argv = [...script.args(...args), ...(wrap ? [Date.now(), this.backends.join(' ')] : [])];
    const reply = await guarded(() => fn.call(this.redis, ...keys, ...argv));
    if (wrap && this.keys.shardWork) await this.hint(this.keys.work(repo));
    if (script.durable && this.durability && this.durability.replicas > 0) await replicated(this.redis, this.durability, keys[0]!);
    return script.parse(reply);
  }

  /**
   * Forgets which shards were named (the full sweep calls it as it starts,
   * src/cluster/work-sweep.ts): the scripts it runs then name each shard they
   * touch again, so a hint set member lost meanwhile (a Redis Cluster failover
   * before the SADD reached a replica, a crash) is repaired; once per process
   * would never re-add it.
   */
  forgetHints(): void {
    this.hinted.clear();
  }

  /** Redis Cluster: names the shard in the hint set once per process, until the next sweep (see forgetHints). */
  private async hint(shard: string): Promise<void> {
    if (this.hinted.has(shard)) return;
    await guarded(() => this.redis.sadd(this.keys.workShards(), shard));
    this.hinted.add(shard);
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

/**
 * Lua, right after a push-log XADD into `key`: a stream XADD just created
 * holds one entry in a listpack node Redis 7 pre-sized to 4 KB
 * (`stream-node-max-bytes`), ~4.7 KB of memory for ~100 bytes of entry, in
 * every repository (docs/redis.md "The push log"). DUMP and RESTORE rebuild it
 * at its real size (~0.7 KB); later XADDs grow that node by reallocation, so
 * the log stays compact until a node fills. Once per log (XLEN 1); `pcall`: a
 * Redis whose ACL denies DUMP/RESTORE keeps the large node, the write goes on.
 */
export function compactNewLog(key: string): string {
  return `if redis.call('XLEN', ${key}) == 1 then local d = redis.pcall('DUMP', ${key}) if type(d) == 'string' then redis.pcall('RESTORE', ${key}, 0, d, 'REPLACE') end end`;
}
