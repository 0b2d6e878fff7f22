/**
 * The re-replication steps (ADD_REPLACEMENT, DROP_LOST in
 * src/state/scripts/re-replicate.ts) against a real redis-server: neither
 * runs while a write may be in flight (R's write lock held, or a write
 * marker there), and a move's switch or `githa repo factor` that removes one
 * backend of a replacement pair removes its `replacing` entry, so the pair
 * no longer counts as one copy (docs/architecture.md "Re-replication").
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MoveStore } from '../../src/state/move-store.js';
import { RedisReReplicationStore } from '../../src/state/re-replication-store.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('the re-replication scripts and a write in flight', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let rerep: RedisReReplicationStore;
  let moves: MoveStore;
  let n = 0;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'rrs:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 }, backends: ['b1', 'b2', 'b3', 'b4', 'b5'] });
    rerep = new RedisReReplicationStore(redis, state.keys, state.scripts, state.index, 100);
    moves = new MoveStore(state.scripts, 100);
  });
  afterAll(() => redis.disconnect());

  /** R assigned b1..b3 at version 5; with `pair`, b4 replaces b3 (assigned, caught up). */
  async function seed(pair: boolean): Promise<string> {
    const repo = `rr${++n}.git`;
    const k = state.keys;
    const ids = pair ? ['b1', 'b2', 'b3', 'b4'] : ['b1', 'b2', 'b3'];
    for (const b of ids) {
      await redis.hset(k.versions(repo), b, '5');
      await redis.hset(k.checksums(repo), b, 's5');
      await redis.hset(k.assigned(repo), b, '1');
    }
    if (pair) await redis.hset(k.replacing(repo), 'b4', 'b3');
    return repo;
  }
  const marker = (repo: string) => redis.hset(state.keys.writing(repo), 'id', 'w1', 'backend', 'b1', 'proxy', 'p1', 'heartbeat', '1', 'started', '1', 'preChecksum', 's5');
  const add = (repo: string) => rerep.addReplacement(repo, { expected: ['b1', 'b2', 'b3'], lost: 'b3', target: 'b4', now: 1, log: { event: 're-replicate' } });
  const drop = (repo: string) => rerep.dropLost(repo, { lost: 'b3', replacement: 'b4', log: { event: 're-replicate' } });

  it('ADD_REPLACEMENT waits for the write lock and a write marker to go', async () => {
    const repo = await seed(false);
    await redis.set(state.keys.lock(repo), 'tok');
    expect(await add(repo)).toBe('busy');
    await redis.del(state.keys.lock(repo));
    await marker(repo);
    expect(await add(repo)).toBe('busy');
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b3']);
    await redis.del(state.keys.writing(repo));
    expect(await add(repo)).toBe('ok');
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b3', 'b4']);
  });

  it('DROP_LOST waits for the write lock and a write marker to go', async () => {
    const repo = await seed(true);
    await redis.set(state.keys.lock(repo), 'tok');
    expect(await drop(repo)).toBe('busy');
    await redis.del(state.keys.lock(repo));
    await marker(repo);
    expect(await drop(repo)).toBe('busy');
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b3', 'b4']);
    await redis.del(state.keys.writing(repo));
    expect(await drop(repo)).toBe('ok');
    const s = await state.repos.read(repo);
    expect(s.assigned).toEqual(['b1', 'b2', 'b4']);
    expect(s.replacing?.size ?? 0).toBe(0);
  });

  it('a move switching the lost backend out removes its replacing entry', async () => {
    const repo = await seed(true);
    await redis.hset(state.keys.versions(repo), 'b5', '5');
    await redis.hset(state.keys.checksums(repo), 'b5', 's5');
    await redis.set(state.keys.lock(repo), 'tok');
    const r = await moves.switchAssignment(repo, { token: 'tok', from: 'b3', to: 'b5', every: ['b1', 'b2', 'b3', 'b4', 'b5'], log: { user: 'op' } });
    expect(r.kind).toBe('ok');
    expect(await redis.hgetall(state.keys.replacing(repo))).toEqual({});
  });

  it('a move switching the replacement out removes its replacing entry', async () => {
    const repo = await seed(true);
    await redis.hset(state.keys.versions(repo), 'b5', '5');
    await redis.hset(state.keys.checksums(repo), 'b5', 's5');
    await redis.set(state.keys.lock(repo), 'tok');
    const r = await moves.switchAssignment(repo, { token: 'tok', from: 'b4', to: 'b5', every: ['b1', 'b2', 'b3', 'b4', 'b5'], log: { user: 'op' } });
    expect(r.kind).toBe('ok');
    expect(await redis.hgetall(state.keys.replacing(repo))).toEqual({});
  });

  it('githa repo factor unassigning one backend of a pair removes its replacing entry', async () => {
    for (const removed of ['b3', 'b4']) {
      const repo = await seed(true);
      await redis.set(state.keys.lock(repo), 'tok');
      expect(await state.repos.reassign(repo, 'tok', 3, [], [removed], { event: 'factor' })).toBe('ok');
      const s = await state.repos.read(repo);
      expect(s.assigned).not.toContain(removed);
      expect(s.replacing?.size ?? 0).toBe(0);
    }
  });
});
