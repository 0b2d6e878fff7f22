/**
 * A move that did not switch leaves its target no record (docs/architecture.md "Moves"): found by the factor-3
 * chaos run in CI (seed 965514850), where a move refused at its switch ("an interrupted write is not resolved
 * yet") left b5 recorded at a version although unassigned, and the cluster never converged.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MoveStore } from '../../src/state/move-store.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('FORGET_MOVE_TARGET', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let moves: MoveStore;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'mvf:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
    moves = new MoveStore(state.scripts, 100);
  });
  afterAll(() => redis.disconnect());

  it('removes the record of an unassigned target, and only that', async () => {
    const repo = 'forget/a.git';
    const k = state.keys;
    await redis.hset(k.versions(repo), 'b1', '84', 'b2', '84', 'b4', '84', 'b5', '83');
    await redis.hset(k.checksums(repo), 'b1', 's', 'b2', 's', 'b4', 's', 'b5', 'r');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b4', '1');
    expect(await moves.forgetTarget(repo, 'b5')).toBe('ok');
    const s = await state.repos.read(repo);
    expect([...s.versions.keys()].sort()).toEqual(['b1', 'b2', 'b4']);
    expect(s.checksums.has('b5')).toBe(false);
  });

  it('leaves an assigned backend, and a repository with no recorded assignment, alone', async () => {
    const k = state.keys;
    const repo = 'forget/b.git';
    await redis.hset(k.versions(repo), 'b1', '3', 'b2', '3');
    await redis.hset(k.checksums(repo), 'b1', 's', 'b2', 's');
    expect(await moves.forgetTarget(repo, 'b2')).toBe('assigned');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1');
    expect(await moves.forgetTarget(repo, 'b2')).toBe('assigned');
    expect((await state.repos.read(repo)).versions.get('b2')).toBe(3);
  });
});
