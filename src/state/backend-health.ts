/**
 * Backend health shared in Redis: the only code that reads or writes the
 * health fields of `githa:backend:<id>` (docs/redis.md).
 *
 * The hash also holds operator overrides (issue 6), so the key never gets a
 * TTL of its own. Redis 7.0 has no per-field TTL either: each result carries
 * `health.expires` (epoch ms = `health.at` + ttlMs) and readers ignore a
 * result whose time has passed. That is the TTL: a githa that stopped probing
 * stops vouching for a backend after ttlMs. Times are each githa's wall clock;
 * the TTL (seconds) is far above the clock skew of NTP-synchronised hosts.
 *
 * Writes are one HSET (all five fields, `health.detail` empty when there is
 * none), reads one HMGET per backend, sent together. Redis failures never reach the
 * caller: the checker keeps probing and routing keeps its local view; one warn
 * per outage, one info when writes work again.
 */
import type { RedisClient } from './redis.js';
import type { Logger } from '../log.js';
import type { Keys } from './keys.js';
import { redisReady } from './redis.js';

export interface SharedHealth {
  id: string;
  up: boolean;
  /** Epoch ms of the probe round that wrote it. */
  at: number;
  /** The githa (proxy id) that wrote it. */
  by: string;
  detail?: string;
  /** Epoch ms after which the result says nothing. */
  expires: number;
}

export interface BackendHealthStoreOptions {
  /** This githa's proxy id (`health.by`). */
  proxyId: string;
  /** How long a written result stays valid. */
  ttlMs: number;
  log: Logger;
  /** Wall-clock milliseconds (default Date.now). */
  wallClock?: () => number;
}

const FIELDS = ['health', 'health.at', 'health.by', 'health.detail', 'health.expires'] as const;

/** Longest `health.detail` stored: a probe's error message, never more. */
const MAX_DETAIL = 300;

export class BackendHealthStore {
  private readonly wallClock: () => number;
  private failing = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly opts: BackendHealthStoreOptions,
  ) {
    this.wallClock = opts.wallClock ?? Date.now;
  }

  /** Records this githa's verdict on one backend; true when Redis took it. Never throws. */
  async write(id: string, up: boolean, detail?: string): Promise<boolean> {
    const at = this.wallClock();
    try {
      await this.redis.hset(this.keys.backend(id), {
        health: up ? 'up' : 'down',
        'health.at': String(at),
        'health.by': this.opts.proxyId,
        'health.detail': up ? '' : (detail ?? '').slice(0, MAX_DETAIL),
        'health.expires': String(at + this.opts.ttlMs),
      });
      this.recovered();
      return true;
    } catch (err) {
      this.failed(err);
      return false;
    }
  }

  /**
   * The shared results that have not expired, by backend id. Never throws: on
   * a Redis error, none. `waitReadyMs`: how long to wait for the connection
   * first (at start-up the client is still connecting, and it queues nothing).
   */
  async readFresh(ids: readonly string[], waitReadyMs = 0): Promise<Map<string, SharedHealth>> {
    const out = new Map<string, SharedHealth>();
    if (ids.length === 0) return out;
    let rows: Array<[Error | null, unknown]> | null;
    try {
      if (waitReadyMs > 0) await redisReady(this.redis, waitReadyMs);
      // One HMGET per backend, sent together: each backend's hash is in a slot of its own (no pipeline on a Redis Cluster).
      const settled = await Promise.allSettled(ids.map((id) => this.redis.hmget(this.keys.backend(id), ...FIELDS)));
      rows = settled.map((s): [Error | null, unknown] => (s.status === 'fulfilled' ? [null, s.value] : [s.reason as Error, null]));
      const firstError = rows?.find(([e]) => e)?.[0];
      if (firstError && rows?.every(([e]) => e)) throw firstError;
      this.recovered();
    } catch (err) {
      this.failed(err);
      return out;
    }
    const now = this.wallClock();
    ids.forEach((id, i) => {
      const [err, value] = rows?.[i] ?? [null, null];
      if (err || !Array.isArray(value)) return;
      const [health, at, by, detail, expires] = value as Array<string | null>;
      const result = parse(id, health, at, by, detail, expires);
      if (result && result.expires > now) out.set(id, result);
    });
    return out;
  }

  private failed(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.opts.log.warn({ err: (err as Error).message }, 'cannot share backend health in Redis; probing goes on');
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.opts.log.info('sharing backend health in Redis again');
  }
}

function parse(
  id: string,
  health: string | null | undefined,
  at: string | null | undefined,
  by: string | null | undefined,
  detail: string | null | undefined,
  expires: string | null | undefined,
): SharedHealth | undefined {
  if (health !== 'up' && health !== 'down') return undefined;
  const atMs = Number(at);
  const expiresMs = Number(expires);
  if (!Number.isFinite(atMs) || !Number.isFinite(expiresMs)) return undefined;
  return { id, up: health === 'up', at: atMs, by: by ?? '', expires: expiresMs, ...(detail ? { detail } : {}) };
}
