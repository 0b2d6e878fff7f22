/**
 * A backend removed from the configuration while repositories are still
 * assigned to it (docs/architecture.md "Re-replication"): it is lost at once
 * (it can never come back as configured), its repositories get a replacement
 * caught up from a configured leader, and it leaves their assignment; a
 * repository whose newest version is on removed backends alone is left as it
 * is. The planner's decisions and the ReReplicator on an in-memory store.
 */
import { describe, expect, it } from 'vitest';
import { chooseReplacement, planRepo, type BackendView } from '../../src/cluster/re-replication-plan.js';
import { ReReplicator } from '../../src/cluster/re-replication.js';
import { buildConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { StoredOverride } from '../../src/state/overrides.js';
import { healthOf, MemoryReReplication, MemoryRoleLeases, overridesOf } from '../support/memory-re-replication.js';

const AFTER = 60_000;
const view = (id: string, extra: Partial<BackendView> = {}): BackendView => ({ id, enabled: true, up: true, maintenance: false, ...extra });

describe('planRepo for a backend removed from the configuration', () => {
  // b3 is not configured any more.
  const backends = ['b1', 'b2', 'b4'].map((id) => view(id));
  const o = { mayStart: true, backends, usage: new Map<string, number>() };

  it('adds a replacement (the removed backend is not kept), waits for its catch-up, then drops the removed backend', async () => {
    const m = new MemoryReReplication();
    m.put('r', { b1: 4, b2: 4, b3: 4 }, ['b1', 'b2', 'b3']);
    expect(chooseReplacement('r', ['b1', 'b2', 'b3'], backends, new Map())).toBe('b4');
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'add', target: 'b4' });
    await m.addReplacement('r', { expected: ['b1', 'b2', 'b3'], lost: 'b3', target: 'b4', now: 0, log: {} });
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'wait', replacement: 'b4' });
    m.rec('r').versions.set('b4', 4);
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'drop', replacement: 'b4' });
  });

  it('changes nothing when the newest version is on removed backends alone', async () => {
    const m = new MemoryReReplication();
    m.put('only', { b1: 3, b3: 5 }, ['b1', 'b3']);
    m.put('two-removed', { b1: 3, b3: 5, b9: 5 }, ['b1', 'b3', 'b9']);
    m.put('drifted', { b1: 5, b2: 4, b3: 5 }, ['b1', 'b2', 'b3']);
    m.rec('drifted').drift.add('b1');
    m.put('shared', { b1: 5, b3: 5 }, ['b1', 'b3']);
    expect(planRepo('only', await m.read('only'), 'b3', o)).toEqual({ kind: 'orphaned', version: 5, reachable: 3 });
    expect(planRepo('two-removed', await m.read('two-removed'), 'b9', o)).toEqual({ kind: 'orphaned', version: 5, reachable: 3 });
    // A drifted copy is no catch-up source.
    expect(planRepo('drifted', await m.read('drifted'), 'b3', o)).toEqual({ kind: 'orphaned', version: 5, reachable: 4 });
    expect(planRepo('shared', await m.read('shared'), 'b3', o).kind).toBe('add');
  });
});

/** Four configured backends (b3 removed from the five the repositories were placed on), githas sharing one memory store. */
function cluster() {
  const ids = ['b1', 'b2', 'b4', 'b5'];
  const config = buildConfig(
    {
      redis: { url: 'redis://127.0.0.1:1' },
      backends: ids.map((id, i) => ({ id, http: `http://127.0.0.1:${10_000 + i}/` })),
      replication: { factor: 3, reReplicateAfterMs: AFTER },
    },
    {},
  );
  const m = new MemoryReReplication();
  m.removed = 'b1 b2 b3 b4 b5';
  m.put('a', { b1: 2, b2: 2, b3: 2 }, ['b1', 'b2', 'b3']);
  m.put('b', { b2: 1, b3: 1, b4: 1 }, ['b2', 'b3', 'b4']);
  m.put('c', { b1: 7, b2: 7, b4: 7 }, ['b1', 'b2', 'b4']);
  const up = new Map(ids.map((id) => [id, true]));
  const enqueued: string[] = [];
  const leases = new MemoryRoleLeases();
  const githa = () =>
    new ReReplicator({
      config,
      log: createLogger('silent'),
      store: m,
      repos: m,
      leases: leases.forGitha(),
      health: healthOf(up),
      overrides: overridesOf(new Map<string, StoredOverride>()),
      replicator: { enqueue: (repo) => enqueued.push(repo) },
      now: () => 1_000_000,
    });
  return { m, enqueued, githa, up };
}

function catchUpAll(m: MemoryReReplication): void {
  for (const r of m.repos.values()) {
    const max = Math.max(...[...r.assigned].map((b) => r.versions.get(b) ?? 0));
    for (const b of r.assigned) if (!r.versions.has(b)) r.versions.set(b, max);
  }
}

describe('ReReplicator with a backend removed from the configuration', () => {
  it('replaces it at once, drops it once caught up, and does not look again with the same configuration', async () => {
    const c = cluster();
    // b3 was down before it was removed: its down-since entry goes (no loop over the configured backends clears it).
    c.m.down.set('b3', 5);
    const g = c.githa();
    await g.tick();
    expect(c.m.scans).toBe(1);
    expect(c.m.down.has('b3')).toBe(false);
    expect(c.m.assignedOf('a')).toHaveLength(4);
    expect(c.m.assignedOf('b')).toHaveLength(4);
    expect(c.m.assignedOf('c')).toEqual(['b1', 'b2', 'b4']);
    expect(c.enqueued.sort()).toEqual(['a', 'b']);
    expect(c.m.rec('a').log[0]).toMatchObject({ event: 're-replicate', step: 'add', lost: 'b3' });
    // Not caught up yet: b3 stays, and the check is not recorded as done.
    await g.tick();
    expect(c.m.assignedOf('a')).toContain('b3');
    expect(c.m.removed).toBe('b1 b2 b3 b4 b5');
    catchUpAll(c.m);
    await g.tick();
    for (const repo of ['a', 'b', 'c']) {
      expect(c.m.assignedOf(repo)).toHaveLength(3);
      expect(c.m.assignedOf(repo)).not.toContain('b3');
      expect(c.m.rec(repo).versions.has('b3')).toBe(false);
    }
    expect(c.m.removed).toBe('b1 b2 b4 b5');
    await g.stop();
    // Another githa with the same configuration: no scan, no lease.
    const g2 = c.githa();
    await g2.tick();
    await g2.tick();
    expect(c.m.scans).toBe(1);
    await g2.stop();
  });

  it('leaves a repository whose newest version is only on the removed backend as it is', async () => {
    const c = cluster();
    c.m.put('orphan', { b1: 1, b2: 1, b3: 2 }, ['b1', 'b2', 'b3']);
    const g = c.githa();
    await g.tick();
    catchUpAll(c.m);
    await g.tick();
    await g.tick();
    expect(c.m.assignedOf('orphan')).toEqual(['b1', 'b2', 'b3']);
    expect(c.m.rec('orphan').versions.get('b3')).toBe(2);
    expect(c.m.rec('orphan').log).toEqual([]);
    expect(c.m.assignedOf('a')).not.toContain('b3');
    // Done, the orphan left as it is: only a change of configuration (b3 back) looks at it again.
    expect(c.m.removed).toBe('b1 b2 b4 b5');
    await g.stop();
  });

  it('is taken over by another githa when the holder stops', async () => {
    const c = cluster();
    const [g1, g2] = [c.githa(), c.githa()];
    await g1.tick();
    await g2.tick();
    expect(c.m.assignedOf('a')).toHaveLength(4);
    await g1.stop();
    catchUpAll(c.m);
    await g2.tick();
    expect(c.m.assignedOf('a')).toEqual(['b1', 'b2', expect.not.stringMatching(/^b3$/)]);
    expect(c.m.removed).toBe('b1 b2 b4 b5');
    await g2.stop();
  });

  it('decides at start: one read when this configuration was handled, none after; with no repository known, done at once', async () => {
    const c = cluster();
    c.m.removed = 'b1 b2 b4 b5';
    const g = c.githa();
    await g.prepare();
    await g.tick();
    expect(c.m.scans).toBe(0);
    expect(c.m.assignedOf('a')).toContain('b3');
    await g.stop();
    // A fresh Redis: nothing can be assigned to a removed backend; the list is written before githa serves, and no pass scans.
    const empty = cluster();
    empty.m.repos.clear();
    empty.m.removed = null;
    const h = empty.githa();
    await h.prepare();
    expect(empty.m.removed).toBe('b1 b2 b4 b5');
    await h.tick();
    expect(empty.m.scans).toBe(0);
    await h.stop();
  });

  it('parks repositories whose newest version is only on the removed backend: the others are replaced however many, and the job ends', async () => {
    const c = cluster();
    const normal = new Map(c.m.repos);
    c.m.repos.clear();
    // More orphans than one tick visits (PER_TICK), ahead of every other repository in the index.
    for (let i = 0; i < 250; i++) c.m.put(`orphan${i}`, { b1: 1, b3: 2 }, ['b1', 'b3']);
    for (const [r, rec] of normal) c.m.repos.set(r, rec);
    const g = c.githa();
    for (let i = 0; i < 3; i++) await g.tick();
    expect(c.m.assignedOf('a')).toHaveLength(4);
    catchUpAll(c.m);
    for (let i = 0; i < 3; i++) await g.tick();
    expect(c.m.assignedOf('a')).not.toContain('b3');
    expect(c.m.assignedOf('orphan0')).toEqual(['b1', 'b3']);
    // Finished with the orphans left as they are: the list is written and the lease goes.
    expect(c.m.removed).toBe('b1 b2 b4 b5');
    await g.stop();
  });

  it('waits while another githa still reports the backend up (its configuration still has it)', async () => {
    const c = cluster();
    c.up.set('b3', true);
    const g = c.githa();
    await g.tick();
    await g.tick();
    expect(c.m.assignedOf('a')).toEqual(['b1', 'b2', 'b3']);
    expect(c.m.removed).toBe('b1 b2 b3 b4 b5');
    // Once no githa reports it, the replacement starts.
    c.up.delete('b3');
    await g.tick();
    expect(c.m.assignedOf('a')).toHaveLength(4);
    await g.stop();
  });
});
