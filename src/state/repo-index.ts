import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { guarded } from './redis-call.js';

const EVENTS_MAX = 100_000;

/**
 * The index of known repositories (`repos`, scored by last write) and the
 * replicators' event stream (`events`): hints for scans and replication, not
 * guarded state (docs/redis.md).
 */
export class RepositoryIndex {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Every known repository, in pages (the replicator's and verifier's scans). */
  async *repositories(pageSize = 500): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, flat] = await guarded(() => this.redis.zscan(this.keys.repos(), cursor, 'COUNT', pageSize));
      cursor = next;
      const names = flat.filter((_, i) => i % 2 === 0);
      if (names.length > 0) yield names;
    } while (cursor !== '0');
  }

  /**
   * The repositories that need work (src/state/scripts/work.ts), in pages: what the replicator's scan reads. On
   * Redis Cluster every shard the hint set names (an empty one costs one ZSCAN round trip).
   */
  async *work(pageSize = 500): AsyncGenerator<string[]> {
    for (const key of await this.workKeys()) {
      let cursor = '0';
      do {
        const [next, flat] = await guarded(() => this.redis.zscan(key, cursor, 'COUNT', pageSize));
        cursor = next;
        const names = flat.filter((_, i) => i % 2 === 0);
        if (names.length > 0) yield names;
      } while (cursor !== '0');
    }
  }

  /** How many repositories need work, and how many are known (ZCARDs: the cheap gauges of /metrics). */
  async sizes(): Promise<{ work: number; repositories: number }> {
    const keys = await this.workKeys();
    const [repositories, ...work] = await guarded(() => Promise.all([this.redis.zcard(this.keys.repos()), ...keys.map((k) => this.redis.zcard(k))]));
    return { repositories: repositories!, work: work.reduce((a, b) => a + b, 0) };
  }

  private async workKeys(): Promise<string[]> {
    if (!this.keys.shardWork) return [this.keys.work('')];
    return guarded(() => this.redis.smembers(this.keys.workShards()));
  }

  /**
   * Takes the claim on a shared periodic task for `ttlMs` (docs/architecture.md "Background replication"): one githa
   * runs it this interval, the others skip it. Never released: it lapses, and the next interval's first asker takes it.
   */
  async claimPeriodic(task: string, owner: string, ttlMs: number): Promise<boolean> {
    const r = await guarded(() => this.redis.set(this.keys.periodic(task), owner, 'PX', ttlMs, 'NX'));
    return r === 'OK';
  }

  /** Stores the configured backend list the sweep judged with; true when it differs from the one stored (or none was). */
  async swapSweepBackends(list: string): Promise<boolean> {
    const before = await guarded(() => this.redis.set(this.keys.periodic('sweep-backends'), list, 'GET'));
    return before !== list;
  }

  /** The `limit` most recently written repositories, newest first. */
  async recent(limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    return guarded(() => this.redis.zrevrange(this.keys.repos(), 0, limit - 1));
  }

  /** How many repositories githa knows (ZCARD: O(1), for /status's totals). */
  async count(): Promise<number> {
    return guarded(() => this.redis.zcard(this.keys.repos()));
  }

  /** One page of the index, most recently written first (ZREVRANGE: O(log N + count), for a /status page). */
  async newest(offset: number, count: number): Promise<Array<{ repo: string; lastWrite: number }>> {
    if (count <= 0) return [];
    const flat = await guarded(() => this.redis.zrevrange(this.keys.repos(), offset, offset + count - 1, 'WITHSCORES'));
    const page: Array<{ repo: string; lastWrite: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) page.push({ repo: flat[i]!, lastWrite: Number(flat[i + 1]) });
    return page;
  }

  /** The last write (ms since epoch, 0 when never) of each repository, from the repos scores. */
  async lastWrites(repos: readonly string[]): Promise<number[]> {
    if (repos.length === 0) return [];
    const scores = await guarded(() => this.redis.zmscore(this.keys.repos(), ...repos));
    return scores.map((s) => Number(s ?? 0));
  }

  /** Whether each repository is in the index (known to githa). */
  async contains(repos: readonly string[]): Promise<boolean[]> {
    if (repos.length === 0) return [];
    const scores = await guarded(() => this.redis.zmscore(this.keys.repos(), ...repos));
    return scores.map((s) => s !== null);
  }

  /**
   * A version reached a backend: bump the repository's score and tell the
   * replicators. Two commands sent together, not one pipeline: the two keys
   * live in different slots, on a Redis Cluster on different masters (docs/redis.md).
   */
  async noteWrite(repo: string, backend: string, version: number): Promise<void> {
    await guarded(() =>
      Promise.all([
        this.redis.zadd(this.keys.repos(), Date.now(), repo),
        this.redis.xadd(this.keys.events(), 'MAXLEN', '~', EVENTS_MAX, '*', 'repo', repo, 'version', String(version), 'backend', backend),
      ]),
    );
  }

  async noteRepository(repo: string, score: number): Promise<void> {
    await guarded(() => this.redis.zadd(this.keys.repos(), 'NX', score, repo));
  }

  /** The repository was deleted or renamed away (src/state/scripts/lifecycle.ts RETIRE): no scan looks at it any more. */
  async forget(repo: string): Promise<void> {
    await guarded(() => this.redis.zrem(this.keys.repos(), repo));
  }

  /** The repairer kept refs in `repo` (refs/githa/kept/…): a hint for `githa dataloss`, which checks a leader's listing. */
  async noteKept(repo: string): Promise<void> {
    await guarded(() => this.redis.zadd(this.keys.kept(), Date.now(), repo));
  }

  /** Repositories noted by noteKept, oldest first. */
  async keptRepositories(): Promise<string[]> {
    return guarded(() => this.redis.zrange(this.keys.kept(), '0', '-1'));
  }

  /** `repo` holds no kept ref any more (an operator dropped them). */
  async forgetKept(repo: string): Promise<void> {
    await guarded(() => this.redis.zrem(this.keys.kept(), repo));
  }

  /** Takes a short per-repository claim so one githa verifies a repository per interval (it expires; never released). */
  async claimVerify(repo: string, ttlMs: number): Promise<boolean> {
    const r = await guarded(() => this.redis.set(this.keys.verifyLock(repo), this.keys.prefix, 'PX', ttlMs, 'NX'));
    return r === 'OK';
  }
}
