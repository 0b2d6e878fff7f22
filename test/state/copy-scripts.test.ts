/**
 * The catch-up's record against a real redis-server (src/state/scripts/copy.ts):
 * a copy whose version was superseded before it could be recorded leaves a note
 * of githa's own unrecorded state of the target, which the next copy lock
 * reads while the target's record is unchanged, and which a recorded copy clears
 * (docs/architecture.md "Catch-up relay"). Without it the verifier took the
 * target for one changed outside githa.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('catch-up record: githa\'s own unrecorded copy', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'cp:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
  });
  afterAll(() => redis.disconnect());

  it('a superseded copy is noted while the target record stays; a recorded one clears the note', async () => {
    const repo = 'cp1.git';
    // b1 and b2 at 9 (checksum c9), b3 behind at 7.
    await redis.hset(state.keys.versions(repo), { b1: '9', b2: '9', b3: '7' });
    await redis.hset(state.keys.checksums(repo), { b1: 'c9', b2: 'c9', b3: 'c7' });
    // A push moves b1 and b2 to 10 while a catch-up of b3 to 9 is on its way: its record is refused (MOVED)…
    await redis.hset(state.keys.versions(repo), { b1: '10', b2: '10' });
    await redis.hset(state.keys.checksums(repo), { b1: 'c10', b2: 'c10' });
    expect(await state.repos.commitCatchUp(repo, { target: 'b3', version: 9, checksum: 'c9', source: 'b1', log: {} })).toEqual({ kind: 'moved' });
    // …and the next copy lock on b3 reads that b3 holds githa's own c9 while its record is still 7.
    const held = await state.pairs.acquire(repo, 'b3', 5_000);
    expect(held?.standing).toEqual({ version: 7, writing: false, checksum: 'c7', unrecorded: 'c9' });
    await held?.lease.release();
    // Once b3's record moves (here a catch-up to 10), the note is gone.
    expect(await state.repos.commitCatchUp(repo, { target: 'b3', version: 10, checksum: 'c10', source: 'b1', log: {} })).toEqual({ kind: 'ok', version: 10 });
    expect(await redis.hget(state.keys.unrecorded(repo), 'b3')).toBeNull();
    const again = await state.pairs.acquire(repo, 'b3', 5_000);
    expect(again?.standing).toEqual({ version: 10, writing: false, checksum: 'c10' });
    await again?.lease.release();
  });

  it('a note from another record of the target is not read', async () => {
    const repo = 'cp2.git';
    await redis.hset(state.keys.versions(repo), { b1: '5', b3: '4' });
    await redis.hset(state.keys.checksums(repo), { b1: 'c5', b3: 'c4' });
    await redis.hset(state.keys.unrecorded(repo), 'b3', '3 c-old');
    const held = await state.pairs.acquire(repo, 'b3', 5_000);
    expect(held?.standing).toEqual({ version: 4, writing: false, checksum: 'c4' });
    await held?.lease.release();
  });
});
