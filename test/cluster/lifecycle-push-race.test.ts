import { describe, expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { Lifecycle } from '../../src/cluster/lifecycle.js';
import type { WriteLockService } from '../../src/state/lock.js';
import { LinkedAdmin } from '../support/linked-admin.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * A push that passed its first check and then waits for the write lock
 * while a delete or rename holds it (docs/operations.md "Repository
 * lifecycle"): once it has the lock it is told what happened to the
 * repository, not that its leaders are lost.
 */

const R = 'team/app.git';
const S = 'team/moved.git';
const by = { by: 'op', via: 'cli' };

function setup(change: (life: Lifecycle) => Promise<unknown>) {
  const admins = new Map<string, LinkedAdmin>();
  const m = memoryCluster(['b1', 'b2'], { admins });
  for (const [id, b] of m.backends) admins.set(id, new LinkedAdmin(b));
  for (const id of ['b1', 'b2']) {
    m.backends.get(id)!.set(R, { 'refs/heads/main': 'c'.repeat(40) });
    admins.get(id)!.repos.add(R);
  }
  m.store.seed(R, { b1: [1, 'x'], b2: [1, 'x'] });
  const life = new Lifecycle(m.ctx);
  // The operator's command takes the lock first: it runs to its end before the push's turn.
  let first = true;
  const writeLocks: WriteLockService = Object.create(m.ctx.writeLocks as object) as WriteLockService;
  writeLocks.withLock = async (repo, fn) => {
    if (first) {
      first = false;
      await change(life);
    }
    return m.ctx.writeLocks.withLock(repo, fn);
  };
  const cluster = new Cluster({ ...m.ctx, writeLocks }, m.directory);
  return { ...m, cluster };
}

describe('a push waiting for the lock of a repository being deleted or renamed', () => {
  it('is told the repository was deleted', async () => {
    const t = setup((life) => life.delete(R, by));
    await expect(t.cluster.write({ repo: R, user: 'alice', transport: 'ssh' }, async () => ({}) as never)).rejects.toThrow(`repository ${R} was deleted`);
  });

  it('is told the new name', async () => {
    const t = setup((life) => life.rename(R, S, by));
    await expect(t.cluster.write({ repo: R, user: 'alice', transport: 'ssh' }, async () => ({}) as never)).rejects.toThrow(`repository ${R} was renamed to ${S}`);
  });
});
