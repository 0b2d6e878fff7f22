/**
 * Re-replication (docs/architecture.md "Re-replication"): a repository
 * assigned to a backend after that backend's loss event was scanned (a githa
 * that placed it before it saw the backend down, a move) still gets a
 * replacement: while the loss lasts the ReReplicator scans the assignments
 * again every RESCAN_TICKS ticks (src/cluster/re-replication.ts). Found by the
 * review of issue 22: the job held the set read once at the loss event.
 */
import { describe, expect, it } from 'vitest';
import { ReReplicator } from '../../src/cluster/re-replication.js';
import { buildConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import type { StoredOverride } from '../../src/state/overrides.js';
import { healthOf, MemoryReReplication, MemoryRoleLeases, overridesOf } from '../support/memory-re-replication.js';

const AFTER = 60_000;

describe('re-replication of a repository placed on the lost backend after its loss was scanned', () => {
  it('gets a replacement for the lost backend (keeps its factor)', async () => {
    const ids = ['b1', 'b2', 'b3', 'b4', 'b5'];
    const config = buildConfig(
      { redis: { url: 'redis://127.0.0.1:1' }, backends: ids.map((id, i) => ({ id, http: `http://127.0.0.1:${10_000 + i}/` })), replication: { factor: 3, reReplicateAfterMs: AFTER } },
      {},
    );
    const m = new MemoryReReplication();
    m.put('a', { b1: 2, b2: 2, b3: 2 }, ['b1', 'b2', 'b3']);
    const up = new Map(ids.map((id) => [id, true]));
    let now = 1_000_000;
    const g = new ReReplicator({
      config,
      log: createLogger('silent'),
      store: m,
      repos: m,
      leases: new MemoryRoleLeases().forGitha(),
      health: healthOf(up),
      overrides: overridesOf(new Map<string, StoredOverride>()),
      replicator: { enqueue: () => {} },
      now: () => now,
    });
    up.set('b3', false);
    await g.tick();
    now += AFTER;
    await g.tick();
    expect(m.assignedOf('a')).toHaveLength(4);
    // A repository created now and placed on b3 (by a githa that had not seen it down), pushed to b1 and b2.
    m.put('new', { b1: 1, b2: 1 }, ['b1', 'b2', 'b3']);
    for (let i = 0; i < 5; i++) {
      now += 5_000;
      await g.tick();
    }
    // b3 is still down and lost: 'new' should have a replacement like 'a' did.
    expect(m.assignedOf('new')).toHaveLength(4);
  });
});
