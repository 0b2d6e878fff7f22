/**
 * Operator overrides of a backend's configured flags (`githa backend
 * disable|enable|prevent-writes|allow-writes`), stored in the backend's hash
 * `githa:backend:<id>` next to the shared health fields (which only
 * src/state/backend-health.ts touches):
 *
 * - `override.enabled`, `override.writable`: '1' or '0'; absent = the
 *   configuration's value. A change back to the configured value removes the
 *   field, so `enable` after `disable` returns the backend to its config.
 * - `override.drain`: '1' while the backend is drained (`githa backend
 *   drain`): placement gives it no new repository and moves empty it
 *   (docs/architecture.md "Moves"); absent otherwise.
 * - `override.maintenance`: '1' when `githa backend disable B --maintenance`
 *   said B is coming back: its repositories are not re-replicated elsewhere
 *   while it is down (docs/architecture.md "Re-replication"). Any other
 *   `disable` or `enable` removes it.
 * - `override.by`, `override.at` (ms): who changed them last, and when.
 *
 * After a change the CLI publishes `{ nonce, backend }` on `<prefix>overrides`;
 * every serving githa (src/cluster/override-watcher.ts) reloads all overrides
 * and answers `{ nonce, proxy }` on `<prefix>overrides:ack`, so the CLI can
 * tell when every githa applies the change.
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis.js';
import { GithaError } from '../errors.js';
import type { Keys } from './keys.js';
import { redisReady } from './redis.js';

/** A backend id not in the configuration. */
export class UnknownBackendError extends GithaError {
  readonly code = 'GITHA_ERR_UNKNOWN_BACKEND';
}

export interface StoredOverride {
  enabled?: boolean;
  writable?: boolean;
  /** Being drained (`githa backend drain`). */
  drain?: boolean;
  /** Disabled for planned maintenance: coming back, not re-replicated. */
  maintenance?: boolean;
  by?: string;
  at?: number;
}

export type OverrideFlag = 'enabled' | 'writable' | 'drain';

const FIELDS = ['override.enabled', 'override.writable', 'override.by', 'override.at', 'override.drain', 'override.maintenance'] as const;

/** What a change message carries (JSON on the overrides channel). */
export interface OverrideMessage {
  nonce: string;
  backend: string;
}

export interface OverrideAck {
  nonce: string;
  proxy: string;
}

export class OverrideStore {
  constructor(
    private readonly redis: RedisClient,
    readonly keys: Keys,
    /** Configured backends: id → configured flags. */
    private readonly configured: ReadonlyMap<string, { enabled: boolean; writable: boolean }>,
  ) {}

  /** Every configured backend's stored override (backends without one are absent). Throws when Redis cannot answer. */
  async readAll(): Promise<Map<string, StoredOverride>> {
    const ids = [...this.configured.keys()];
    const out = new Map<string, StoredOverride>();
    if (ids.length === 0) return out;
    // One HMGET per backend, sent together: each backend's hash is in a slot of its own (no pipeline on a Redis Cluster).
    const rows = await Promise.all(ids.map((id) => this.redis.hmget(this.keys.backend(id), ...FIELDS)));
    ids.forEach((id, i) => {
      const [enabled, writable, by, at, drain, maintenance] = rows[i] ?? [];
      const o: StoredOverride = {};
      if (enabled === '1' || enabled === '0') o.enabled = enabled === '1';
      if (writable === '1' || writable === '0') o.writable = writable === '1';
      if (drain === '1') o.drain = true;
      if (maintenance === '1') o.maintenance = true;
      if (o.enabled === undefined && o.writable === undefined && o.drain === undefined && !o.maintenance) return;
      if (by) o.by = by;
      if (at && Number.isFinite(Number(at))) o.at = Number(at);
      out.set(id, o);
    });
    return out;
  }

  /** Refuses ids that are not configured. */
  check(id: string): void {
    if (!this.configured.has(id)) {
      throw new UnknownBackendError(`unknown backend ${JSON.stringify(id)}: the configured backends are ${[...this.configured.keys()].join(', ')}`);
    }
  }

  /**
   * Sets one flag of one backend (removing the override when `value` is the
   * configured value), then publishes the change. Returns the nonce of the
   * message and how many subscribers (serving githas) received it. A change
   * of `enabled` sets `override.maintenance` when `maintenance` (a disable
   * for planned maintenance) and removes it otherwise.
   */
  async set(id: string, flag: OverrideFlag, value: boolean, by: string, maintenance = false): Promise<{ nonce: string; receivers: number }> {
    this.check(id);
    const key = this.keys.backend(id);
    const field = `override.${flag}`;
    const tx = this.redis.multi();
    // A drain is never configured: off is the field's absence.
    const configured = flag === 'drain' ? false : this.configured.get(id)![flag];
    if (configured === value) tx.hdel(key, field);
    else tx.hset(key, field, value ? '1' : '0');
    if (flag === 'enabled' && maintenance && !value) tx.hset(key, 'override.maintenance', '1');
    else if (flag === 'enabled') tx.hdel(key, 'override.maintenance');
    tx.hset(key, 'override.by', by, 'override.at', String(Date.now()));
    await tx.exec();
    const nonce = randomUUID();
    const message: OverrideMessage = { nonce, backend: id };
    const receivers = await this.redis.publish(this.keys.overrides(), JSON.stringify(message));
    return { nonce, receivers };
  }
}

/** The overrides as the cluster uses them (Cluster.setOverrides). */
export function effectiveOverrides(stored: ReadonlyMap<string, StoredOverride>): Map<string, { enabled?: boolean; writable?: boolean; drain?: boolean }> {
  const out = new Map<string, { enabled?: boolean; writable?: boolean; drain?: boolean }>();
  for (const [id, o] of stored) {
    const e: { enabled?: boolean; writable?: boolean; drain?: boolean } = {};
    if (o.enabled !== undefined) e.enabled = o.enabled;
    if (o.writable !== undefined) e.writable = o.writable;
    if (o.drain) e.drain = true;
    out.set(id, e);
  }
  return out;
}

/**
 * Subscribes `sub` (a connection of its own, in subscriber mode) to the ack
 * channel and returns a function that waits for `count` acks of `nonce`.
 * Subscribe before publishing, so no ack is missed.
 */
export async function listenForAcks(
  sub: RedisClient,
  keys: Keys,
  readyMs: number,
): Promise<{ wait(nonce: string, count: number, timeoutMs: number): Promise<string[]>; close(): void }> {
  if (!(await redisReady(sub, readyMs))) throw new Error('Redis not ready');
  const channel = keys.overridesAck();
  const acks: OverrideAck[] = [];
  let notify: (() => void) | undefined;
  sub.on('message', (ch: string, text: string) => {
    if (ch !== channel) return;
    try {
      const ack = JSON.parse(text) as OverrideAck;
      if (typeof ack.nonce === 'string' && typeof ack.proxy === 'string') acks.push(ack);
    } catch {
      return;
    }
    notify?.();
  });
  await sub.subscribe(channel);
  return {
    async wait(nonce, count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      const mine = (): string[] => acks.filter((a) => a.nonce === nonce).map((a) => a.proxy);
      while (mine().length < count && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
          notify = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return [...new Set(mine())].sort();
    },
    close() {
      sub.disconnect();
    },
  };
}
