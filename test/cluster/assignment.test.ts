import { describe, expect, it } from 'vitest';
import { isAssigned, scoped, scopedState, writeQuorumOf } from '../../src/cluster/assignment.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { Cluster } from '../../src/cluster/cluster.js';
import { summarize } from '../../src/cluster/status.js';
import { buildConfig } from '../../src/config/load.js';
import { QuorumUnavailableError } from '../../src/errors.js';
import type { RepoState } from '../../src/state/repo-state.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * A repository's assignment (docs/architecture.md "Replication factor"):
 * routing, the write quorum and status count only the assigned backends; an
 * unassigned holder of a copy is ignored.
 */

const R = 'team/app.git';
const A = 'a'.repeat(40);
const at = (refs: Record<string, string>): string => refsChecksum(Object.entries(refs).map(([name, oid]) => ({ name, oid })));
const state = (versions: Record<string, number>, assigned?: string[]): RepoState => ({
  versions: new Map(Object.entries(versions)),
  checksums: new Map(Object.keys(versions).map((b) => [b, 'c'])),
  suspect: new Map(),
  drift: new Map(Object.keys(versions).filter((b) => b === 'b5').map((b) => [b, { checksum: 'x', at: 1 }])),
  ...(assigned ? { assigned } : {}),
});

describe('assignment', () => {
  it('no assignment: every backend', () => {
    const s = state({ b1: 1, b2: 1 });
    expect(isAssigned(s, 'b9')).toBe(true);
    expect(scoped(s, ['b1', 'b2', 'b3'])).toEqual(['b1', 'b2', 'b3']);
    expect(scopedState(s)).toBe(s);
  });

  it('scopes versions, checksums, drift and backends to the assignment', () => {
    const s = state({ b1: 3, b2: 2, b4: 5, b5: 1 }, ['b1', 'b2', 'b3']);
    expect(scoped(s, [{ id: 'b1' }, { id: 'b4' }, { id: 'b3' }]).map((b) => b.id)).toEqual(['b1', 'b3']);
    const mine = scopedState(s);
    expect([...mine.versions.keys()]).toEqual(['b1', 'b2']);
    expect([...mine.checksums.keys()]).toEqual(['b1', 'b2']);
    expect(mine.drift.size).toBe(0);
  });

  it('write quorum: a majority of the assignment unless set, never more than the assignment', () => {
    const derived = buildConfig({ redis: { url: 'redis://x:1' }, backends: [1, 2, 3, 4, 5].map((i) => ({ id: `b${i}`, http: `http://h:${i}/` })) }, {}).replication;
    expect(derived.writeQuorum).toBe(3);
    expect(writeQuorumOf(derived, {})).toBe(3);
    expect(writeQuorumOf(derived, { assigned: ['b1', 'b2', 'b3'] })).toBe(2);
    expect(writeQuorumOf(derived, { assigned: ['b1'] })).toBe(1);
    expect(writeQuorumOf(derived, { assigned: ['b1', 'b2', 'b3', 'b4'] })).toBe(3);
    expect(writeQuorumOf({ writeQuorum: 1 }, { assigned: ['b1', 'b2', 'b3'] })).toBe(1);
    expect(writeQuorumOf({ writeQuorum: 4 }, { assigned: ['b1', 'b2', 'b3'] })).toBe(3);
  });

  it('status: an unassigned backend is neither stale nor a leader; the quorum is the assignment\'s', () => {
    const replication = { writeQuorum: 3, writeQuorumDerived: true };
    const s = state({ b1: 3, b2: 3, b4: 3 }, ['b1', 'b2', 'b3']);
    const sum = summarize(s, ['b1', 'b2', 'b3', 'b4', 'b5'], replication, undefined, 1e9);
    expect(sum).toMatchObject({ state: 'partial', leaders: ['b1', 'b2'], stale: ['b3'], writeQuorum: 2, assigned: ['b1', 'b2', 'b3'] });
    expect(summarize(state({ b1: 3, b2: 3 }, ['b1', 'b2']), ['b1', 'b2', 'b3'], replication, undefined, 1e9).state).toBe('synchronized');
  });
});

describe('routing with an assignment', () => {
  it('reads never go to an unassigned holder, even when it is the only leader at the newest version', async () => {
    const m = memoryCluster(['b1', 'b2', 'b3']);
    const v = { 'refs/heads/main': A };
    for (const b of ['b1', 'b2', 'b3']) m.backends.get(b)!.set(R, v);
    m.store.seed(R, { b1: [4, at(v)], b2: [4, at(v)], b3: [4, at(v)] });
    m.store.assign(R, ['b2', 'b3']);
    const cluster = new Cluster(m.ctx, m.directory);
    for (let i = 0; i < 4; i++) {
      const route = await cluster.routeRead(R);
      expect(route.candidates.map((b) => b.id).sort()).toEqual(['b2', 'b3']);
    }
    // Only b1 (unassigned) is at version 5: it leads nothing, the assigned ones at 4 serve.
    m.store.seed(R, { b1: [5, at(v)] });
    expect((await cluster.routeRead(R)).candidates.map((b) => b.id).sort()).toEqual(['b2', 'b3']);
  });

  it('pushes go to an assigned leader; the quorum check counts assigned backends that are up', async () => {
    const m = memoryCluster(['b1', 'b2', 'b3'], { writeQuorum: 2 });
    const v = { 'refs/heads/main': A };
    for (const b of ['b1', 'b2', 'b3']) m.backends.get(b)!.set(R, v);
    m.store.seed(R, { b1: [4, at(v)], b2: [4, at(v)], b3: [4, at(v)] });
    m.store.assign(R, ['b1', 'b3']);
    const cluster = new Cluster(m.ctx, m.directory);
    const adv = await cluster.routeWriteAdvertisement(R);
    expect(adv.candidates.map((b) => b.id).sort()).toEqual(['b1', 'b3']);
    // b3 down: one assigned backend up, the quorum of 2 is not met, though b2 (unassigned) is up.
    m.ctx.health.markDown('b3', 'test');
    await expect(cluster.routeWriteAdvertisement(R)).rejects.toBeInstanceOf(QuorumUnavailableError);
  });
});

describe('adoption with a factor', () => {
  const found = (m: ReturnType<typeof memoryCluster>, on: string[]): void => {
    for (const b of on) m.backends.get(b)!.set(R, { 'refs/heads/main': A });
  };

  it('assigns the copies found, and placement adds the rest up to the factor', async () => {
    const m = memoryCluster(['b1', 'b2', 'b3', 'b4', 'b5'], { factor: 3 });
    found(m, ['b4']);
    const state = await new Cluster(m.ctx, m.directory).routeRead(R).then(() => m.store.read(R));
    expect(state.assigned).toHaveLength(3);
    expect(state.assigned).toContain('b4');
    expect(m.store.repo(R).meta.factor).toBe('3');
  });

  it('assigns factor of the copies found when more hold it, the least used first', async () => {
    const m = memoryCluster(['b1', 'b2', 'b3', 'b4', 'b5'], { factor: 3 });
    found(m, ['b1', 'b2', 'b3', 'b4']);
    await m.store.notePlacement([{ backend: 'b2', repos: 7 }]);
    await new Cluster(m.ctx, m.directory).routeRead(R);
    const state = await m.store.read(R);
    expect(state.assigned).toEqual(['b1', 'b3', 'b4']);
    // Only the assigned holders are recorded: b2's equal copy stays on disk untracked, counting nowhere.
    expect([...state.versions.keys()].sort()).toEqual(['b1', 'b3', 'b4']);
  });
});
