import { describe, expect, it } from 'vitest';
import { changeFactor } from '../../src/cluster/factor.js';
import { Lifecycle } from '../../src/cluster/lifecycle.js';
import { ReplicationFactorError } from '../../src/errors.js';
import { MemoryAdmin } from '../support/memory-admin.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * A replication factor (docs/architecture.md "Replication factor",
 * "Placement") on the in-memory store: `githa create` assigns `factor`
 * backends; `githa repo factor` raises it (placement adds backends) or lowers
 * it (non-leaders first, their copies trashed, or left when not manageable).
 */

const R = 'team/app.git';
const IDS = ['b1', 'b2', 'b3', 'b4', 'b5'];
const NOW = new Date('2026-12-06T17:00:00Z');

function setup(managed = IDS) {
  const admins = new Map(managed.map((id) => [id, new MemoryAdmin(id)]));
  const m = memoryCluster(IDS, { factor: 3, admins });
  return { ...m, admins, life: new Lifecycle(m.ctx, () => NOW) };
}

describe('create with a factor', () => {
  it('creates the repository on the 3 least used backends only, recording the assignment, factor and counts', async () => {
    const t = setup();
    await t.store.notePlacement([{ backend: 'b1', repos: 4 }, { backend: 'b2', repos: 4 }]);
    const r = await t.life.create(R, { by: 'op' });
    expect(r.backends).toEqual(['b3', 'b4', 'b5']);
    for (const id of IDS) expect(t.admins.get(id)!.repos.has(R)).toBe(['b3', 'b4', 'b5'].includes(id));
    const state = await t.store.read(R);
    expect(state.assigned).toEqual(['b3', 'b4', 'b5']);
    expect([...state.versions.keys()].sort()).toEqual(['b3', 'b4', 'b5']);
    expect(t.store.repo(R).meta.factor).toBe('3');
    expect(Object.fromEntries([...t.store.usage].map(([b, u]) => [b, u.repos]))).toEqual({ b1: 4, b2: 4, b3: 1, b4: 1, b5: 1 });
  });
});

describe('create with a factor while a backend is down', () => {
  it('places no copy on the down backend, however little it holds', async () => {
    const t = setup();
    await t.store.notePlacement([{ backend: 'b1', repos: 4 }, { backend: 'b2', repos: 4 }]);
    t.ctx.health.seed('b3', false, 'probes fail');
    const r = await t.life.create(R, { by: 'op' });
    // b3 is the least used with b4 and b5; down, it gives its place to one of the busier b1, b2.
    expect(r.backends).toHaveLength(3);
    expect(r.backends).not.toContain('b3');
    expect(r.backends).toEqual(expect.arrayContaining(['b4', 'b5']));
    expect((await t.store.read(R)).assigned).not.toContain('b3');
  });
});

describe('githa repo factor', () => {
  it('raised: placement adds backends, the current ones stay, nothing is copied yet', async () => {
    const t = setup();
    await t.life.create(R, { by: 'op' });
    const before = (await t.store.read(R)).assigned!;
    const r = await changeFactor(t.ctx, R, 4, 'op');
    expect(r.assigned).toHaveLength(4);
    expect(r.assigned).toEqual(expect.arrayContaining([...before]));
    expect(r.added).toHaveLength(1);
    expect((await t.store.read(R)).assigned).toEqual(r.assigned);
    expect(t.store.repo(R).meta.factor).toBe('4');
  });

  it('lowered: a non-leader is unassigned first, its record goes and its copy is trashed', async () => {
    const t = setup();
    await t.life.create(R, { by: 'op' });
    const [a, b, c] = (await t.store.read(R)).assigned!;
    // c is behind: the one to drop.
    t.store.seed(R, { [a!]: [2, 'x'], [b!]: [2, 'x'] });
    const r = await changeFactor(t.ctx, R, 2, 'op', () => NOW);
    expect(r).toMatchObject({ assigned: [a, b].sort(), removed: [c], trashed: [c], left: [], stamp: '20261206T170000Z' });
    const state = await t.store.read(R);
    expect(state.assigned).toEqual([a, b].sort());
    expect(state.versions.has(c!)).toBe(false);
    expect(t.admins.get(c!)!.repos.has(R)).toBe(false);
    expect(t.admins.get(c!)!.calls).toContain(`trash ${R} 20261206T170000Z`);
  });

  it('lowered on a backend githa may not manage: the copy is left and the command to trash it named', async () => {
    const t = setup(['b1', 'b2', 'b3', 'b4', 'b5']);
    await t.life.create(R, { by: 'op' });
    const assigned = (await t.store.read(R)).assigned!;
    const victim = assigned[2]!;
    t.store.seed(R, { [assigned[0]!]: [2, 'x'], [assigned[1]!]: [2, 'x'] });
    t.admins.get(victim)!.unreachable = true;
    const r = await changeFactor(t.ctx, R, 2, 'op', () => NOW);
    expect(r.trashed).toEqual([]);
    expect(r.left).toHaveLength(1);
    expect(r.left[0]!.backend).toBe(victim);
    expect((await t.store.read(R)).assigned).not.toContain(victim);
  });

  it('refuses a factor with no room on distinct hosts', async () => {
    const t = setup();
    await t.life.create(R, { by: 'op' });
    await expect(changeFactor(t.ctx, R, 6, 'op')).rejects.toBeInstanceOf(ReplicationFactorError);
  });
});

describe('rename keeps the assignment', () => {
  it('a renamed repository keeps its assignment', async () => {
    const t = setup();
    await t.life.create(R, { by: 'op' });
    const assigned = (await t.store.read(R)).assigned;
    expect(assigned).toHaveLength(3);
    // The memory admins hold the copies the create made; the Git clients see them too.
    for (const id of assigned!) t.backends.get(id)!.set(R, {});
    await t.life.rename(R, 'team/moved.git', { by: 'op' });
    expect((await t.store.read('team/moved.git')).assigned).toEqual(assigned);
    expect((await t.store.read(R)).assigned).toBeUndefined();
  });
});
