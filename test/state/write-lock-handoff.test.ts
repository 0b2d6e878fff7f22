/**
 * The write lock's handoff against a real redis-server (src/state/lock.ts,
 * src/state/lock-notify.ts; docs/architecture.md "Leases"): a waiter of the
 * same githa is granted as soon as the release lands, waiters of one githa
 * are served first come first served, a waiter of another githa (another
 * WriteLocks on its own connection) hears the release on the channel, the
 * wait still ends "busy" at waitMs, and a release that cannot land is
 * retried while the lock runs out in Redis as before.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { ClusterStateUnavailableError, RepositoryBusyError } from '../../src/errors.js';
import { Keys } from '../../src/state/keys.js';
import { WriteLocks } from '../../src/state/lock.js';
import { useCluster } from '../support/cluster.js';
import { startGateRelay } from '../support/gate-relay.js';
import { waitFor } from '../support/wait.js';

const keys = new Keys('handoff:');
const LEASE = { leaseMs: 10_000, waitMs: 10_000 };
/** A grant this long after the release is a wake-up, not a waiter's own timer (100-150 ms once the channel is heard). */
const PROMPT_MS = 60;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** Holds `repo` until `release()`, which resolves (with the time) once the release has landed. */
async function hold(locks: WriteLocks, repo: string): Promise<{ release: () => Promise<number>; token: string }> {
  const held = gate();
  const end = gate();
  let token = '';
  const done = locks.withLock(repo, async (lock) => {
    token = lock.token;
    held.open();
    await end.wait;
  });
  await held.wait;
  return {
    token,
    release: async () => {
      end.open();
      await done;
      return performance.now();
    },
  };
}

/**
 * Two refusals 90 ms apart or more: the waiter keeps the slow pace, which it
 * does only once it hears the channel (before, it asks every 4 to 50 ms), so
 * a prompt grant after this is a wake-up, not its own timer.
 */
function slowPace(refusals: readonly number[]): boolean {
  return refusals.some((t, i) => i > 0 && t - refusals[i - 1]! >= 90);
}

/** A waiter that tells each refused attempt (`refusals`, times) and resolves `granted` with its grant time. */
function waiter(locks: WriteLocks, repo: string, onGrant: () => void = () => {}): { refusals: number[]; granted: Promise<number> } {
  const refusals: number[] = [];
  const granted = locks.withLock(
    repo,
    async () => {
      const at = performance.now();
      onGrant();
      return at;
    },
    { readState: { whileBusy: () => void refusals.push(performance.now()) } },
  );
  return { refusals, granted };
}

describe('the write lock passes from one holder to the next', () => {
  const cluster = useCluster({ backends: 0 });
  const connections: Redis[] = [];
  const connect = (url = cluster().redis.url, commandTimeout?: number): Redis => {
    const redis = new Redis(url, { maxRetriesPerRequest: 0, ...(commandTimeout ? { commandTimeout } : {}) });
    connections.push(redis);
    return redis;
  };
  afterAll(() => {
    for (const c of connections) c.disconnect();
  });

  it('wakes a waiter of the same githa the moment the release lands', async () => {
    const locks = new WriteLocks(connect(), keys, LEASE);
    const holder = await hold(locks, 'same.git');
    const next = waiter(locks, 'same.git');
    await waitFor('the waiter to keep the slow pace', () => slowPace(next.refusals), 10_000, { intervalMs: 5 });
    const released = await holder.release();
    expect((await next.granted) - released).toBeLessThan(PROMPT_MS);
  });

  it('serves the waiters of one githa first come, first served', async () => {
    const locks = new WriteLocks(connect(), keys, LEASE);
    const holder = await hold(locks, 'fifo.git');
    const order: number[] = [];
    const waiters = [1, 2, 3, 4].map((n) => waiter(locks, 'fifo.git', () => order.push(n)));
    await waitFor('the first waiter to be refused', () => waiters[0]!.refusals.length >= 1);
    // Only the first of the line asks Redis.
    expect(waiters.slice(1).map((w) => w.refusals.length)).toEqual([0, 0, 0]);
    await holder.release();
    await Promise.all(waiters.map((w) => w.granted));
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('wakes a waiter of another githa through the channel', async () => {
    const a = new WriteLocks(connect(), keys, LEASE);
    const b = new WriteLocks(connect(), keys, LEASE);
    const holder = await hold(a, 'other.git');
    const next = waiter(b, 'other.git');
    await waitFor('b to hear the channel', () => slowPace(next.refusals), 10_000, { intervalMs: 5 });
    const released = await holder.release();
    expect((await next.granted) - released).toBeLessThan(PROMPT_MS);
  });

  it('still ends the wait as "busy" at waitMs', async () => {
    const locks = new WriteLocks(connect(), keys, LEASE);
    const holder = await hold(locks, 'busy.git');
    onTestFinished(() => void holder.release());
    const impatient = new WriteLocks(connect(), keys, { leaseMs: 10_000, waitMs: 400 });
    const started = performance.now();
    const queued = waiter(impatient, 'busy.git');
    const behind = waiter(impatient, 'busy.git');
    // Both watched at once: the second may be refused before the first's refusal is awaited.
    await Promise.all([expect(queued.granted).rejects.toBeInstanceOf(RepositoryBusyError), expect(behind.granted).rejects.toBeInstanceOf(RepositoryBusyError)]);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(400);
    expect(waited).toBeLessThan(1_000);
  });

  it('refuses "unavailable" when Redis cannot be reached, its state read behind the attempt refused as well (nothing left unhandled)', async () => {
    // A connection that is not ready and queues nothing: every command is refused at once, the GET behind the read first.
    const down = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    connections.push(down);
    const locks = new WriteLocks(down, keys, LEASE);
    await expect(waiter(locks, 'down.git').granted).rejects.toBeInstanceOf(ClusterStateUnavailableError);
  });

  it('retries a release that cannot land; unlanded, the lock runs out at its lease, and the late release frees nothing of the next holder', async () => {
    const relay = await startGateRelay(cluster().redis.port);
    onTestFinished(() => relay.close());
    const warned: string[] = [];
    const log = { warn: (_o: object, msg: string) => void warned.push(msg) };
    const leaseMs = 1_500;
    const relayed = connect(`redis://127.0.0.1:${relay.port}`, 300);
    const held = new WriteLocks(relayed, keys, { leaseMs, waitMs: 10_000 }, undefined, log);
    const other = new WriteLocks(connect(), keys, { leaseMs: 10_000, waitMs: 10_000 });
    const direct = connect();
    const grantedAt = performance.now();
    const first = await hold(held, 'stuck.git');
    // From now on nothing the holder sends reaches Redis: its release neither.
    relay.hold();
    await first.release();
    expect(warned).toEqual(['write lock release failed; retried until its lease runs out']);
    const next = waiter(other, 'stuck.git');
    const at = await next.granted;
    // Granted once Redis let the lock expire (its lease counts from before the acquisition was sent).
    expect(at - grantedAt).toBeGreaterThanOrEqual(leaseMs - 100);
    // The held release and its retries land now: none frees a lock that is not theirs.
    const third = await hold(other, 'stuck.git');
    relay.pass();
    await waitFor('the held commands to be sent', () => relay.held === 0);
    await relayed.ping();
    expect(await direct.get(keys.lock('stuck.git'))).toBe(third.token);
    expect(warned).toHaveLength(1);
    await third.release();
  });
});
