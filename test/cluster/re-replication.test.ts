import { describe, expect, it } from 'vitest';
import { chooseReplacement, isLost, planRepo, type BackendView } from '../../src/cluster/re-replication-plan.js';
import { ReReplicator } from '../../src/cluster/re-replication.js';
import { writeQuorumOf } from '../../src/cluster/assignment.js';
import { buildConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { StoredOverride } from '../../src/state/overrides.js';
import { healthOf, MemoryReReplication, MemoryRoleLeases, overridesOf } from '../support/memory-re-replication.js';

const AFTER = 60_000;
const view = (id: string, extra: Partial<BackendView> = {}): BackendView => ({ id, enabled: true, up: true, maintenance: false, ...extra });

describe('isLost', () => {
  it('is down for the threshold, not under maintenance', () => {
    const down = view('b3', { up: false });
    expect(isLost(down, 1_000, 1_000 + AFTER - 1, AFTER)).toBe(false);
    expect(isLost(down, 1_000, 1_000 + AFTER, AFTER)).toBe(true);
    expect(isLost({ ...down, maintenance: true }, 1_000, 1_000 + 10 * AFTER, AFTER)).toBe(false);
    expect(isLost(view('b3', { up: undefined }), 1_000, 1_000 + 10 * AFTER, AFTER)).toBe(false);
    expect(isLost(view('b3'), 1_000, 1_000 + 10 * AFTER, AFTER)).toBe(false);
  });
});

describe('the write quorum while a replacement catches up', () => {
  it('counts a lost backend and its replacement once', () => {
    const derived = { writeQuorum: 2, writeQuorumDerived: true };
    const four = ['b1', 'b2', 'b3', 'b4'];
    expect(writeQuorumOf(derived, { assigned: four })).toBe(3);
    // b4 replaces b3 (down): two live leaders still make the quorum, as before b4 was added.
    expect(writeQuorumOf(derived, { assigned: four, replacing: new Map([['b4', 'b3']]) })).toBe(2);
    // Once b3 left the assignment the entry is gone; a stale one naming an unassigned backend counts nothing.
    expect(writeQuorumOf(derived, { assigned: ['b1', 'b2', 'b4'], replacing: new Map([['b4', 'b3']]) })).toBe(2);
    expect(writeQuorumOf({ writeQuorum: 3 }, { assigned: four, replacing: new Map([['b4', 'b3']]) })).toBe(3);
  });
});

describe('chooseReplacement', () => {
  it('takes an eligible backend outside the assignment, never on an assigned host, preferring a new zone, then the least used', () => {
    const backends = [
      view('b1', { zone: 'a', host: 'h1' }),
      view('b2', { zone: 'b' }),
      view('b3', { zone: 'c', up: false }),
      view('b4', { zone: 'a', host: 'h1' }), // the host of b1
      view('b5', { zone: 'a' }),
      view('b6', { zone: 'c' }),
      view('b7', { zone: 'd', enabled: false }),
      view('b8', { zone: 'd', up: undefined }),
    ];
    // b6 is in the lost backend's zone only, which no live copy holds: preferred over b5 (zone a holds b1).
    expect(chooseReplacement('r', ['b1', 'b2', 'b3'], backends, new Map([['b6', 10]]))).toBe('b6');
    expect(chooseReplacement('r', ['b1', 'b2', 'b3'], backends.filter((b) => b.id !== 'b6'), new Map())).toBe('b5');
    expect(chooseReplacement('r', ['b1', 'b2', 'b3'], backends.filter((b) => b.id !== 'b6' && b.id !== 'b5'), new Map())).toBeUndefined();
  });

  it('spreads equal choices over backends, the same way every time', () => {
    const backends = ['b1', 'b2', 'b3', 'b4', 'b5', 'b6'].map((id) => view(id, { up: id !== 'b1' }));
    const picks = Array.from({ length: 40 }, (_, i) => chooseReplacement(`r${i}`, ['b1', 'b2'], backends, new Map()));
    expect(new Set(picks)).toEqual(new Set(['b3', 'b4', 'b5', 'b6']));
    expect(Array.from({ length: 40 }, (_, i) => chooseReplacement(`r${i}`, ['b1', 'b2'], backends, new Map()))).toEqual(picks);
  });
});

describe('planRepo', () => {
  const backends = ['b1', 'b2', 'b3', 'b4'].map((id) => view(id, { up: id !== 'b3' }));
  const o = { mayStart: true, backends, usage: new Map<string, number>() };

  it('adds a replacement, waits for it to catch up, then drops the lost backend', async () => {
    const m = new MemoryReReplication();
    m.put('r', { b1: 4, b2: 4, b3: 4 }, ['b1', 'b2', 'b3']);
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'add', target: 'b4' });
    await m.addReplacement('r', { expected: ['b1', 'b2', 'b3'], lost: 'b3', target: 'b4', now: 0, log: {} });
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'wait', replacement: 'b4' });
    m.rec('r').versions.set('b4', 3);
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'wait', replacement: 'b4' });
    m.rec('r').versions.set('b4', 4);
    expect(planRepo('r', await m.read('r'), 'b3', { ...o, mayStart: false })).toEqual({ kind: 'drop', replacement: 'b4' });
  });

  it('starts nothing once the backend is back or under maintenance; leaves repositories without the backend alone', async () => {
    const m = new MemoryReReplication();
    m.put('r', { b1: 1, b2: 1, b3: 1 }, ['b1', 'b2', 'b3']);
    m.put('s', { b1: 1, b2: 1 }, ['b1', 'b2']);
    m.put('t', { b1: 1, b2: 1, b3: 1 });
    expect(planRepo('r', await m.read('r'), 'b3', { ...o, mayStart: false })).toEqual({ kind: 'hold' });
    expect(planRepo('s', await m.read('s'), 'b3', o).kind).toBe('done');
    expect(planRepo('t', await m.read('t'), 'b3', o).kind).toBe('done');
  });

  it('does not drop the lost backend while it alone holds the highest version', async () => {
    const m = new MemoryReReplication();
    m.put('r', { b1: 3, b2: 3, b3: 5 }, ['b1', 'b2', 'b3']);
    await m.addReplacement('r', { expected: ['b1', 'b2', 'b3'], lost: 'b3', target: 'b4', now: 0, log: {} });
    m.rec('r').versions.set('b4', 3);
    expect(planRepo('r', await m.read('r'), 'b3', o)).toEqual({ kind: 'wait', replacement: 'b4' });
    expect(await m.dropLost('r', { lost: 'b3', replacement: 'b4', log: {} })).toBe('behind');
  });
});

/** A cluster of five backends and githas sharing one memory store, lease and health, on a hand-moved clock. */
function cluster(o: { maintenance?: boolean } = {}) {
  const ids = ['b1', 'b2', 'b3', 'b4', 'b5'];
  const config = buildConfig(
    {
      redis: { url: 'redis://127.0.0.1:1' },
      backends: ids.map((id, i) => ({ id, http: `http://127.0.0.1:${10_000 + i}/` })),
      replication: { factor: 3, reReplicateAfterMs: AFTER },
    },
    {},
  );
  const m = new MemoryReReplication();
  // No backend was removed from this configuration since the last check (test/cluster/re-replication-removed.test.ts).
  m.removed = ids.join(' ');
  m.put('a', { b1: 2, b2: 2, b3: 2 }, ['b1', 'b2', 'b3']);
  m.put('b', { b2: 1, b3: 1, b4: 1 }, ['b2', 'b3', 'b4']);
  m.put('c', { b1: 7, b2: 7, b4: 7 }, ['b1', 'b2', 'b4']);
  const up = new Map(ids.map((id) => [id, true]));
  const overrides = new Map<string, StoredOverride>();
  if (o.maintenance) overrides.set('b3', { enabled: false, maintenance: true });
  let now = 1_000_000;
  const enqueued: string[] = [];
  const notes: Array<{ backend: string; repos?: number }> = [];
  const leases = new MemoryRoleLeases();
  const githa = () =>
    new ReReplicator({
      config,
      log: createLogger('silent'),
      store: m,
      repos: m,
      leases: leases.forGitha(),
      health: healthOf(up),
      overrides: overridesOf(overrides),
      replicator: { enqueue: (repo) => enqueued.push(repo) },
      usage: { note: async (d) => void notes.push(...d) },
      now: () => now,
    });
  return { m, up, enqueued, notes, githa, advance: (ms: number) => (now += ms) };
}

/** The replicator's catch-up of every replacement, as its copy would record it. */
function catchUpAll(m: MemoryReReplication): void {
  for (const r of m.repos.values()) {
    const max = Math.max(...[...r.assigned].map((b) => r.versions.get(b) ?? 0));
    for (const b of r.assigned) if (!r.versions.has(b)) r.versions.set(b, max);
  }
}

describe('ReReplicator', () => {
  it('re-replicates the repositories of a backend down past the threshold, keeping three copies, and scans once per loss', async () => {
    const c = cluster();
    const g = c.githa();
    c.up.set('b3', false);
    await g.tick();
    c.advance(AFTER - 1);
    await g.tick();
    expect(c.m.assignedOf('a')).toEqual(['b1', 'b2', 'b3']);
    expect(c.m.scans).toBe(0);
    c.advance(1);
    await g.tick();
    // a and b got a fourth assigned backend (the replacement); c, without b3, is untouched.
    expect(c.m.assignedOf('a')).toHaveLength(4);
    expect(c.m.assignedOf('b')).toHaveLength(4);
    expect(c.m.assignedOf('c')).toEqual(['b1', 'b2', 'b4']);
    expect(c.enqueued.sort()).toEqual(['a', 'b']);
    expect(c.m.rec('a').log[0]).toMatchObject({ event: 're-replicate', step: 'add', lost: 'b3' });
    // Not caught up yet: b3 stays assigned.
    await g.tick();
    expect(c.m.assignedOf('a')).toContain('b3');
    catchUpAll(c.m);
    await g.tick();
    for (const repo of ['a', 'b', 'c']) {
      const assigned = c.m.assignedOf(repo);
      expect(assigned).toHaveLength(3);
      expect(assigned).not.toContain('b3');
      expect(new Set(assigned.map((b) => c.m.rec(repo).versions.get(b))).size).toBe(1);
    }
    expect(c.m.rec('a').log[1]).toMatchObject({ event: 're-replicate', step: 'drop', lost: 'b3', version: 2 });
    // The placement usage hint follows: +1 for each replacement, -1 for b3 twice.
    expect(c.notes.filter((n) => n.backend === 'b3')).toEqual([{ backend: 'b3', repos: -1 }, { backend: 'b3', repos: -1 }]);
    expect(c.notes.filter((n) => n.repos === 1)).toHaveLength(2);
    await g.tick();
    await g.tick();
    expect(c.m.scans).toBe(1);
    await g.stop();
  });

  it('leaves a backend disabled with --maintenance in place however long it is down', async () => {
    const c = cluster({ maintenance: true });
    const g = c.githa();
    c.up.set('b3', false);
    await g.tick();
    c.advance(10 * AFTER);
    await g.tick();
    expect(c.m.assignedOf('a')).toEqual(['b1', 'b2', 'b3']);
    expect(c.m.assignedOf('b')).toEqual(['b2', 'b3', 'b4']);
    expect(c.m.scans).toBe(0);
    await g.stop();
  });

  it('starts nothing for a backend that came back before the threshold', async () => {
    const c = cluster();
    const g = c.githa();
    c.up.set('b3', false);
    await g.tick();
    c.advance(AFTER - 1);
    c.up.set('b3', true);
    await g.tick();
    c.up.set('b3', false);
    c.advance(AFTER - 1);
    await g.tick();
    expect(c.m.assignedOf('a')).toEqual(['b1', 'b2', 'b3']);
    expect(c.m.scans).toBe(0);
    await g.stop();
  });

  it('runs in one githa at a time', async () => {
    const c = cluster();
    const [g1, g2] = [c.githa(), c.githa()];
    c.up.set('b3', false);
    await g1.tick();
    await g2.tick();
    c.advance(AFTER);
    await g2.tick();
    expect(c.m.assignedOf('a')).toEqual(['b1', 'b2', 'b3']);
    await g1.tick();
    expect(c.m.assignedOf('a')).toHaveLength(4);
    // The holder stops: the other takes over and finishes the job.
    await g1.stop();
    catchUpAll(c.m);
    await g2.tick();
    expect(c.m.assignedOf('a')).toHaveLength(3);
    expect(c.m.assignedOf('a')).not.toContain('b3');
    await g2.stop();
  });
});
