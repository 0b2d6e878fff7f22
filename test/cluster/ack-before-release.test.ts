/**
 * A push's outcome does not wait for the write lock's release
 * (docs/architecture.md "A push" 4, "Leases"): once the version is
 * committed the lock only queues the next push. The lock is the real one
 * (redlock on a real redis-server, reached through a relay that can hold
 * what githa sends); the rest of the cluster is in memory. The relay holds
 * the release: the push is answered all the same, and the next push (another
 * githa) is refused the lock until the release lands, then granted at once.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { Cluster } from '../../src/cluster/cluster.js';
import type { ForwardResult } from '../../src/cluster/types.js';
import { Keys } from '../../src/state/keys.js';
import { WriteLocks, type WriteLockService } from '../../src/state/lock.js';
import { useCluster } from '../support/cluster.js';
import { startGateRelay } from '../support/gate-relay.js';
import { memoryCluster } from '../support/memory-cluster.js';
import { waitFor } from '../support/wait.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const R = 'team/app.git';

describe('a push is answered before its lock is released', () => {
  const cluster = useCluster({ backends: 0 });
  const connections: Redis[] = [];
  afterAll(() => {
    for (const c of connections) c.disconnect();
  });

  it('answers while the release is held, and the next push waits for the release', async () => {
    const relay = await startGateRelay(cluster().redis.port);
    onTestFinished(() => relay.close());
    const keys = new Keys('ack:');
    const relayed = new Redis(`redis://127.0.0.1:${relay.port}`, { maxRetriesPerRequest: 0 });
    const direct = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    connections.push(relayed, direct);
    const m = memoryCluster(['b1'], { writeQuorum: 1 });
    m.backends.get('b1')!.set(R, { 'refs/heads/main': A });
    m.store.seed(R, { b1: [3, refsChecksum([{ name: 'refs/heads/main', oid: A }])] });
    // The state lives in memory here: the lock's own read of Redis's state is not asked for, and the
    // memory store's guarded scripts learn the lock's token from the grant.
    const refusals: number[] = [];
    const real = (redis: Redis): WriteLockService => {
      const locks = new WriteLocks(redis, keys, { leaseMs: 10_000, waitMs: 10_000 });
      return {
        withLock: (repo, fn, opts) =>
          locks.withLock(
            repo,
            async (lock) => {
              m.store.locks.set(repo, lock.token);
              try {
                return await fn(lock);
              } finally {
                m.store.locks.delete(repo);
              }
            },
            { ...(opts?.releaseAfter ? { releaseAfter: true } : {}), readState: { whileBusy: () => void refusals.push(performance.now()) } },
          ),
      };
    };
    const githa1 = new Cluster({ ...m.ctx, writeLocks: real(relayed) }, m.directory);
    const githa2 = new Cluster({ ...m.ctx, writeLocks: real(direct) }, m.directory);
    const push = (from: string, to: string) => async (target: { id: string }): Promise<ForwardResult> => {
      m.backends.get(target.id)!.refs.get(R)!.set('refs/heads/main', to);
      return { ending: 'complete', report: { unpackOk: true, refs: [{ ref: 'refs/heads/main', ok: true }] }, commands: [{ oldOid: from, newOid: to, ref: 'refs/heads/main' }] };
    };
    const request = { repo: R, user: 'u', transport: 'http' as const, commands: [{ oldOid: A, newOid: B, ref: 'refs/heads/main' }] };

    const first = await githa1.write(request, async (target) => {
      const result = await push(A, B)(target);
      // From here on nothing githa 1 sends reaches Redis: its release neither (the commit is in memory).
      relay.hold();
      return result;
    });
    expect(first).toMatchObject({ kind: 'committed', version: 4 });
    // Answered, and the release has not landed: the lock is still in Redis.
    await waitFor('the release to be sent', () => relay.held > 0);
    expect(await direct.exists(keys.lock(R))).toBe(1);

    let forwardedAt = 0;
    const second = githa2.write({ ...request, commands: [{ oldOid: B, newOid: C, ref: 'refs/heads/main' }] }, async (target) => {
      forwardedAt = performance.now();
      return push(B, C)(target);
    });
    await waitFor('the next push to be refused the lock', () => refusals.length > 0);
    expect(forwardedAt).toBe(0);
    const passedAt = performance.now();
    relay.pass();
    await expect(second).resolves.toMatchObject({ kind: 'committed', version: 5 });
    expect(forwardedAt).toBeGreaterThan(passedAt);
    // Granted promptly once the release lands (the channel, or a first waiter not yet subscribed asking every few ms).
    expect(forwardedAt - passedAt).toBeLessThan(60);
  });
});
