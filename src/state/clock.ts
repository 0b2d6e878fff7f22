import type { Redis } from 'ioredis';
import { guarded } from './redis-call.js';

/** Time as Redis tells it. */
export interface Clock {
  now(): Promise<number>;
}

/** Redis's clock in ms: marker heartbeats are written with it, so their ages are measured with it too. */
export class RedisClock implements Clock {
  constructor(private readonly redis: Redis) {}

  async now(): Promise<number> {
    const [sec, usec] = await guarded(() => this.redis.time());
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  }
}
