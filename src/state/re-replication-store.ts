/**
 * What re-replication keeps in Redis (docs/architecture.md "Re-replication",
 * docs/redis.md): the two guarded steps on a repository's assignment
 * (src/state/scripts/re-replicate.ts: they keep the `replacing` hash, read
 * with the repository's state), when
 * the re-replicating githa first saw each backend down (`down-since`), and
 * the one paged read of every repository's assignment made per loss event
 * (no per-backend index: a key shared by many repositories could not be
 * written in their scripts on Redis Cluster).
 */
import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { guarded } from './redis-call.js';
import type { RepositoryIndex } from './repo-index.js';
import { readAssignments } from './repo-state.js';
import type { ScriptRunner } from './script.js';
import { ADD_REPLACEMENT, DROP_LOST, type AddReplacementArgs, type DropLostArgs } from './scripts/re-replicate.js';

export interface Assignment {
  repo: string;
  /** Sorted; empty when R has none (every configured backend holds it). */
  assigned: readonly string[];
}

export interface ReReplicationStore {
  /** Every known repository's assignment, a page at a time (one HKEYS per repository, pipelined). */
  assignments(): AsyncIterable<readonly Assignment[]>;
  addReplacement(repo: string, a: Omit<AddReplacementArgs, 'logMax'>): Promise<'ok' | 'changed' | 'gone' | 'busy'>;
  dropLost(repo: string, a: Omit<DropLostArgs, 'logMax'>): Promise<'ok' | 'behind' | 'changed' | 'busy' | 'unsettled'>;
  /** Backend → ms since it has been seen down by the re-replicating githa. */
  downSince(): Promise<Map<string, number>>;
  setDownSince(backend: string, since: number | undefined): Promise<void>;
  /** The configured backend ids (sorted, space-separated) of the last finished re-replication of removed backends; null: none. */
  removedChecked(): Promise<string | null>;
  setRemovedChecked(list: string): Promise<void>;
  /** How many repositories githa knows (ZCARD of the index: O(1)). */
  known(): Promise<number>;
}

export class RedisReReplicationStore implements ReReplicationStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly scripts: ScriptRunner,
    private readonly index: Pick<RepositoryIndex, 'repositories' | 'count'>,
    /** Push-log entries kept per repository (pushLog.maxLength). */
    private readonly logMax: number,
  ) {}

  async *assignments(): AsyncGenerator<Assignment[]> {
    for await (const page of this.index.repositories()) {
      const rows = await readAssignments(this.redis, this.keys, page);
      yield page.map((repo, i) => ({ repo, assigned: rows[i]! }));
    }
  }

  addReplacement(repo: string, a: Omit<AddReplacementArgs, 'logMax'>): Promise<'ok' | 'changed' | 'gone' | 'busy'> {
    return this.scripts.run(ADD_REPLACEMENT, repo, { ...a, logMax: this.logMax });
  }

  dropLost(repo: string, a: Omit<DropLostArgs, 'logMax'>): Promise<'ok' | 'behind' | 'changed' | 'busy' | 'unsettled'> {
    return this.scripts.run(DROP_LOST, repo, { ...a, logMax: this.logMax });
  }

  async downSince(): Promise<Map<string, number>> {
    const h = await guarded(() => this.redis.hgetall(this.keys.downSince()));
    return new Map(Object.entries(h).map(([b, ms]) => [b, Number(ms)]));
  }

  known(): Promise<number> {
    return this.index.count();
  }

  removedChecked(): Promise<string | null> {
    return guarded(() => this.redis.get(this.keys.removedChecked()));
  }

  async setRemovedChecked(list: string): Promise<void> {
    await guarded(() => this.redis.set(this.keys.removedChecked(), list));
  }

  async setDownSince(backend: string, since: number | undefined): Promise<void> {
    const key = this.keys.downSince();
    await guarded(() => (since === undefined ? this.redis.hdel(key, backend) : this.redis.hset(key, backend, String(since))));
  }
}
