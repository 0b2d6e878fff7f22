/**
 * Found by the outside review of issue 22 (each test failed before its fix), on a real redis-server:
 * - the work index's judgement (NEEDS_WORK_LUA) takes the max version over every
 *   recorded backend, assigned or not: a backend outside the assignment holding a
 *   higher version (an interrupted write adopted on a backend re-replication
 *   dropped meanwhile) keeps the repository in the index for ever, though the
 *   replicator (assigned backends only) has nothing to copy;
 * - DROP_LOST drops the lost backend while a write marker names it as the write's
 *   backend: the marker (which only the lost backend can resolve) then blocks
 *   every write for good, and a resolution once it is back records a version on
 *   a backend outside the assignment.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisReReplicationStore } from '../../src/state/re-replication-store.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('the assignment against writes in flight and the work index (found by the outside review of issue 22)', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let rerep: RedisReReplicationStore;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'rv22s:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 }, backends: ['b1', 'b2', 'b3', 'b4'] });
    rerep = new RedisReReplicationStore(redis, state.keys, state.scripts, state.index, 100);
  });
  afterAll(() => redis.disconnect());

  it('the work index leaves out a repository whose assigned backends are all at their max', async () => {
    const repo = 'w1.git';
    const k = state.keys;
    await redis.hset(k.versions(repo), 'b1', '5', 'b2', '5', 'b4', '5', 'b3', '6');
    await redis.hset(k.checksums(repo), 'b1', 's5', 'b2', 's5', 'b4', 's5', 'b3', 's6');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b4', '1');
    expect(await state.repos.reindex(repo)).toBe(false);
  });

  it('DROP_LOST keeps the lost backend while a write marker names it', async () => {
    const repo = 'd1.git';
    const k = state.keys;
    await redis.hset(k.versions(repo), 'b1', '5', 'b2', '5', 'b3', '5', 'b4', '5');
    await redis.hset(k.checksums(repo), 'b1', 's5', 'b2', 's5', 'b3', 's5', 'b4', 's5');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b3', '1', 'b4', '1');
    await redis.hset(k.replacing(repo), 'b4', 'b3');
    // b3 died in the middle of a push it was the target of: the marker names it.
    await redis.hset(k.writing(repo), 'id', 'w1', 'backend', 'b3', 'proxy', 'p1', 'heartbeat', '1', 'started', '1', 'preChecksum', 's5');
    expect(await rerep.dropLost(repo, { lost: 'b3', replacement: 'b4', log: {} })).not.toBe('ok');
  });

  it('a push in flight with a quorum copy on the lost backend keeps its write quorum among the assigned backends', async () => {
    const repo = 'd2.git';
    const k = state.keys;
    // Factor 3, write quorum 2: b1, b2, b3 assigned; b3 lost (to the re-replicating githa), b4 its replacement, caught up.
    await redis.hset(k.versions(repo), 'b1', '5', 'b2', '5', 'b3', '5', 'b4', '5');
    await redis.hset(k.checksums(repo), 'b1', 's5', 'b2', 's5', 'b3', 's5', 'b4', 's5');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b3', '1', 'b4', '1');
    await redis.hset(k.replacing(repo), 'b4', 'b3');
    // Another githa (which saw b3 up) pushes to b1 with its quorum copy on b3; the marker names b3.
    await redis.set(k.lock(repo), 'tok');
    await redis.hset(k.writing(repo), 'id', 'w2', 'backend', 'b1', 'proxy', 'p1', 'heartbeat', '1', 'started', '1', 'preChecksum', 's5', 'copies', 'b3');
    await rerep.dropLost(repo, { lost: 'b3', replacement: 'b4', log: {} });
    // The push is acknowledged with its quorum (b1 + b3).
    await state.repos.commitWrite(repo, { token: 'tok', writeId: 'w2', backend: 'b1', checksum: 's6', copies: ['b3'], log: {} });
    const s = await state.repos.read(repo);
    const holders = (s.assigned ?? []).filter((b) => s.versions.get(b) === 6);
    expect(holders.length).toBeGreaterThanOrEqual(2);
  });
});

