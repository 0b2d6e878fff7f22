import type { Redis } from 'ioredis';
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
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async all(pageSize = 1_000): Promise<Map<string, Gone>> {
    const sample = this.keys.gone('\u0000');
    const [head, tail] = sample.split('\u0000') as [string, string];
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await guarded(() => this.redis.scan(cursor, 'MATCH', `${globEscape(head)}*${globEscape(tail)}`, 'COUNT', pageSize));
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    const names = [...new Set(found)].map((k) => k.slice(head.length, k.length - tail.length)).filter((r) => r.length > 0);
    return this.of(names, pageSize);
  }

  /** The tombstones of `names` only (pipelined): what `githa status` reads for the copies its listings found unrecorded. */
  async of(names: readonly string[], pageSize = 1_000): Promise<Map<string, Gone>> {
    const out = new Map<string, Gone>();
    for (let i = 0; i < names.length; i += pageSize) {
      const slice = names.slice(i, i + pageSize);
      const pipe = this.redis.pipeline();
      for (const r of slice) pipe.hgetall(this.keys.gone(r));
      const replies = (await guarded(() => pipe.exec())) ?? [];
      slice.forEach((r, j) => {
        const [err, h] = replies[j] ?? [null, {}];
        if (err) throw new ClusterStateUnavailableError('cluster state unavailable: cannot read the tombstones', { cause: err });
        const gone = parseGone(h as Record<string, string>);
        if (gone) out.set(r, gone);
      });
    }
    return out;
  }
}
