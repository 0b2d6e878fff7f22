/**
 * `githa recover` and a recorded assignment (src/cluster/recovery.ts; docs/architecture.md "Placement",
 * "Re-replication"): without `replication.factor`, a repository's own factor (`githa repo factor`) is kept; a
 * backend removed from the configuration whose recorded version is above every configured copy's stops the
 * recovery (githa cannot list it, and a record rebuilt without it would drop that version). The store's
 * RECOVER is captured: what recovery asks of it is the decision under test.
 */
import { describe, expect, it } from 'vitest';
import { recoverRepository } from '../../src/cluster/recovery.js';
import type { RepositoryStore } from '../../src/state/repository-store.js';
import { memoryCluster } from '../support/memory-cluster.js';

const R = 'team/app.git';

function setup(ids: string[]) {
  const m = memoryCluster(ids);
  const asked: { copies: string[]; placed?: { assigned: readonly string[]; factor: number } }[] = [];
  const recover: RepositoryStore['recover'] = async (_repo, _token, copies, _detail, placed) => {
    asked.push({ copies: [...copies.keys()], ...(placed ? { placed } : {}) });
    return { status: 'ok', version: 9 };
  };
  (m.store as { recover: RepositoryStore['recover'] }).recover = recover;
  const copiesOn = (on: string[]) => ({ compareCopies: async () => ({ copies: new Map(on.map((b) => [b, 'same'])), missing: [], unreachable: [] }) });
  return { m, asked, copiesOn };
}

describe('recoverRepository with a recorded assignment', () => {
  it('keeps the repository\'s own factor when replication.factor is unset', async () => {
    const { m, asked, copiesOn } = setup(['b1', 'b2', 'b3', 'b4']);
    m.store.seed(R, { b1: [3, 'c'], b2: [3, 'c'] });
    m.store.assign(R, ['b1', 'b2']);
    const r = await recoverRepository(m.ctx, copiesOn(['b1', 'b2', 'b3']), R);
    expect(r).toMatchObject({ status: 'recovered', assigned: ['b1', 'b2'] });
    expect(asked).toEqual([{ copies: ['b1', 'b2'], placed: { assigned: ['b1', 'b2'], factor: 2 } }]);
  });

  it('is skipped while a removed backend is recorded above every configured copy', async () => {
    const { m, asked, copiesOn } = setup(['b1', 'b2', 'b4']);
    m.store.seed(R, { b1: [3, 'c'], b2: [3, 'c'], b3: [4, 'd'] });
    m.store.assign(R, ['b1', 'b2', 'b3']);
    const r = await recoverRepository(m.ctx, copiesOn(['b1', 'b2']), R);
    expect(r).toMatchObject({ status: 'skipped' });
    expect(r.status === 'skipped' && r.reason).toMatch(/b3, not in the configuration/);
    expect(asked).toEqual([]);
  });
});
