/**
 * The lease of a cluster-wide job that one githa runs at a time (today
 * re-replication: docs/architecture.md "Re-replication"): a string key
 * `lease:<name>` holding the holder's random token with a TTL, taken with SET
 * NX PX, renewed and released only by the token's holder, through the one
 * lease discipline of src/state/lease.ts (docs/architecture.md "Leases").
 */
import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis.js';
import { LockLostError } from '../errors.js';
import type { Keys } from './keys.js';
import { Lease } from './lease.js';
import { guarded } from './redis-call.js';

const EXTEND = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface RoleLeases {
  /** The lease when this githa took it; undefined while another githa holds it. */
  acquire(name: string, ttlMs: number): Promise<Lease | undefined>;
}

export class RedisRoleLeases implements RoleLeases {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  async acquire(name: string, ttlMs: number): Promise<Lease | undefined> {
    const key = this.keys.roleLease(name);
    const token = randomUUID();
    const sentAt = performance.now();
    const ok = await guarded(() => this.redis.set(key, token, 'PX', ttlMs, 'NX'));
    if (ok !== 'OK') return undefined;
    const driver = {
      extend: async (ms: number) => Number(await this.redis.eval(EXTEND, 1, key, token, ms)) === 1,
      release: async () => {
        await this.redis.eval(RELEASE, 1, key, token);
      },
    };
    return new Lease(token, driver, ttlMs, sentAt, { lostError: (cause) => new LockLostError(`the ${name} lease was lost`, { cause }) });
  }
}
