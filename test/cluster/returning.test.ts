import { describe, expect, it } from 'vitest';
import type { BackendOverride } from '../../src/cluster/types.js';
import { ReturningCopies } from '../../src/cluster/returning.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * A backend is verified before it leads again (docs/architecture.md
 * "Verified copies"): an operator's override that enables a backend, or lets
 * it take writes again, is a return; the returning backend's copies of the
 * most recently written repositories go to the copy repairs.
 */

describe('backend overrides', () => {
  it('report a backend enabled again, or made writable again, as a return; nothing else', () => {
    const m = memoryCluster(['b1', 'b2']);
    const seen: string[] = [];
    m.directory.onReturn((id, how) => seen.push(`${id} ${how}`));
    const set = (o: Record<string, BackendOverride>) => m.directory.setOverrides(new Map(Object.entries(o)));
    set({ b2: { enabled: false } });
    set({ b2: { enabled: false, writable: false } });
    expect(seen).toEqual([]);
    set({ b2: { writable: false } });
    expect(seen).toEqual(['b2 enabled']);
    set({});
    expect(seen).toEqual(['b2 enabled', 'b2 writable']);
  });
});

describe('ReturningCopies', () => {
  function setup() {
    const m = memoryCluster(['b1', 'b2']);
    const scheduled: string[] = [];
    let wanted = 0;
    let reached: () => void = () => {};
    const ctx = {
      ...m.ctx,
      config: { ...m.config, verify: { ...m.config.verify, perSecond: 1_000 } },
      repairs: {
        schedule: (repo: string, backend: string, why: string) => {
          scheduled.push(`${backend} ${repo} ${why}`);
          if (scheduled.length === wanted) reached();
        },
      },
    };
    const returning = new ReturningCopies(ctx, { recent: async (limit) => ['r1', 'r2', 'r3'].slice(0, limit) }, 2);
    const until = (n: number) =>
      new Promise<void>((resolve) => {
        wanted = n;
        reached = resolve;
        if (scheduled.length >= n) resolve();
      });
    return { ...m, returning, scheduled, until };
  }

  it('lists nothing at start; verifies a backend enabled again, bounded to its most recent copies', async () => {
    const s = setup();
    s.directory.setOverrides(new Map([['b2', { enabled: false }]]));
    s.returning.start();
    s.directory.setOverrides(new Map());
    await s.until(2);
    // Only the enabled backend's copies: nothing was scheduled at start (it would come first, in order).
    expect(s.scheduled.sort()).toEqual(['b2 r1 returned', 'b2 r2 returned']);
    s.returning.stop();
  });

  it('verifies a backend that comes back up', async () => {
    const s = setup();
    s.returning.start();
    s.ctx.health.markDown('b1');
    s.ctx.health.markUp('b1');
    await s.until(2);
    expect(s.scheduled).toEqual(['b1 r1 returned', 'b1 r2 returned']);
    s.returning.stop();
  });
});
