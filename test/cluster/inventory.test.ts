import { describe, expect, it } from 'vitest';
import { Backends } from '../../src/cluster/backends.js';
import { Cluster } from '../../src/cluster/cluster.js';
import { collectStatus } from '../../src/cluster/cluster-status.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import { classify, Inventory, type TombstoneSource } from '../../src/cluster/inventory.js';
import type { BackendClient } from '../../src/backends/types.js';
import { RepositoryGoneError } from '../../src/errors.js';
import type { Gone } from '../../src/state/repo-state.js';
import type { RepositoryStore, Versioned } from '../../src/state/repository-store.js';
import { MemoryAdmin } from '../support/memory-admin.js';
import { MemoryStore, MemoryWriteLocks } from '../support/memory-store.js';
import { memoryCluster, type FakeBackend } from '../support/memory-cluster.js';

/** The memory store plus `recover` (what `githa recover` and `--track` write): every copy a leader at version 1. */
function recoveringStore(): MemoryStore {
  const store = new MemoryStore();
  (store as RepositoryStore).recover = async (repo, token, copies): Promise<Versioned<'ok' | 'ambiguous' | 'lock'>> => {
    if (store.locks.get(repo) !== token) return { status: 'lock', version: 0 };
    if (new Set(copies.values()).size > 1) return { status: 'ambiguous', version: 0 };
    for (const [b, c] of copies) store.seed(repo, { [b]: [1, c] });
    return { status: 'ok', version: 1 };
  };
  return store;
}

const DELETED: Gone = { kind: 'deleted', at: 1, by: 'ops', stamp: '20261206T074700Z' };

class Graves implements TombstoneSource {
  constructor(readonly map: Map<string, Gone>) {}
  async all(): Promise<Map<string, Gone>> {
    return new Map(this.map);
  }
  async of(names: readonly string[]): Promise<Map<string, Gone>> {
    return new Map(names.filter((n) => this.map.has(n)).map((n) => [n, this.map.get(n)!]));
  }
}

/**
 * b1 and b2 managed (MemoryAdmin), b3 not (only its Git client can be asked).
 * Placed: t.git everywhere (tracked), m.git on b1,b3 (missing on b2), u.git on
 * b1 unrecorded (untracked), g.git recorded nowhere (ghost), l.git deleted but
 * still on b2 (leftover), x.git on b3 only unrecorded (invisible: b3 cannot list).
 */
function setup(opts: { managed?: string[] } = {}) {
  const m = memoryCluster(['b1', 'b2', 'b3'], { writeQuorum: 2 });
  const store = recoveringStore();
  const recorded = (): string[] => [...store.repos].filter(([, r]) => Object.keys(r.versions).length > 0).map(([name]) => name);
  const managed = opts.managed ?? ['b1', 'b2'];
  const admins = new Map(managed.map((id) => [id, new MemoryAdmin(id)]));
  const directory = new Backends(m.config, m.backends as ReadonlyMap<string, BackendClient>, m.ctx.health, admins);
  const ctx: ClusterContext = {
    ...m.ctx,
    repos: store,
    // Recovery takes the write lock of this store.
    writeLocks: new MemoryWriteLocks(store),
    backends: directory,
    index: {
      ...m.ctx.index,
      // The index: every repository with a record (recover adds to it, as the Redis store does).
      repositories: async function* () {
        yield recorded();
      },
    },
  };
  const place = (repo: string, on: string[], sha = 'a'.repeat(40)): void => {
    for (const id of on) {
      admins.get(id)?.repos.add(repo);
      (m.backends.get(id) as FakeBackend).set(repo, { 'refs/heads/main': sha });
    }
  };
  const record = (repo: string, on: string[]): void => {
    store.seed(repo, Object.fromEntries(on.map((b) => [b, [1, 'c']])));
  };
  const graves = new Graves(new Map());
  place('t.git', ['b1', 'b2', 'b3']);
  record('t.git', ['b1', 'b2', 'b3']);
  place('m.git', ['b1', 'b3']);
  record('m.git', ['b1', 'b2', 'b3']);
  place('u.git', ['b1']);
  record('g.git', ['b1', 'b2', 'b3']);
  place('l.git', ['b2']);
  graves.map.set('l.git', DELETED);
  place('x.git', ['b3']);
  admins.get('b1')?.invalid.push('bad name.git');
  const inventory = new Inventory(ctx, graves);
  return { ctx, store, admins, directory, inventory, graves, recorded, place, record, backends: m.backends };
}

const byRepo = (rows: { repo: string }[]) => Object.fromEntries(rows.map((r) => [r.repo, r]));

describe('classify', () => {
  const answers = (map: Record<string, string[] | undefined>) =>
    new Map(Object.entries(map).map(([b, has]) => [b, (r: string) => (has === undefined ? undefined : has.includes(r))]));

  it('names each class from the record, the tombstones and the answers', () => {
    const rows = classify(
      ['t.git', 'm.git', 'u.git', 'g.git', 'l.git', 'd.git'],
      new Set(['t.git', 'm.git', 'g.git']),
      new Map([
        ['l.git', DELETED],
        ['d.git', DELETED],
      ]),
      answers({ b1: ['t.git', 'm.git', 'u.git'], b2: ['t.git', 'l.git'] }),
    );
    expect(rows.map((r) => [r.repo, r.class, r.copies.join(','), r.missing.join(',')])).toEqual([
      // A deleted repository without a copy is no row at all.
      ['g.git', 'ghost', '', 'b1,b2'],
      ['l.git', 'leftover', 'b2', 'b1'],
      ['m.git', 'missing', 'b1', 'b2'],
      ['t.git', 'tracked', 'b1,b2', ''],
      ['u.git', 'untracked', 'b1', 'b2'],
    ]);
  });

  it('a backend that could not say is unknown: no ghost while it might hold the copy', () => {
    const rows = byRepo(classify(['g.git'], new Set(['g.git']), new Map(), answers({ b1: [], b2: undefined })));
    expect(rows['g.git']).toMatchObject({ class: 'missing', missing: ['b1'], unknown: ['b2'] });
  });

  it('the record\'s own evidence (drift missing) counts as absent', () => {
    const rows = byRepo(classify(['g.git'], new Set(['g.git']), new Map(), answers({ b1: [], b2: undefined }), new Map([['g.git', new Set(['b2'])]])));
    expect(rows['g.git']).toMatchObject({ class: 'ghost', missing: ['b1', 'b2'], unknown: [] });
  });
});

describe('Inventory.survey', () => {
  it('lists the managed backends, probes the others for known names, and classifies every repository', async () => {
    const { inventory } = setup();
    const report = await inventory.survey();
    const rows = byRepo(report.rows);
    expect(rows['t.git']).toMatchObject({ class: 'tracked', copies: ['b1', 'b2', 'b3'] });
    expect(rows['m.git']).toMatchObject({ class: 'missing', copies: ['b1', 'b3'], missing: ['b2'] });
    expect(rows['u.git']).toMatchObject({ class: 'untracked', copies: ['b1'] });
    expect(rows['g.git']).toMatchObject({ class: 'ghost', copies: [], missing: ['b1', 'b2', 'b3'] });
    expect(rows['l.git']).toMatchObject({ class: 'leftover', copies: ['b2'], gone: DELETED });
    // b3 has no admin: its unrecorded copy cannot be found.
    expect(rows['x.git']).toBeUndefined();
    expect(report.notListable).toEqual(['b3']);
    expect(report.counts).toEqual({ tracked: 1, missing: 1, untracked: 1, ghost: 1, leftover: 1 });
    expect(report.backends).toEqual([
      { backend: 'b1', how: 'listed', repositories: 3, invalid: ['bad name.git'] },
      { backend: 'b2', how: 'listed', repositories: 2, invalid: [] },
      { backend: 'b3', how: 'probed', repositories: 2, invalid: [] },
    ]);
  });

  it('a listing-only survey asks nothing of a backend without admin', async () => {
    const { inventory, backends } = setup();
    const b3 = backends.get('b3')!;
    let asked = 0;
    const listRefs = b3.listRefs.bind(b3);
    b3.listRefs = async (repo: string) => {
      asked++;
      return listRefs(repo);
    };
    const report = await inventory.survey({ probe: false });
    expect(asked).toBe(0);
    expect(report.backends[2]).toEqual({ backend: 'b3', how: 'skipped', repositories: 0, invalid: [] });
    // g.git is on neither listed backend, but b3 was not asked: no ghost.
    expect(byRepo(report.rows)['g.git']).toMatchObject({ class: 'missing', unknown: ['b3'] });
  });

  it('an unreachable managed backend is named, and its copies are unknown', async () => {
    const { inventory, admins } = setup();
    admins.get('b2')!.unreachable = true;
    const report = await inventory.survey();
    expect(report.backends[1]).toMatchObject({ backend: 'b2', how: 'unreachable' });
    expect(byRepo(report.rows)['t.git']).toMatchObject({ class: 'tracked', copies: ['b1', 'b3'], unknown: ['b2'] });
    expect(byRepo(report.rows)['l.git']).toBeUndefined();
  });

  it('with scanTombstones off, reads the tombstones of the unrecorded listed names only', async () => {
    const { inventory, graves } = setup();
    const asked: string[][] = [];
    graves.of = async (names) => {
      asked.push([...names].sort());
      return new Map(names.filter((n) => graves.map.has(n)).map((n) => [n, graves.map.get(n)!]));
    };
    graves.all = async () => {
      throw new Error('no scan expected');
    };
    const report = await inventory.survey({ probe: false, scanTombstones: false });
    expect(asked).toEqual([['l.git', 'u.git']]);
    expect(byRepo(report.rows)['l.git']).toMatchObject({ class: 'leftover' });
  });
});

describe('Inventory.track', () => {
  it('adopts an untracked repository from its copies; a recorded one is left as it is', async () => {
    const { inventory, store } = setup();
    await expect(inventory.track('u.git')).resolves.toMatchObject({ status: 'recovered', version: 1, backends: ['b1'] });
    expect(Object.keys(store.repo('u.git').versions)).toEqual(['b1']);
    await expect(inventory.track('t.git')).resolves.toEqual({ repo: 't.git', status: 'already', version: 1 });
  });

  it('refuses a deleted repository: its copy is a leftover', async () => {
    const { inventory, store } = setup();
    Object.assign(store.repo('l.git'), { gone: { kind: 'deleted', at: '1', by: 'ops', stamp: DELETED.stamp } });
    await expect(inventory.track('l.git')).rejects.toThrow(RepositoryGoneError);
    await expect(inventory.track('l.git')).rejects.toThrow(/was deleted/);
    expect(store.repo('l.git').versions).toEqual({});
  });

  it('trackAll adopts many untracked repositories a bounded number at a time, each once, results in order', async () => {
    const s = setup();
    const names = Array.from({ length: 12 }, (_, i) => `bulk${String(i).padStart(2, '0')}.git`);
    for (const n of names) s.place(n, ['b1', 'b2', 'b3']);
    let inFlight = 0;
    let most = 0;
    const b1 = s.backends.get('b1') as FakeBackend;
    const list = b1.listRefs.bind(b1);
    b1.listRefs = async (...args: Parameters<typeof list>) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
        return await list(...args);
      } finally {
        inFlight--;
      }
    };
    const results = await s.inventory.trackAll(undefined, 4);
    expect(results.map((r) => [r.repo, r.status])).toEqual([...names, 'u.git'].sort().map((n) => [n, 'recovered']));
    // b1 is listed once per adoption: 4 adoptions at a time, never more.
    expect(most).toBe(4);
  });

  it('trackAll adopts every untracked repository and nothing else', async () => {
    const { inventory, place } = setup();
    place('v.git', ['b1', 'b2']);
    const results = await inventory.trackAll();
    expect(results.map((r) => [r.repo, r.status])).toEqual([
      ['u.git', 'recovered'],
      ['v.git', 'recovered'],
    ]);
    const after = await inventory.survey();
    expect(after.counts.untracked).toBe(0);
  });
});

describe('collectStatus: copies', () => {
  const collect = async (s: ReturnType<typeof setup>, withInventory: boolean) => {
    const cluster = new Cluster(s.ctx, s.directory);
    const state = {
      repos: s.store,
      index: {
        repositories: async function* () {
          yield s.recorded();
        },
        lastWrites: async (r: readonly string[]) => r.map(() => 0),
      },
    };
    return (await collectStatus(cluster, state, new Map(), undefined, withInventory ? s.inventory : undefined)).copies!;
  };

  it('names missing copies per backend, untracked repositories and ghosts from the listings', async () => {
    const c = await collect(setup(), true);
    expect(c).toMatchObject({
      listed: ['b1', 'b2'],
      notListable: ['b3'],
      missing: { b1: ['g.git'], b2: ['g.git', 'm.git'], b3: [] },
      untracked: ['u.git'],
      leftovers: ['l.git'],
      invalid: { b1: ['bad name.git'] },
    });
    // g.git: on neither listed backend; b3 (not listed) might hold it, and no repair found it missing there.
    expect(c.ghosts).toEqual([]);
  });

  it('without admin anywhere: no listing, only the records\' drift', async () => {
    const s = setup({ managed: [] });
    // What a repair that found no copy records (docs/redis.md `drift`).
    for (const b of ['b1', 'b2', 'b3']) s.store.repo('g.git').drift[b] = 'missing 1 missing';
    s.store.repo('m.git').drift.b2 = 'missing 1 missing';
    const c = await collect(s, true);
    expect(c).toMatchObject({ listed: [], notListable: ['b1', 'b2', 'b3'], untracked: [], ghosts: ['g.git'], missing: { b1: [], b2: ['m.git'], b3: [] } });
  });
});
