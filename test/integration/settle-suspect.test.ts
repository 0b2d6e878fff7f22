import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { InterruptionResolver } from '../../src/cluster/interruptions.js';
import { planRead, repoFlags } from '../../src/cluster/routing.js';
import { connectRedis, redisReady, type RedisClient } from '../../src/state/redis.js';
import type { StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';
import { testState } from '../support/copy-deps.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * Issue 15 item 3: settling a suspect backend (SETTLE_SUSPECT, against a real
 * Redis) on a drifted copy. The backends are in-memory fakes: what is under
 * test is the script and the resolver's use of it.
 */

const cluster = useCluster({ backends: 1 });
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const R = 'settle/app.git';

describe('settling a suspect backend', () => {
  let redis: RedisClient;
  let state: StateParts;

  beforeAll(async () => {
    redis = connectRedis(cluster().redis.url, { commandTimeoutMs: 5_000 });
    expect(await redisReady(redis, 5_000)).toBe(true);
    state = testState(redis, 'settle:');
  });

  afterAll(() => redis?.disconnect());

  function setup() {
    const m = memoryCluster(['b1', 'b2']);
    const ctx = { ...m.ctx, repos: state.repos, pairs: state.pairs, writeLocks: state.writeLocks };
    return { ...m, ctx, resolver: new InterruptionResolver(ctx) };
  }

  async function seed(suspectUntil: number): Promise<void> {
    const k = state.keys;
    const before = refsChecksum([{ name: 'refs/heads/main', oid: A }]);
    const late = refsChecksum([{ name: 'refs/heads/main', oid: B }]);
    await redis.del(k.versions(R), k.checksums(R), k.suspect(R), k.drift(R), k.writing(R), k.frozen(R), k.suspectWrites(R));
    await redis.hset(k.versions(R), 'b1', 5, 'b2', 5);
    await redis.hset(k.checksums(R), 'b1', before, 'b2', before);
    await redis.hset(k.suspect(R), 'b1', suspectUntil);
    // The interrupted write's commands, kept with the suspect entry: its late bytes are main A → B.
    await redis.hset(k.suspectWrites(R), 'b1', `${suspectUntil}\n${A} ${B} refs/heads/main`);
    // The verifier saw b1's late bytes before the grace period ended: drift.
    await redis.hset(k.drift(R), 'b1', `${late} ${Date.now()}`);
  }

  it('adopting a drifted suspect clears its drift: it leads again at once, not after the hourly verifier', async () => {
    const s = setup();
    s.backends.get('b1')!.set(R, { 'refs/heads/main': B });
    s.backends.get('b2')!.set(R, { 'refs/heads/main': A });
    await seed(Date.now() - 1);
    await s.resolver.settleSuspects(R, await state.repos.read(R));
    const after = await state.repos.read(R);
    expect(after.versions.get('b1')).toBe(6);
    expect(after.suspect.has('b1')).toBe(false);
    expect(after.drift.has('b1')).toBe(false);
    // A leader reads can go to (before the fix: "no leader … reachable (leaders: b1 (drifted))").
    expect(planRead(after.versions, s.directory.views(), undefined, 0, repoFlags(after))).toMatchObject({ kind: 'serve', candidates: ['b1'] });
  });

  it('a suspect changed by more than its interrupted write is not adopted: drifted, repaired', async () => {
    const s = setup();
    const repaired: string[] = [];
    const resolver = new InterruptionResolver({ ...s.ctx, repairs: { schedule: (_r, b) => void repaired.push(b) } });
    s.backends.get('b1')!.set(R, { 'refs/heads/main': B, 'refs/heads/stray': A });
    await seed(Date.now() - 1);
    await resolver.settleSuspects(R, await state.repos.read(R));
    const after = await state.repos.read(R);
    expect(after.versions.get('b1')).toBe(5);
    expect(after.suspect.has('b1')).toBe(false);
    expect(after.drift.get('b1')?.checksum).toBe(refsChecksum([{ name: 'refs/heads/main', oid: B }, { name: 'refs/heads/stray', oid: A }]));
    expect(repaired).toEqual(['b1']);
  });

  it('a suspect entry set again since it was read as due keeps its fresh grace period', async () => {
    const s = setup();
    s.backends.get('b1')!.set(R, { 'refs/heads/main': B });
    await seed(Date.now() - 1);
    const seen = await state.repos.read(R);
    // A newer interruption on b1 made it suspect again meanwhile.
    const fresh = Date.now() + 600_000;
    await redis.hset(state.keys.suspect(R), 'b1', fresh);
    await s.resolver.settleSuspects(R, seen);
    const after = await state.repos.read(R);
    expect(after.suspect.get('b1')).toBe(fresh);
    expect(after.versions.get('b1')).toBe(5);
  });
});
