/**
 * A pool of connections to one backend that each carry several channels at
 * once (an SSH connection and its exec channels: docs/architecture.md,
 * "Pooled backend connections"). Transport-agnostic: ssh.ts hands it a
 * function that opens one authenticated connection; the unit test hands it
 * fakes. Like undici's pool-base, it only counts and waits.
 *
 * - A lease takes a channel slot on the least busy connection. When every
 *   connection has `maxChannels` channels busy a further one is opened, up to
 *   `maxConnections`; beyond that a lease waits for a free slot, up to
 *   `timeoutMs`. Sequential leases all share the first connection.
 * - One connection attempt at a time: concurrent leases share it, and its
 *   failure. When connecting keeps failing, the next attempt waits first
 *   (100 ms doubling to 2 s), so a dead backend is not hammered.
 * - Extra connections (opened under load) close after `idleMs` without
 *   channels; the first one stays.
 * - A connection that emits 'end' takes no new channels; its 'close' removes
 *   it from the pool (the next lease opens another if needed).
 */
import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { BackendUnavailableError } from '../errors.js';

/** What the pool needs of a connection (ssh2's Client is one). */
export interface PoolConnection extends EventEmitter {
  /** Closes once the channels on it are done; emits 'close' when closed. */
  end(): unknown;
  /** Closes at once. */
  destroy(): unknown;
}

export interface ChannelPoolOptions<C extends PoolConnection> {
  /** The backend's id, for errors. */
  id: string;
  /** The transport's name in errors ("the SSH client is closed"). */
  label: string;
  /** Opens one ready connection; rejects (BackendUnavailableError) when it cannot. */
  connect(): Promise<C>;
  /** Channels open at once on one connection. */
  maxChannels: number;
  /** Connections open at once at most. */
  maxConnections: number;
  /** Longest wait for a free channel slot when all connections are busy. */
  timeoutMs: number;
  /** An extra connection (beyond the first) without channels for this long is closed (default 60 s). */
  idleMs?: number | undefined;
}

/** One channel slot taken on a connection. */
export interface ChannelLease<C> {
  readonly connection: C;
  /** The first slot ever taken on this connection: a channel that fails here is not a stale connection's fault. */
  readonly fresh: boolean;
  /** Frees the slot (the first call only). */
  release(): void;
  /** No new channels on this connection: it is closed once its last channel is. */
  retireConnection(): void;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2_000;
const IDLE_EXTRA_CONNECTION_MS = 60_000;
/** close() waits this long for a connection to close by itself before destroying it. */
const CLOSE_WAIT_MS = 2_000;

interface Entry<C> {
  connection: C;
  /** Slots taken (a slot is freed when its channel is done). */
  active: number;
  /** Slots ever taken: 0 means the connection is fresh. */
  uses: number;
  /** No new channels: closed once its last channel is. */
  retired: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

/** The connection attempt in progress; `failed` is set before the waiters are woken. */
interface Attempt {
  done: Promise<void>;
  failed: boolean;
  error: unknown;
}

export class ChannelPool<C extends PoolConnection> {
  private readonly opts: ChannelPoolOptions<C>;
  private readonly entries: Entry<C>[] = [];
  /**
   * 'change': a slot was freed, a connection came or went, an attempt
   * failed, or the pool closed. Every waiter wakes and looks again.
   */
  private readonly changes = new EventEmitter();
  private connecting: Attempt | undefined;
  private closed = false;
  private failures = 0;
  private lastFailure = 0;
  private made = 0;

  constructor(opts: ChannelPoolOptions<C>) {
    this.opts = opts;
    this.changes.setMaxListeners(0); // one listener per waiting lease
  }

  /** Connections made so far (for metrics and tests). */
  get connections(): number {
    return this.made;
  }

  /** Connections open right now (for metrics and tests). */
  get size(): number {
    return this.entries.length;
  }

  /** Channel slots taken right now, on every connection (the githa_backend_ssh_channels gauge). */
  get busy(): number {
    return this.entries.reduce((sum, e) => sum + e.active, 0);
  }

  /**
   * A channel slot (taken): on the least busy connection, else on a new one
   * while there are fewer than maxConnections, else the first slot freed
   * within timeoutMs. Rejects with `signal.reason` when aborted.
   */
  async lease(signal?: AbortSignal): Promise<ChannelLease<C>> {
    const deadline = Date.now() + this.opts.timeoutMs;
    for (;;) {
      if (this.closed) throw new BackendUnavailableError(`backend ${this.opts.id}: the ${this.opts.label} client is closed`, this.opts.id);
      signal?.throwIfAborted();
      const best = this.leastBusy();
      if (best) return this.take(best);
      if (this.entries.filter((e) => !e.retired).length < this.opts.maxConnections) {
        const attempt = this.connecting ?? this.connect();
        await this.changed(signal);
        if (attempt.failed) throw attempt.error;
        continue; // take a slot on the new connection (or on another one freed meanwhile)
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const { id, label, maxConnections, maxChannels, timeoutMs } = this.opts;
        throw new BackendUnavailableError(`backend ${id}: all ${maxConnections * maxChannels} ${label} channels stayed busy for ${timeoutMs} ms`, id);
      }
      await this.changed(signal, left);
    }
  }

  /** Refuses new leases, wakes the waiting ones (they fail), and closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.changes.emit('change');
    await this.connecting?.done; // a connection made meanwhile is closed by connect()
    await Promise.all(
      this.entries.map(async (entry) => {
        clearTimeout(entry.idleTimer);
        const closed = once(entry.connection, 'close', { signal: AbortSignal.timeout(CLOSE_WAIT_MS) });
        entry.connection.end();
        await closed.catch(() => entry.connection.destroy());
      }),
    );
    this.entries.length = 0;
  }

  private leastBusy(): Entry<C> | undefined {
    let best: Entry<C> | undefined;
    for (const entry of this.entries) {
      if (!entry.retired && entry.active < this.opts.maxChannels && (!best || entry.active < best.active)) best = entry;
    }
    return best;
  }

  private take(entry: Entry<C>): ChannelLease<C> {
    entry.active++;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    let released = false;
    return {
      connection: entry.connection,
      fresh: entry.uses++ === 0,
      release: () => {
        if (released) return;
        released = true;
        this.release(entry);
      },
      retireConnection: () => this.retire(entry),
    };
  }

  /**
   * Until the pool changes, `ms` pass (resolves; the caller checks its
   * deadline), or `signal` aborts (rejects with its reason, as
   * signal.throwIfAborted() does).
   */
  private async changed(signal: AbortSignal | undefined, ms?: number): Promise<void> {
    const timeout = ms === undefined ? undefined : AbortSignal.timeout(ms);
    const stop = signal && timeout ? AbortSignal.any([signal, timeout]) : (signal ?? timeout);
    try {
      await once(this.changes, 'change', { signal: stop });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (!timeout?.aborted) throw err;
    }
  }

  private connect(): Attempt {
    const attempt: Attempt = { done: Promise.resolve(), failed: false, error: undefined };
    this.connecting = attempt;
    attempt.done = this.open()
      .catch((err: unknown) => {
        attempt.failed = true;
        attempt.error = err;
      })
      .then(() => {
        if (this.connecting === attempt) this.connecting = undefined;
        this.changes.emit('change');
      });
    return attempt;
  }

  private async open(): Promise<void> {
    const wait = this.failures === 0 ? 0 : this.lastFailure + Math.min(MIN_BACKOFF_MS * 2 ** (this.failures - 1), MAX_BACKOFF_MS) - Date.now();
    if (wait > 0) await sleep(wait);
    let connection: C;
    try {
      connection = await this.opts.connect();
    } catch (err) {
      this.failures++;
      this.lastFailure = Date.now();
      throw err;
    }
    if (this.closed) {
      connection.end();
      throw new BackendUnavailableError(`backend ${this.opts.id}: the ${this.opts.label} client is closed`, this.opts.id);
    }
    this.failures = 0;
    this.made++;
    const entry: Entry<C> = { connection, active: 0, uses: 0, retired: false, idleTimer: undefined };
    this.entries.push(entry);
    connection.once('close', () => this.remove(entry));
    connection.once('end', () => {
      entry.retired = true;
    });
  }

  private release(entry: Entry<C>): void {
    entry.active--;
    if (entry.active === 0 && entry.retired) entry.connection.end();
    else if (entry.active === 0 && this.entries[0] !== entry && !this.closed) {
      entry.idleTimer = setTimeout(() => this.retire(entry), this.opts.idleMs ?? IDLE_EXTRA_CONNECTION_MS);
      entry.idleTimer.unref();
    }
    this.changes.emit('change');
  }

  private retire(entry: Entry<C>): void {
    entry.retired = true;
    clearTimeout(entry.idleTimer);
    if (entry.active === 0) entry.connection.end();
  }

  private remove(entry: Entry<C>): void {
    const i = this.entries.indexOf(entry);
    if (i >= 0) this.entries.splice(i, 1);
    clearTimeout(entry.idleTimer);
    this.changes.emit('change'); // a waiting lease may open a new one
  }
}
