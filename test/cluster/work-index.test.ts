/**
 * The work index's judgement on the in-memory store (src/state/needs-work.ts,
 * the same rule as the scripts' src/state/scripts/work.ts) and the shared
 * sweep (src/cluster/work-sweep.ts): one githa per interval sweeps, a changed
 * backend list sweeps at once (docs/architecture.md "Background replication").
 */
import { describe, expect, it } from 'vitest';
import { WorkSweep } from '../../src/cluster/work-sweep.js';
import { createLogger } from '../../src/log.js';
import { MemoryStore } from '../support/memory-store.js';
import { memoryWorkIndex } from '../support/memory-work.js';

const ALL = ['b1', 'b2', 'b3'];

describe('work index on the in-memory store', () => {
  it('a repository enters when a copy is stale or missing, or a marker, suspect, drift or freeze is there, and leaves when whole', async () => {
    const store = new MemoryStore();
    store.seed('whole.git', { b1: [2, 'c'], b2: [2, 'c'], b3: [2, 'c'] });
    store.seed('stale.git', { b1: [2, 'c'], b2: [2, 'c'], b3: [1, 'o'] });
    store.seed('missing.git', { b1: [1, 'c'], b2: [1, 'c'] });
    store.seed('drift.git', { b1: [1, 'c'], b2: [1, 'c'], b3: [1, 'c'] });
    store.repo('drift.git').drift.b2 = 'x 1';
    expect((await memoryWorkIndex(store, ALL)).sort()).toEqual(['drift.git', 'missing.git', 'stale.git']);
    // Without the configured list, only the recorded backends count: the missing copy is not seen.
    expect((await memoryWorkIndex(store)).sort()).toEqual(['drift.git', 'stale.git']);

    expect(await store.commitCatchUp('stale.git', { target: 'b3', version: 2, checksum: 'c', source: 'b1', log: {} })).toEqual({ kind: 'ok', version: 2 });
    await store.clearDrift('drift.git', 'b2');
    await store.freeze('whole.git', 'maintenance', 'op', ['b1']);
    expect((await memoryWorkIndex(store, ALL)).sort()).toEqual(['missing.git', 'whole.git']);
    expect(await store.reindex('stale.git')).toBe(false);
    expect(await store.reindex('whole.git')).toBe(true);
  });

  it('an assignment replaces the configured backends', async () => {
    const store = new MemoryStore();
    store.seed('placed.git', { b1: [3, 'c'], b2: [3, 'c'] });
    expect(await memoryWorkIndex(store, ALL)).toEqual(['placed.git']);
    const read = store.read.bind(store);
    store.read = async (repo) => ({ ...(await read(repo)), assigned: ['b1', 'b2'] });
    expect(await memoryWorkIndex(store, ALL)).toEqual([]);
  });
});

describe('the shared sweep', () => {
  /** Two githas' sweeps over one fake index: the claim and the stored backend list as Redis keeps them. */
  function shared(names: string[]) {
    let claim: string | undefined;
    let stored: string | undefined;
    const judged: string[] = [];
    const index = {
      async *repositories() {
        yield names;
      },
      async claimPeriodic(_task: string, owner: string) {
        if (claim !== undefined) return false;
        claim = owner;
        return true;
      },
      async swapSweepBackends(list: string) {
        const before = stored;
        stored = list;
        return before !== list;
      },
    };
    const sweep = (owner: string, backends: string[]) =>
      new WorkSweep({ index, repos: { reindex: async (r) => (judged.push(r), false) }, owner, backends, intervalMs: 60_000, log: createLogger('silent') });
    return { sweep, judged, lapse: () => (claim = undefined) };
  }

  it('one githa of two sweeps per interval; the next interval, whoever asks first', async () => {
    const s = shared(['a.git', 'b.git']);
    const one = s.sweep('g1', ALL);
    const two = s.sweep('g2', ALL);
    expect(await one.maybeSweep()).toBe(true);
    expect(await two.maybeSweep()).toBe(false);
    expect(s.judged).toEqual(['a.git', 'b.git']);
    s.lapse();
    expect(await two.maybeSweep()).toBe(true);
    expect(await one.maybeSweep()).toBe(false);
    expect(s.judged).toHaveLength(4);
  });

  it('a backend added to the config sweeps at once, claim or not', async () => {
    const s = shared(['a.git']);
    expect(await s.sweep('g1', ALL).maybeSweep()).toBe(true);
    expect(await s.sweep('g2', ALL).maybeSweep()).toBe(false);
    expect(await s.sweep('g2', [...ALL, 'b4']).maybeSweep()).toBe(true);
    expect(s.judged).toEqual(['a.git', 'a.git']);
  });
});
