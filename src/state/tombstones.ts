import { masters, type RedisClient } from './redis.js';
import { ClusterStateUnavailableError } from '../errors.js';
import type { Keys } from './keys.js';
import { guarded } from './redis-call.js';
import { parseGone, type Gone } from './repo-state.js';

/** Escapes Redis glob characters (`*`, `?`, `[`, `]`, `\`) so the prefix matches itself only. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Every tombstone (`repo:{R}:gone`, docs/redis.md) found by a SCAN of the
 * key space: how `githa inventory` tells a deleted or renamed repository
 * whose copy is still on a backend (a leftover) from an untracked one
 * (docs/operations.md "Inventory and recovery after Redis loss"). A SCAN,
 * not an index, so it sees every tombstone whoever wrote it; it is an
 * operator command's cost, never a request's.
 */
export class Tombstones {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async all(pageSize = 1_000): Promise<Map<string, Gone>> {
    const sample = this.keys.gone('\u0000');
    const [head, tail] = sample.split('\u0000') as [string, string];
    const found: string[] = [];
    // A SCAN sees one node's keys: on a Redis Cluster, every master is scanned.
    for (const node of masters(this.redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await guarded(() => node.scan(cursor, 'MATCH', `${globEscape(head)}*${globEscape(tail)}`, 'COUNT', pageSize));
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
    }
    const names = [...new Set(found)].map((k) => k.slice(head.length, k.length - tail.length)).filter((r) => r.length > 0);
    return this.of(names, pageSize);
  }

  /** The tombstones of `names` only (sent together): what `githa status` reads for the copies its listings found unrecorded. */
  async of(names: readonly string[], pageSize = 1_000): Promise<Map<string, Gone>> {
    const out = new Map<string, Gone>();
    for (let i = 0; i < names.length; i += pageSize) {
      const slice = names.slice(i, i + pageSize);
      // Sent together, not as one pipeline: each name's tombstone is in its own slot (Redis Cluster).
      const replies = await Promise.allSettled(slice.map((r) => this.redis.hgetall(this.keys.gone(r))));
      slice.forEach((r, j) => {
        const reply = replies[j]!;
        if (reply.status === 'rejected') throw new ClusterStateUnavailableError('cluster state unavailable: cannot read the tombstones', { cause: reply.reason });
        const gone = parseGone(reply.value);
        if (gone) out.set(r, gone);
      });
    }
    return out;
  }
}
