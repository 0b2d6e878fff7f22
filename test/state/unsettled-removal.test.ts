/**
 * A drifted or suspect copy may hold commits no other copy has (found in the
 * review of issue 22): REASSIGN (`githa repo factor`) and DROP_LOST
 * (re-replication) refuse to take such a backend out of the assignment, and
 * change nothing, until it is repaired or settled. (SWITCH_ASSIGNMENT's
 * refusal: test/state/move-script.test.ts.)
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReReplicationStore } from '../../src/state/re-replication-store.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('a drifted or suspect backend leaves no assignment', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let rerep: RedisReReplicationStore;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'uns:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
    rerep = new RedisReReplicationStore(redis, state.keys, state.scripts, state.index, 100);
  });
  afterAll(() => redis.disconnect());

  /** b1..b4 at version 5, all assigned; `b3` drifted or suspect. */
  async function seed(repo: string, unsettled: 'drift' | 'suspect'): Promise<void> {
    const k = state.keys;
    await redis.hset(k.versions(repo), 'b1', '5', 'b2', '5', 'b3', '5', 'b4', '5');
    await redis.hset(k.checksums(repo), 'b1', 's5', 'b2', 's5', 'b3', 's5', 'b4', 's5');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b3', '1', 'b4', '1');
    if (unsettled === 'drift') await redis.hset(k.drift(repo), 'b3', 'x 1');
    else await redis.hset(k.suspect(repo), 'b3', '99');
    await redis.set(k.lock(repo), `tok-${repo}`);
  }

  async function unchanged(repo: string, unsettled: 'drift' | 'suspect'): Promise<void> {
    const s = await state.repos.read(repo);
    expect(s.assigned).toContain('b3');
    expect(s.versions.get('b3')).toBe(5);
    expect(await redis.hexists(unsettled === 'drift' ? state.keys.drift(repo) : state.keys.suspect(repo), 'b3')).toBe(1);
  }

  for (const unsettled of ['drift', 'suspect'] as const) {
    it(`REASSIGN refuses to unassign a ${unsettled === 'drift' ? 'drifted' : 'suspect'} backend`, async () => {
      const repo = `factor-${unsettled}.git`;
      await seed(repo, unsettled);
      expect(await state.repos.reassign(repo, `tok-${repo}`, 3, [], ['b3'], { event: 'factor' })).toBe('unsettled');
      await unchanged(repo, unsettled);
      expect((await state.repos.read(repo)).assigned).toHaveLength(4);
      // Another backend goes.
      expect(await state.repos.reassign(repo, `tok-${repo}`, 3, [], ['b1'], { event: 'factor' })).toBe('ok');
      expect((await state.repos.read(repo)).assigned).not.toContain('b1');
    });

    it(`DROP_LOST keeps a ${unsettled === 'drift' ? 'drifted' : 'suspect'} lost backend`, async () => {
      const repo = `drop-${unsettled}.git`;
      await seed(repo, unsettled);
      // No write in flight: DROP_LOST runs only while the lock is free (it answers 'busy' otherwise).
      await redis.del(state.keys.lock(repo));
      await redis.hset(state.keys.replacing(repo), 'b4', 'b3');
      expect(await rerep.dropLost(repo, { lost: 'b3', replacement: 'b4', log: {} })).toBe('unsettled');
      await unchanged(repo, unsettled);
    });
  }
});
