/**
 * The lifecycle scripts (src/state/scripts/lifecycle.ts) through
 * RedisRepositoryStore against a real redis-server: create, the tombstone
 * of a delete (keeping the record), restore, and a rename's transfer, each
 * guarded by the write-lock token and logged (docs/redis.md `gone`).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('lifecycle scripts', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;
  let n = 0;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'lc:', logMax: 100, locks: { leaseMs: 10_000, waitMs: 1_000 } });
  });
  afterAll(() => redis.disconnect());

  const name = () => `lc${++n}.git`;
  const lock = async (repo: string) => {
    await redis.set(state.keys.lock(repo), `tok-${repo}`);
    return `tok-${repo}`;
  };
  const events = async (repo: string) => (await state.pushLog.read(repo, { oldestFirst: true })).map((e) => e.fields.event);
  const indexed = async (repo: string) => (await state.index.contains([repo]))[0];

  it('create records every backend at version 1 with the empty checksum, in the index, and refuses a second time', async () => {
    const repo = name();
    expect(await state.repos.create(repo, ['b1', 'b2'], { event: 'create', user: 'op' })).toBe('ok');
    const s = await state.repos.read(repo);
    expect(Object.fromEntries(s.versions)).toEqual({ b1: 1, b2: 1 });
    expect(new Set(s.checksums.values())).toEqual(new Set([refsChecksum([])]));
    expect(s.epoch).toBeTruthy();
    expect(await indexed(repo)).toBe(true);
    expect(await state.repos.create(repo, ['b1'], { event: 'create' })).toBe('exists');
    const log = await state.pushLog.read(repo);
    expect(log.map((e) => e.fields)).toEqual([{ version: '1', event: 'create', user: 'op' }]);
  });

  it('the assignment: written by create with the factor and counted in githa:placement, kept through delete and restore, carried by a rename, changed by REASSIGN', async () => {
    const repo = name();
    expect(await state.repos.create(repo, ['b1', 'b3'], { event: 'create', user: 'op' }, { assigned: ['b1', 'b2', 'b3'], factor: 3 })).toBe('ok');
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b3']);
    expect(await redis.hget(state.keys.meta(repo), 'factor')).toBe('3');
    expect(Object.fromEntries([...(await state.usage.read())].map(([b, u]) => [b, u.repos]))).toMatchObject({ b1: 1, b2: 1, b3: 1 });
    expect(await state.repos.create(repo, ['b1'], { event: 'create' }, { assigned: ['b4'] })).toBe('exists');
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2', 'b3']);

    let token = await lock(repo);
    expect(await state.repos.reassign(repo, token, 2, [], ['b3'], { event: 'factor' })).toBe('ok');
    let s = await state.repos.read(repo);
    expect(s.assigned).toEqual(['b1', 'b2']);
    expect([...s.versions.keys()]).toEqual(['b1']);
    expect(await redis.hget(state.keys.meta(repo), 'factor')).toBe('2');

    expect(await state.repos.retire(repo, token, { kind: 'deleted', at: 2, by: 'op', stamp: '20261206T000000Z' }, { event: 'delete' })).toBe('ok');
    s = await state.repos.read(repo);
    expect(s.assigned).toBeUndefined();
    expect(s.gone?.record?.assigned).toEqual(['b1', 'b2']);
    expect(await state.repos.revive(repo, token, { event: 'restore' }, s.gone!.record)).toBe('ok');
    expect((await state.repos.read(repo)).assigned).toEqual(['b1', 'b2']);

    const to = name();
    token = await lock(to);
    const r = await state.repos.read(repo);
    expect(await state.repos.transfer(to, token, r.versions, r.checksums, { event: 'rename' }, r.assigned)).toBe('ok');
    expect((await state.repos.read(to)).assigned).toEqual(['b1', 'b2']);
  });

  it('a delete: the tombstone first (records kept), then retire keeps the record in the tombstone and leaves the index; create refuses "gone"', async () => {
    const repo = name();
    await state.repos.create(repo, ['b1', 'b2'], { event: 'create' });
    await redis.hset(state.keys.versions(repo), 'b2', '4');
    await redis.hset(state.keys.drift(repo), 'b1', 'x 1');
    const token = await lock(repo);
    expect(await state.repos.markGone(repo, 'not-mine', { kind: 'deleting', at: 1, by: 'op', stamp: '20261206T000000Z' })).toBe('lock');
    expect((await state.repos.read(repo)).gone).toBeUndefined();
    expect(await state.repos.markGone(repo, token, { kind: 'deleting', at: 1, by: 'op', stamp: '20261206T000000Z' })).toBe('ok');
    let s = await state.repos.read(repo);
    expect(s.gone).toEqual({ kind: 'deleting', at: 1, by: 'op', stamp: '20261206T000000Z' });
    expect(s.versions.size).toBe(2);

    expect(await state.repos.retire(repo, 'not-mine', { kind: 'deleted', at: 2, by: 'op', stamp: '20261206T000000Z' }, { event: 'delete' })).toBe('lock');
    expect(await state.repos.retire(repo, token, { kind: 'deleted', at: 2, by: 'op', stamp: '20261206T000000Z' }, { event: 'delete' })).toBe('ok');
    s = await state.repos.read(repo);
    expect(s.versions.size).toBe(0);
    expect(s.drift.size).toBe(0);
    expect(s.epoch).toBeUndefined();
    expect(s.gone?.kind).toBe('deleted');
    expect(Object.fromEntries(s.gone!.record!.versions)).toEqual({ b1: 1, b2: 4 });
    expect(s.gone!.record!.checksums.get('b1')).toBe(refsChecksum([]));
    expect(await indexed(repo)).toBe(false);
    expect(await state.repos.create(repo, ['b1'], { event: 'create' })).toBe('gone');

    // A rerun retires again: the record saved the first time stays.
    expect(await state.repos.retire(repo, token, { kind: 'deleted', at: 3, by: 'op', stamp: '20261206T000000Z' }, { event: 'delete' })).toBe('ok');
    expect(Object.fromEntries((await state.repos.read(repo)).gone!.record!.versions)).toEqual({ b1: 1, b2: 4 });
    expect(await events(repo)).toEqual(['create', 'delete', 'delete']);
  });

  it('revive with the saved record restores it and removes the tombstone in one step; without one it only removes the tombstone', async () => {
    const repo = name();
    await state.repos.create(repo, ['b1'], { event: 'create' });
    const token = await lock(repo);
    await state.repos.retire(repo, token, { kind: 'deleted', at: 2, by: 'op' }, { event: 'delete' });
    const saved = (await state.repos.read(repo)).gone!.record!;
    expect(await state.repos.revive(repo, 'not-mine', { event: 'restore' }, saved)).toBe('lock');
    expect(await state.repos.revive(repo, token, { event: 'restore' }, saved)).toBe('ok');
    const s = await state.repos.read(repo);
    expect(s.gone).toBeUndefined();
    expect(Object.fromEntries(s.versions)).toEqual({ b1: 1 });
    expect(await indexed(repo)).toBe(true);
    expect(await state.repos.revive(repo, token, { event: 'restore' }, saved)).toBe('exists');

    await state.repos.markGone(repo, token, { kind: 'renaming', to: 'x.git', at: 5, by: 'op' });
    expect(await state.repos.revive(repo, token, { event: 'rename-abandoned' })).toBe('ok');
    expect((await state.repos.read(repo)).gone).toBeUndefined();
    expect(Object.fromEntries((await state.repos.read(repo)).versions)).toEqual({ b1: 1 });
    expect(await events(repo)).toEqual(['create', 'delete', 'restore', 'rename-abandoned']);
  });

  it('transfer gives the new name the record, refused when it has a record or a tombstone, or without its lock', async () => {
    const to = name();
    const token = await lock(to);
    const versions = new Map([['b1', 7], ['b2', 6]]);
    const checksums = new Map([['b1', 'c7'], ['b2', 'c6']]);
    expect(await state.repos.transfer(to, 'not-mine', versions, checksums, { event: 'rename', from: 'a.git' })).toBe('lock');
    expect(await state.repos.transfer(to, token, versions, checksums, { event: 'rename', from: 'a.git' })).toBe('ok');
    const s = await state.repos.read(to);
    expect(Object.fromEntries(s.versions)).toEqual({ b1: 7, b2: 6 });
    expect(Object.fromEntries(s.checksums)).toEqual({ b1: 'c7', b2: 'c6' });
    expect(await indexed(to)).toBe(true);
    expect(await state.repos.transfer(to, token, versions, checksums, { event: 'rename' })).toBe('exists');
    const tomb = name();
    const t2 = await lock(tomb);
    await state.repos.markGone(tomb, t2, { kind: 'deleted', at: 1, by: 'op' });
    expect(await state.repos.transfer(tomb, t2, versions, checksums, { event: 'rename' })).toBe('exists');
    expect((await state.pushLog.read(to)).map((e) => e.fields)).toEqual([{ event: 'rename', from: 'a.git' }]);
  });
});
