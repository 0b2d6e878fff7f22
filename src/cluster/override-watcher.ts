/**
 * Keeps a serving githa's backend overrides (`githa backend disable|enable|
 * prevent-writes|allow-writes`) current: a subscriber connection of its own
 * on `<prefix>overrides`; on every message, at start, whenever the
 * subscription comes back after a Redis outage, and every `intervalMs` as a
 * fallback for lost messages, it reads every override (one pipelined round
 * trip on the cluster's connection) and hands them to Cluster.setOverrides.
 * After a message it answers on `<prefix>overrides:ack` so the CLI knows the
 * change is in force here. Redis failures keep the last overrides (one warn
 * per outage).
 */
import type { RedisClient } from '../state/redis.js';
import type { Logger } from '../log.js';
import { connectRedis, redisReady, type RedisTarget } from '../state/redis.js';
import { effectiveOverrides, OverrideStore, type OverrideAck, type OverrideMessage, type StoredOverride } from '../state/overrides.js';
import type { Cluster } from './cluster.js';
import type { Keys } from '../state/keys.js';

export interface OverrideWatcherOptions {
  cluster: Cluster;
  /** The Redis key names (the override hashes and channels). */
  keys: Keys;
  /** The cluster's own connection (reads and acks). */
  redis: RedisClient;
  /** Where the subscriber connects: the same Redis (or Sentinel master) as `redis`. */
  redisTarget: string | RedisTarget;
  commandTimeoutMs: number;
  proxyId: string;
  log: Logger;
  intervalMs?: number;
}

export class OverrideWatcher {
  private readonly store: OverrideStore;
  private sub: RedisClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private current = new Map<string, StoredOverride>();
  private failing = false;
  private loading: Promise<void> = Promise.resolve();

  constructor(private readonly opts: OverrideWatcherOptions) {
    const { cluster } = opts;
    this.store = new OverrideStore(
      opts.redis,
      opts.keys,
      new Map(cluster.config.backends.map((b) => [b.id, { enabled: b.enabled, writable: b.writable }])),
    );
  }

  async start(): Promise<void> {
    const channel = this.store.keys.overrides();
    const sub = connectRedis(this.opts.redisTarget, { commandTimeoutMs: this.opts.commandTimeoutMs });
    this.sub = sub;
    sub.on('message', (ch: string, text: string) => {
      if (ch !== channel) return;
      let msg: Partial<OverrideMessage> = {};
      try {
        msg = JSON.parse(text) as Partial<OverrideMessage>;
      } catch {
        // Any message means "reload".
      }
      void this.reload().then(() => {
        if (typeof msg.nonce !== 'string') return;
        const ack: OverrideAck = { nonce: msg.nonce, proxy: this.opts.proxyId };
        this.opts.redis
          .publish(this.store.keys.overridesAck(), JSON.stringify(ack))
          .catch((err: unknown) => this.opts.log.debug({ err: (err as Error)?.message }, 'backend override acknowledgement not published'));
      });
    });
    // ioredis subscribes again after a reconnect; messages sent meanwhile are lost, so reload then too.
    sub.on('ready', () => {
      sub.subscribe(channel).then(
        () => void this.reload(),
        () => {},
      );
    });
    // At start-up the cluster's connection may still be connecting (it queues nothing).
    await redisReady(this.opts.redis, Math.min(this.opts.commandTimeoutMs, 5_000));
    await this.reload();
    this.timer = setInterval(() => void this.reload(), this.opts.intervalMs ?? 5_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sub?.disconnect();
    this.sub = undefined;
    await this.loading;
  }

  /** The overrides last read from Redis (and applied). */
  stored(): ReadonlyMap<string, StoredOverride> {
    return this.current;
  }

  /** Reads every override and applies them; reloads run one after another. */
  reload(): Promise<void> {
    this.loading = this.loading.then(() => this.load());
    return this.loading;
  }

  private async load(): Promise<void> {
    let next: Map<string, StoredOverride>;
    try {
      next = await this.store.readAll();
    } catch (err) {
      if (!this.failing) this.opts.log.warn({ err: (err as Error).message }, 'cannot read backend overrides from Redis; keeping the last ones');
      this.failing = true;
      return;
    }
    if (this.failing) this.opts.log.info('reading backend overrides from Redis again');
    this.failing = false;
    for (const b of this.opts.cluster.config.backends) {
      const before = this.current.get(b.id);
      const after = next.get(b.id);
      if (before?.enabled === after?.enabled && before?.writable === after?.writable) continue;
      this.opts.log.info(
        {
          backend: b.id,
          enabled: after?.enabled ?? b.enabled,
          writable: after?.writable ?? b.writable,
          override: { enabled: after?.enabled, writable: after?.writable },
          by: after?.by,
        },
        'backend override changed',
      );
    }
    this.current = next;
    this.opts.cluster.setOverrides(effectiveOverrides(next));
  }
}
