/**
 * RECOVER (`githa recover`, `githa inventory --track|--all`) against a real
 * Redis: with `replication.factor` the assignment and `meta` `factor` are
 * written in the same step as the versions (docs/architecture.md
 * "Placement", docs/operations.md "Inventory and recovery after Redis
 * loss"); without, an assignment a restored snapshot kept goes (the copies
 * are what is true); the ambiguous freeze changes no assignment.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('RECOVER and the assignment', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'rcv:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
  });
  afterAll(() => redis.disconnect());

  /** A record a restored snapshot kept: b1..b4 assigned (factor 4), b4 replacing b1, versions on b1, b4. */
  async function seed(repo: string): Promise<string> {
    const k = state.keys;
    await redis.hset(k.versions(repo), 'b1', '3', 'b4', '2');
    await redis.hset(k.checksums(repo), 'b1', 's3', 'b4', 's2');
    await redis.hset(k.assigned(repo), 'b1', '1', 'b2', '1', 'b3', '1', 'b4', '1');
    await redis.hset(k.replacing(repo), 'b4', 'b1');
    await redis.hset(k.meta(repo), 'factor', '4', 'epoch', 'old');
    await redis.set(k.lock(repo), `tok-${repo}`);
    return `tok-${repo}`;
  }

  it('writes the assignment and factor with the versions of the copies given', async () => {
    const repo = 'placed.git';
    const token = await seed(repo);
    const copies = new Map([
      ['b2', 'c'],
      ['b5', 'c'],
    ]);
    const r = await state.repos.recover(repo, token, copies, 'b2=c b5=c', { assigned: ['b2', 'b5', 'b3'], factor: 3 });
    expect(r).toEqual({ status: 'ok', version: 4 });
    const k = state.keys;
    expect((await redis.hkeys(k.assigned(repo))).sort()).toEqual(['b2', 'b3', 'b5']);
    expect(await redis.hget(k.meta(repo), 'factor')).toBe('3');
    expect(await redis.exists(k.replacing(repo))).toBe(0);
    const read = await state.repos.read(repo);
    expect(Object.fromEntries(read.versions)).toEqual({ b2: 4, b5: 4 });
    expect(read.assigned).toEqual(['b2', 'b3', 'b5']);
    expect(await state.repos.assignments([repo, 'none.git'])).toEqual(new Map([[repo, ['b2', 'b3', 'b5']]]));
  });

  it('removes an assignment, factor and replacement a snapshot kept when there is no factor', async () => {
    const repo = 'every.git';
    const token = await seed(repo);
    const r = await state.repos.recover(repo, token, new Map([['b1', 'c'], ['b2', 'c']]), 'b1=c b2=c');
    expect(r.status).toBe('ok');
    const k = state.keys;
    expect(await redis.exists(k.assigned(repo), k.replacing(repo))).toBe(0);
    expect(await redis.hget(k.meta(repo), 'factor')).toBeNull();
    expect((await state.repos.read(repo)).assigned).toBeUndefined();
  });

  it('changes no assignment when the copies differ (frozen as ambiguous)', async () => {
    const repo = 'differ.git';
    const token = await seed(repo);
    const r = await state.repos.recover(repo, token, new Map([['b1', 'x'], ['b2', 'y']]), 'b1=x b2=y');
    expect(r.status).toBe('ambiguous');
    const k = state.keys;
    expect((await redis.hkeys(k.assigned(repo))).sort()).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect(await redis.hget(k.meta(repo), 'factor')).toBe('4');
    expect(await redis.hget(k.frozen(repo), 'backends')).toBe('b1 b2');
  });
});
