import { EventEmitter, once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelPool, type ChannelLease, type ChannelPoolOptions } from '../../src/backends/channel-pool.js';
import { BackendUnavailableError } from '../../src/errors.js';

/** Stands in for an ssh2 Client: end() emits 'end', then 'close' a turn later, as ssh2 does. */
class FakeConnection extends EventEmitter {
  ended = false;
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
    setImmediate(() => this.emit('close'));
  }
  destroy(): void {
    this.emit('close');
  }
}

const pools: ChannelPool<FakeConnection>[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function setup(overrides: Partial<ChannelPoolOptions<FakeConnection>> = {}): { pool: ChannelPool<FakeConnection>; made: FakeConnection[] } {
  const made: FakeConnection[] = [];
  const pool = new ChannelPool<FakeConnection>({
    id: 'b1',
    label: 'SSH',
    maxChannels: 2,
    maxConnections: 2,
    timeoutMs: 5_000,
    connect: async () => {
      const conn = new FakeConnection();
      made.push(conn);
      return conn;
    },
    ...overrides,
  });
  pools.push(pool);
  return { pool, made };
}

/** A connect() the test completes by hand. */
function gatedConnect(): {
  connect: () => Promise<FakeConnection>;
  calls: number;
  /** Emits 'call' when connect() is called. */
  events: EventEmitter;
  open(): FakeConnection;
  fail(err: Error): void;
} {
  let settle: { resolve: (c: FakeConnection) => void; reject: (e: Error) => void } | undefined;
  const gate = {
    calls: 0,
    events: new EventEmitter(),
    connect: () =>
      new Promise<FakeConnection>((resolve, reject) => {
        gate.calls++;
        settle = { resolve, reject };
        gate.events.emit('call');
      }),
    open: (): FakeConnection => {
      const conn = new FakeConnection();
      settle!.resolve(conn);
      return conn;
    },
    fail: (err: Error): void => settle!.reject(err),
  };
  return gate;
}

/** The indexes and values of the first `n` of `promises` to resolve. */
function firstResolved<T>(promises: Promise<T>[], n: number): Promise<Map<number, T>> {
  return new Promise((resolve) => {
    const got = new Map<number, T>();
    promises.forEach((p, i) => {
      p.then(
        (v) => {
          got.set(i, v);
          if (got.size === n) resolve(new Map(got));
        },
        // A rejected one is simply not among the first resolved; the test asserts on those.
        () => {},
      );
    });
  });
}

describe('ChannelPool slots', () => {
  it('runs sequential leases on one connection; only the first is fresh', async () => {
    const { pool, made } = setup();
    for (let i = 0; i < 5; i++) {
      const lease = await pool.lease();
      expect(lease.connection).toBe(made[0]);
      expect(lease.fresh).toBe(i === 0);
      lease.release();
    }
    expect(pool.connections).toBe(1);
    expect(pool.size).toBe(1);
  });

  it('takes the least busy connection and opens another only when every slot is taken', async () => {
    const { pool, made } = setup({ maxChannels: 2, maxConnections: 2 });
    const a = await pool.lease();
    const b = await pool.lease();
    expect(b.connection).toBe(a.connection);
    const c = await pool.lease();
    expect(c.connection).not.toBe(a.connection);
    expect(c.fresh).toBe(true);
    const d = await pool.lease();
    expect(d.connection).toBe(c.connection);
    a.release();
    // made[0] has one channel, made[1] two.
    expect((await pool.lease()).connection).toBe(made[0]);
    expect(pool.connections).toBe(2);
  });

  it('frees a slot once however often a lease is released', async () => {
    const { pool, made } = setup({ maxChannels: 2, maxConnections: 2 });
    const a = await pool.lease();
    await pool.lease();
    a.release();
    a.release();
    expect((await pool.lease()).connection).toBe(made[0]);
    expect((await pool.lease()).connection).toBe(made[1]);
  });

  it('opens at most maxConnections; further leases wait for a released slot', async () => {
    const { pool, made } = setup({ maxChannels: 1, maxConnections: 3 });
    const leases = Array.from({ length: 5 }, () => pool.lease());
    const winners = await firstResolved(leases, 3);
    expect(new Set([...winners.values()].map((l) => l.connection)).size).toBe(3);
    expect(made).toHaveLength(3);
    const waiting = leases.filter((_, i) => !winners.has(i));
    const [freed] = [...winners.values()] as [ChannelLease<FakeConnection>];
    freed.release();
    const [next] = [...(await firstResolved(waiting, 1)).values()] as [ChannelLease<FakeConnection>];
    expect(next.connection).toBe(freed.connection);
    expect(next.fresh).toBe(false);
    next.release();
    await Promise.all(waiting);
    expect(pool.connections).toBe(3);
  });

  it('gives up when no slot is freed within timeoutMs', async () => {
    const { pool } = setup({ maxChannels: 1, maxConnections: 1, timeoutMs: 50 });
    await pool.lease();
    const started = Date.now();
    const waiter = pool.lease();
    await expect(waiter).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(waiter).rejects.toThrow('backend b1: all 1 SSH channels stayed busy for 50 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('shares one connection attempt between concurrent leases', async () => {
    const gate = gatedConnect();
    const { pool } = setup({ connect: gate.connect, maxChannels: 10, maxConnections: 4 });
    const leases = Array.from({ length: 5 }, () => pool.lease());
    const conn = gate.open();
    for (const lease of await Promise.all(leases)) expect(lease.connection).toBe(conn);
    expect(gate.calls).toBe(1);
  });
});

describe('ChannelPool abort', () => {
  it('rejects a lease waiting for a slot with the signal’s reason; the slot accounting is unchanged', async () => {
    const { pool } = setup({ maxChannels: 1, maxConnections: 1 });
    const held = await pool.lease();
    const ac = new AbortController();
    const waiter = pool.lease(ac.signal);
    const reason = new Error('client went away');
    ac.abort(reason);
    await expect(waiter).rejects.toBe(reason);
    held.release();
    expect((await pool.lease()).connection).toBe(held.connection);
  });

  it('rejects a lease waiting for a connection; the connection still joins the pool', async () => {
    const gate = gatedConnect();
    const { pool } = setup({ connect: gate.connect });
    const ac = new AbortController();
    const waiter = pool.lease(ac.signal);
    ac.abort(new Error('stop'));
    await expect(waiter).rejects.toThrow('stop');
    const next = pool.lease();
    const conn = gate.open();
    expect((await next).connection).toBe(conn);
    expect(gate.calls).toBe(1);
    expect(pool.connections).toBe(1);
  });

  it('refuses an already aborted signal without connecting', async () => {
    const { pool, made } = setup();
    await expect(pool.lease(AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
    expect(made).toHaveLength(0);
  });
});

describe('ChannelPool connections', () => {
  it('fails every lease sharing a failed attempt, and waits before the next attempt', async () => {
    const gate = gatedConnect();
    const { pool } = setup({ connect: gate.connect });
    const leases = [pool.lease(), pool.lease()];
    const failure = new BackendUnavailableError('backend b1 is unreachable over SSH: refused', 'b1');
    gate.fail(failure);
    const failedAt = Date.now();
    for (const lease of leases) await expect(lease).rejects.toBe(failure);
    const called = once(gate.events, 'call');
    const next = pool.lease();
    await called;
    expect(gate.calls).toBe(2);
    expect(Date.now() - failedAt).toBeGreaterThanOrEqual(95); // the 100 ms back-off
    const conn = gate.open();
    expect((await next).connection).toBe(conn);
  });

  it('replaces a connection that closed', async () => {
    const { pool, made } = setup();
    (await pool.lease()).release();
    made[0]!.emit('close');
    expect(pool.size).toBe(0);
    const lease = await pool.lease();
    expect(lease.connection).toBe(made[1]);
    expect(lease.fresh).toBe(true);
  });

  it('puts no new channels on a retired connection and ends it with its last channel', async () => {
    const { pool, made } = setup({ maxChannels: 2, maxConnections: 2 });
    const a = await pool.lease();
    const b = await pool.lease();
    a.release();
    a.retireConnection();
    expect((await pool.lease()).connection).toBe(made[1]);
    expect(made[0]!.ended).toBe(false);
    b.release();
    expect(made[0]!.ended).toBe(true);
    await once(made[0]!, 'close');
    expect(pool.size).toBe(1);
  });

  it('takes no new channels on a connection that ended by itself', async () => {
    const { pool, made } = setup();
    const a = await pool.lease();
    made[0]!.emit('end');
    expect((await pool.lease()).connection).toBe(made[1]);
    a.release();
  });

  it('closes extra connections after idleMs without channels; the first stays', async () => {
    const { pool, made } = setup({ maxChannels: 1, maxConnections: 2, idleMs: 20 });
    const a = await pool.lease();
    const b = await pool.lease();
    a.release();
    b.release();
    await once(made[1]!, 'close');
    expect(made[0]!.ended).toBe(false);
    expect(pool.size).toBe(1);
  });
});

describe('ChannelPool close', () => {
  it('fails waiting and later leases and ends every connection', async () => {
    const { pool, made } = setup({ maxChannels: 1, maxConnections: 1 });
    await pool.lease();
    const refused = expect(pool.lease()).rejects.toThrow('backend b1: the SSH client is closed');
    await pool.close();
    await refused;
    await expect(pool.lease()).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(made[0]!.ended).toBe(true);
    expect(pool.size).toBe(0);
  });

  it('ends a connection that was being made when the pool closed', async () => {
    const gate = gatedConnect();
    const { pool } = setup({ connect: gate.connect });
    const refused = expect(pool.lease()).rejects.toThrow('the SSH client is closed');
    const closing = pool.close();
    const conn = gate.open();
    await closing;
    expect(conn.ended).toBe(true);
    await refused;
    expect(pool.connections).toBe(0);
  });
});
