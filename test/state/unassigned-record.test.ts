/**
 * A record of a backend outside the assignment (found in the review of issue 22): a catch-up (or a late quorum copy) to B that was running
 * when a move switched B out records B's version after the switch
 * (COMMIT_CATCH_UP checks no assignment), while the move then trashes B's copy.
 * A later `githa repo factor` raise that assigns B again (REASSIGN clears no
 * record of an added backend) makes B a leader at the max version with the
 * leaders' checksum although its copy is in the trash: reads are routed to it,
 * and a move back to B never switches (its record already looks caught up).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopedState } from '../../src/cluster/assignment.js';
import { leadership } from '../../src/cluster/routing.js';
import { MoveStore } from '../../src/state/move-store.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('a record of a backend outside the assignment', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let moves: MoveStore;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'rv22:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
    moves = new MoveStore(state.scripts, 100);
  });
  afterAll(() => redis.disconnect());

  async function seed(repo: string): Promise<string> {
    const k = state.keys;
    // b3 is one push behind (a quorum of 2 of 3); b4 (C of a move) caught up already.
    await redis.hset(k.versions(repo), 'b1', '4', 'b2', '4', 'b3', '3', 'b4', '4');
    await redis.hset(k.checksums(repo), 'b1', 's4', 'b2', 's4', 'b3', 's3', 'b4', 's4');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b3', '1');
    await redis.set(k.lock(repo), `tok-${repo}`);
    return `tok-${repo}`;
  }

  it('is not written by a catch-up that finishes after the move switched the backend out', async () => {
    const repo = 'stale1.git';
    const token = await seed(repo);
    expect((await moves.switchAssignment(repo, { token, from: 'b3', to: 'b4', every: [], log: {} })).kind).toBe('ok');
    // The background catch-up b1 -> b3 (version 4) started before the switch; it records now.
    await state.repos.commitCatchUp(repo, { target: 'b3', version: 4, checksum: 's4', source: 'b1', log: {} });
    expect((await state.repos.read(repo)).versions.has('b3')).toBe(false);
  });

  it("is written for a move's target, which the Mover copies into before it is assigned", async () => {
    const repo = 'movec.git';
    await seed(repo);
    await redis.hset(state.keys.versions(repo), 'b5', '2');
    await redis.hset(state.keys.checksums(repo), 'b5', 's2');
    expect(await state.repos.commitCatchUp(repo, { target: 'b5', version: 4, checksum: 's4', source: 'b1', log: {} })).toEqual({ kind: 'unassigned' });
    expect(await state.repos.commitCatchUp(repo, { target: 'b5', version: 4, checksum: 's4', source: 'b1', moveTarget: true, log: {} })).toEqual({ kind: 'ok', version: 4 });
    expect((await state.repos.read(repo)).versions.get('b5')).toBe(4);
  });

  it('does not make a backend assigned again by a factor raise a leader before it was copied to', async () => {
    const repo = 'stale2.git';
    const token = await seed(repo);
    expect((await moves.switchAssignment(repo, { token, from: 'b3', to: 'b4', every: [], log: {} })).kind).toBe('ok');
    await state.repos.commitCatchUp(repo, { target: 'b3', version: 4, checksum: 's4', source: 'b1', log: {} });
    // b3's copy is trashed by the move. Later: githa repo factor R 4 picks b3 again.
    expect(await state.repos.reassign(repo, token, 4, ['b3'], [], { event: 'factor' })).toBe('ok');
    const s = scopedState(await state.repos.read(repo));
    expect(leadership(s.versions).leaders).not.toContain('b3');
  });

  it('is kept for a backend that was assigned already, and when no assignment was recorded', async () => {
    const repo = 'keep.git';
    const token = await seed(repo);
    expect(await state.repos.reassign(repo, token, 3, ['b2'], [], { event: 'factor' })).toBe('ok');
    expect((await state.repos.read(repo)).versions.get('b2')).toBe(4);
    const bare = 'bare.git';
    const k = state.keys;
    await redis.hset(k.versions(bare), 'b1', '4', 'b2', '4');
    await redis.hset(k.checksums(bare), 'b1', 's4', 'b2', 's4');
    await redis.set(k.lock(bare), 'tok-bare');
    expect(await state.repos.reassign(bare, 'tok-bare', 2, ['b1', 'b2'], [], { event: 'factor' })).toBe('ok');
    expect(Object.fromEntries((await state.repos.read(bare)).versions)).toEqual({ b1: 4, b2: 4 });
  });
});
