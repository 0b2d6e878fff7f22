import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { guarded } from './redis-call.js';

/**
 * What placement reads of each backend's use (docs/redis.md `placement`,
 * docs/architecture.md "Placement"): one hash, `repos:<backend>` (the
 * repositories assigned to it) and `bytes:<backend>` (the pack bytes pushed
 * to it through githa, approximate). It is shared by every repository, so it
 * is never written inside a repository's script (Redis Cluster: one slot per
 * script); it is a hint written right after the script that changed an
 * assignment, and `recount` rebuilds the repository counts from the
 * assignments themselves.
 */

export interface BackendUsage {
  readonly repos: number;
  readonly bytes: number;
}

export interface UsageDelta {
  readonly backend: string;
  readonly repos?: number;
  readonly bytes?: number;
}

export class PlacementUsage {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async read(): Promise<Map<string, BackendUsage>> {
    const h = await guarded(() => this.redis.hgetall(this.keys.placement()));
    const out = new Map<string, { repos: number; bytes: number }>();
    for (const [field, value] of Object.entries(h)) {
      const colon = field.indexOf(':');
      const kind = field.slice(0, colon);
      const backend = field.slice(colon + 1);
      if (colon < 0 || (kind !== 'repos' && kind !== 'bytes')) continue;
      const u = out.get(backend) ?? { repos: 0, bytes: 0 };
      u[kind] = Math.max(0, Number(value) || 0);
      out.set(backend, u);
    }
    return out;
  }

  async note(deltas: readonly UsageDelta[]): Promise<void> {
    const p = this.redis.pipeline();
    let n = 0;
    for (const d of deltas) {
      for (const [kind, by] of [['repos', d.repos], ['bytes', d.bytes]] as const) {
        if (!by) continue;
        p.hincrby(this.keys.placement(), `${kind}:${d.backend}`, by);
        n++;
      }
    }
    if (n > 0) await guarded(() => p.exec());
  }

  /** Sets every backend's repository count from the assignments of `repos` (a full sweep: an operator's repair of the hint). */
  async recount(repos: AsyncIterable<readonly string[]>): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for await (const page of repos) {
      // Sent together, not in one pipeline: each repository's keys are in a slot of their own (Redis Cluster).
      const replies = await guarded(() => Promise.all(page.map((r) => this.redis.hkeys(this.keys.assigned(r)))));
      for (const ids of replies) for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    const fields = (await guarded(() => this.redis.hkeys(this.keys.placement()))).filter((f) => f.startsWith('repos:'));
    const p = this.redis.pipeline();
    for (const f of fields) if (!counts.has(f.slice('repos:'.length))) p.hdel(this.keys.placement(), f);
    for (const [id, c] of counts) p.hset(this.keys.placement(), `repos:${id}`, c);
    await guarded(() => p.exec());
    return counts;
  }
}
