/**
 * The work index against a real redis-server (src/state/scripts/work.ts,
 * docs/redis.md `work`): each script that changes a record enters the
 * repository when the change leaves it needing work (a stale or missing pair,
 * a marker, a freeze, a suspect or drifted copy) and takes it out when it
 * leaves it whole. The replicator's scan reads only this index.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc16, Keys, slotOf } from '../../src/state/keys.js';
import { workReason } from '../../src/state/needs-work.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('work index kept by the scripts', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let n = 0;
  const BACKENDS = ['b1', 'b2', 'b3'];

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'wk:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 }, backends: BACKENDS });
  });
  afterAll(() => redis.disconnect());

  const name = () => `wk${++n}.git`;
  const lock = async (repo: string) => {
    await redis.set(state.keys.lock(repo), `tok-${repo}`);
    return `tok-${repo}`;
  };
  const inWork = async (repo: string) => (await redis.zscore(state.keys.work(repo), repo)) !== null;
  /** The TypeScript judgement (memory store, status counts) agrees with the script's. */
  const agrees = async (repo: string) => expect(workReason(await state.repos.read(repo), BACKENDS) !== 'none').toBe(await inWork(repo));
  const marker = (id: string, backend: string) => ({ id, backend, proxy: 'p', user: 'u', transport: 'http', started: Date.now(), preChecksum: 'c1' });

  it('create on every backend: whole, not indexed; on two of three: the missing pair enters it', async () => {
    const whole = name();
    expect(await state.repos.create(whole, BACKENDS, { event: 'create' })).toBe('ok');
    expect(await inWork(whole)).toBe(false);
    const partial = name();
    expect(await state.repos.create(partial, ['b1', 'b2'], { event: 'create' })).toBe('ok');
    expect(await inWork(partial)).toBe(true);
    await agrees(partial);
  });

  it('a push: the marker enters it; a commit on a quorum of two leaves it in; the catch-up of the third takes it out', async () => {
    const repo = name();
    await state.repos.create(repo, BACKENDS, { event: 'create' });
    const token = await lock(repo);
    await state.repos.beginWrite(repo, token, marker('w1', 'b1'));
    expect(await inWork(repo)).toBe(true);
    await agrees(repo);
    expect(await state.repos.commitWrite(repo, { token, writeId: 'w1', backend: 'b1', checksum: 'c2', copies: ['b2'], log: {} })).toBe(2);
    expect(await inWork(repo)).toBe(true);
    await agrees(repo);
    expect(await state.repos.commitCatchUp(repo, { target: 'b3', version: 2, checksum: 'c2', source: 'b1', log: {} })).toEqual({ kind: 'ok', version: 2 });
    expect(await inWork(repo)).toBe(false);
    await agrees(repo);
  });

  it('a push on every backend, and an aborted one, leave it out', async () => {
    const repo = name();
    await state.repos.create(repo, BACKENDS, { event: 'create' });
    const token = await lock(repo);
    await state.repos.beginWrite(repo, token, marker('w1', 'b1'));
    await state.repos.commitWrite(repo, { token, writeId: 'w1', backend: 'b1', checksum: 'c2', copies: ['b2', 'b3'], log: {} });
    expect(await inWork(repo)).toBe(false);
    await state.repos.beginWrite(repo, token, marker('w2', 'b1'));
    expect(await inWork(repo)).toBe(true);
    expect(await state.repos.abortWrite(repo, token, 'w2')).toBe(true);
    expect(await inWork(repo)).toBe(false);
  });

  it('an interrupted write resolved: the suspects keep it in; settled, it leaves', async () => {
    const repo = name();
    await state.repos.create(repo, BACKENDS, { event: 'create' });
    const token = await lock(repo);
    const checksum = (await state.repos.read(repo)).checksums.get('b1')!;
    await state.repos.beginWrite(repo, token, { ...marker('w1', 'b1'), preChecksum: checksum });
    const until = Date.now() + 60_000;
    const r = await state.repos.resolveInterrupted(repo, { token, writeId: 'w1', action: 'clear', checksum, suspectUntil: until, log: {} });
    expect(r.status).toBe('ok');
    expect((await state.repos.read(repo)).suspect.has('b1')).toBe(true);
    expect(await inWork(repo)).toBe(true);
    await agrees(repo);
    const s = await state.repos.settleSuspect(repo, { token, backend: 'b1', until, liveChecksum: checksum, baseChecksum: '' });
    expect(s.status).toBe('cleared');
    expect(await inWork(repo)).toBe(false);
    await agrees(repo);
  });

  it('a drift and a freeze enter it; the drift cleared and judged again (REINDEX) takes it out', async () => {
    const repo = name();
    await state.repos.create(repo, BACKENDS, { event: 'create' });
    const checksum = (await state.repos.read(repo)).checksums.get('b2')!;
    expect(await state.repos.markDrift(repo, 'b2', 1, checksum, 'other')).toBe('ok');
    expect(await inWork(repo)).toBe(true);
    await state.repos.clearDrift(repo, 'b2');
    expect(await state.repos.reindex(repo)).toBe(false);
    expect(await inWork(repo)).toBe(false);
    const frozen = name();
    await state.repos.create(frozen, BACKENDS, { event: 'create' });
    await state.repos.freeze(frozen, 'maintenance', 'op', ['b1']);
    expect(await inWork(frozen)).toBe(true);
    await agrees(frozen);
  });

  it('adoption of the copies found (one backend lacks it) enters it; retire takes it out', async () => {
    const repo = name();
    expect(await state.repos.adopt(repo, new Map([['b1', 'c'], ['b2', 'c']]))).toBe(true);
    expect(await inWork(repo)).toBe(true);
    const token = await lock(repo);
    expect(await state.repos.retire(repo, token, { kind: 'deleted', at: 1, by: 'op', stamp: '20261206T000000Z' }, { event: 'delete' })).toBe('ok');
    expect(await inWork(repo)).toBe(false);
  });

  it('an assignment replaces the configured backends: a pair outside it is not missing', async () => {
    const repo = name();
    // CREATE writes the assignment with the versions (docs/redis.md `assigned`).
    await state.repos.create(repo, ['b1', 'b2'], { event: 'create' }, { assigned: ['b1', 'b2'] });
    expect(await redis.hkeys(state.keys.assigned(repo))).toEqual(expect.arrayContaining(['b1', 'b2']));
    expect(await inWork(repo)).toBe(false);
    await agrees(repo);
    // A record put in without a script (a tool, a restore) is found by the sweep's REINDEX.
    await redis.hset(state.keys.versions(repo), 'b2', '0');
    expect(await inWork(repo)).toBe(false);
    expect(await state.repos.reindex(repo)).toBe(true);
    expect(await inWork(repo)).toBe(true);
  });

  it('the index reads back in pages, with its size beside the repositories count', async () => {
    const names: string[] = [];
    for await (const page of state.index.work(2)) names.push(...page);
    expect(names.length).toBeGreaterThan(0);
    for (const repo of names) expect(await inWork(repo)).toBe(true);
    const sizes = await state.index.sizes();
    expect(sizes.work).toBe(names.length);
  });
});

describe('work index shards (Redis Cluster)', () => {
  it('hashes as Redis Cluster does, and a shard lives in its repository\'s slot', () => {
    // The cluster spec's test vector: CRC16 of "123456789" is 0x31C3.
    expect(crc16('123456789')).toBe(0x31c3);
    const keys = new Keys('githa:', true);
    for (const repo of ['team/app.git', 'a.git', 'x/y/z.git']) {
      const tag = /\{(.*)\}/.exec(keys.work(repo))![1]!;
      expect(slotOf(tag)).toBe(slotOf(repo));
    }
    expect(new Keys('githa:').work('a.git')).toBe('githa:work');
  });
});
