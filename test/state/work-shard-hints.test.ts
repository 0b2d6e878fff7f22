/**
 * The hint set of the sharded work index (Redis Cluster, docs/redis.md
 * `work-shards`), on a real redis-server with the index sharded as on a
 * cluster: a shard named once is not named again by this process, so a member
 * lost meanwhile (a failover before the SADD reached the replica) is repaired
 * by the full sweep only if the sweep names every shard it touches again
 * (ScriptRunner.forgetHints, src/cluster/work-sweep.ts).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkSweep } from '../../src/cluster/work-sweep.js';
import { createLogger } from '../../src/log.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('work shard hints', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'hints:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 }, backends: ['b1', 'b2'], shardWork: true });
  });
  afterAll(() => redis.disconnect());

  it('a shard lost from the hint set is named again by the next sweep', async () => {
    const repo = 'h1.git';
    const k = state.keys;
    await redis.zadd(k.repos(), 0, repo);
    // b2 is behind: the repository needs work, in its shard.
    await redis.hset(k.versions(repo), 'b1', '2', 'b2', '1');
    await redis.hset(k.checksums(repo), 'b1', 's2', 'b2', 's1');
    expect(await state.repos.reindex(repo)).toBe(true);
    expect(await redis.sismember(k.workShards(), k.work(repo))).toBe(1);
    // The member is lost (a failover to a replica the SADD had not reached).
    await redis.srem(k.workShards(), k.work(repo));
    const sweep = new WorkSweep({ index: state.index, repos: state.repos, hints: state.scripts, owner: 'g1', backends: ['b1', 'b2'], intervalMs: 60_000, log: createLogger('silent') });
    expect(await sweep.maybeSweep()).toBe(true);
    expect(await redis.sismember(k.workShards(), k.work(repo))).toBe(1);
  });
});
