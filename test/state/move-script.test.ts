/**
 * The switch of a move (SWITCH_ASSIGNMENT, src/state/scripts/move.ts) through
 * MoveStore against a real redis-server: B replaced by C in the assignment
 * only under the caller's write lock, only once C's record equals the
 * leaders' (version and checksum), never while a write marker, freeze or
 * tombstone is there; B's record goes with it, and a push-log entry `move`.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MoveStore } from '../../src/state/move-store.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('the move switch script', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let moves: MoveStore;
  let n = 0;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'mv:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
    moves = new MoveStore(state.scripts, 100);
  });
  afterAll(() => redis.disconnect());

  /** R on b1..b3 (assigned) at version 4 with checksum "s4", C (b4) recorded at `c`. */
  async function seed(c: [number, string] | undefined, assigned = true): Promise<{ repo: string; token: string }> {
    const repo = `mv${++n}.git`;
    const k = state.keys;
    await redis.hset(k.versions(repo), 'b1', '4', 'b2', '4', 'b3', '3');
    await redis.hset(k.checksums(repo), 'b1', 's4', 'b2', 's4', 'b3', 's3');
    if (assigned) await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b3', '1');
    if (c) {
      await redis.hset(k.versions(repo), 'b4', String(c[0]));
      await redis.hset(k.checksums(repo), 'b4', c[1]);
    }
    await redis.set(k.lock(repo), `tok-${repo}`);
    return { repo, token: `tok-${repo}` };
  }
  const args = (token: string, from = 'b3', to = 'b4') => ({ token, from, to, every: ['b1', 'b2', 'b3', 'b4', 'b5'], log: { user: 'op' } });

  it('replaces B by C, drops B\'s record and logs `move`', async () => {
    const { repo, token } = await seed([4, 's4']);
    await redis.hset(state.keys.unrecorded(repo), 'b3', '3 s4');
    expect(await moves.switchAssignment(repo, args(token))).toEqual({ kind: 'ok', version: 4, materialised: false });
    const s = await state.repos.read(repo);
    expect(s.assigned).toEqual(['b1', 'b2', 'b4']);
    expect(Object.fromEntries(s.versions)).toEqual({ b1: 4, b2: 4, b4: 4 });
    expect(s.checksums.has('b3')).toBe(false);
    expect(await redis.hexists(state.keys.unrecorded(repo), 'b3')).toBe(0);
    const log = await state.pushLog.read(repo);
    expect(log.map((e) => e.fields)).toEqual([{ version: '4', event: 'move', from: 'b3', to: 'b4', materialised: '0', user: 'op' }]);
  });

  it('refuses while B is drifted or suspect (its copy may hold commits no other has), and changes nothing', async () => {
    const drifted = await seed([4, 's4']);
    await redis.hset(state.keys.drift(drifted.repo), 'b3', 'x 1');
    const suspect = await seed([4, 's4']);
    await redis.hset(state.keys.suspect(suspect.repo), 'b3', '99');
    for (const r of [drifted, suspect]) {
      expect(await moves.switchAssignment(r.repo, args(r.token))).toEqual({ kind: 'unsettled' });
      const s = await state.repos.read(r.repo);
      expect(s.assigned).toEqual(['b1', 'b2', 'b3']);
      expect(s.versions.get('b3')).toBe(3);
    }
    expect(await redis.hexists(state.keys.drift(drifted.repo), 'b3')).toBe(1);
    expect(await redis.hexists(state.keys.suspect(suspect.repo), 'b3')).toBe(1);
  });

  it('refuses without the lock token, and changes nothing', async () => {
    const { repo } = await seed([4, 's4']);
    expect(await moves.switchAssignment(repo, args('not-mine'))).toEqual({ kind: 'lock' });
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b3']);
  });

  it('refuses while C is behind the leaders or holds another checksum, or is drifted', async () => {
    const behind = await seed([3, 's3']);
    expect(await moves.switchAssignment(behind.repo, args(behind.token))).toEqual({ kind: 'behind', version: 3, max: 4 });
    const missing = await seed(undefined);
    expect(await moves.switchAssignment(missing.repo, args(missing.token))).toEqual({ kind: 'behind', version: 0, max: 4 });
    const other = await seed([4, 'other']);
    expect(await moves.switchAssignment(other.repo, args(other.token))).toEqual({ kind: 'mismatch' });
    const drifted = await seed([4, 's4']);
    await redis.hset(state.keys.drift(drifted.repo), 'b4', 'x 1');
    expect(await moves.switchAssignment(drifted.repo, args(drifted.token))).toEqual({ kind: 'mismatch' });
    for (const r of [behind, missing, other, drifted]) expect((await state.repos.read(r.repo)).assigned).toEqual(['b1', 'b2', 'b3']);
  });

  it('refuses while a write marker, a freeze or a tombstone is there', async () => {
    const cases = [
      ['writing', (repo: string) => redis.hset(state.keys.writing(repo), 'id', 'w1', 'backend', 'b1')],
      ['frozen', (repo: string) => redis.hset(state.keys.frozen(repo), 'reason', 'ambiguous')],
      ['gone', (repo: string) => redis.hset(state.keys.gone(repo), 'kind', 'deleting')],
    ] as const;
    for (const [kind, make] of cases) {
      const { repo, token } = await seed([4, 's4']);
      await make(repo);
      expect(await moves.switchAssignment(repo, args(token))).toEqual({ kind });
      expect(await redis.hkeys(state.keys.assigned(repo))).toHaveLength(3);
    }
  });

  it('refuses when B is not assigned or C is already', async () => {
    const { repo, token } = await seed([4, 's4']);
    expect(await moves.switchAssignment(repo, args(token, 'b5', 'b4'))).toEqual({ kind: 'not-assigned' });
    expect(await moves.switchAssignment(repo, args(token, 'b3', 'b1'))).toEqual({ kind: 'assigned' });
  });

  it('with no assignment recorded, materialises "every configured backend" only when the switch succeeds', async () => {
    const { repo, token } = await seed([4, 's4'], false);
    // Every configured backend includes C: it is assigned already, nothing written.
    expect(await moves.switchAssignment(repo, args(token))).toEqual({ kind: 'assigned' });
    expect(await redis.exists(state.keys.assigned(repo))).toBe(0);
    // Configured without C (b4 holds a copy but is not in the list the caller gave): B leaves, C joins.
    expect(await moves.switchAssignment(repo, { ...args(token), every: ['b1', 'b2', 'b3'] })).toEqual({ kind: 'ok', version: 4, materialised: true });
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b4']);
  });
});
