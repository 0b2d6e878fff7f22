import type { RedisClient } from './redis.js';
import type { Keys } from './keys.js';
import { guarded } from './redis-call.js';

/** One push-log entry as read back: its stream id, when it was added (ms), its fields. */
export interface LogEntry {
  id: string;
  at: number;
  fields: Record<string, string>;
}

/** Reads a repository's push log (docs/redis.md `log`); the scripts append to it. */
export class PushLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Newest first (oldest first with `oldestFirst`), entries added at or after `sinceMs` only, at most `count`. */
  async read(repo: string, opts: { count?: number; sinceMs?: number; oldestFirst?: boolean } = {}): Promise<LogEntry[]> {
    const key = this.keys.log(repo);
    const since = opts.sinceMs !== undefined ? String(Math.max(0, Math.floor(opts.sinceMs))) : '-';
    const n = opts.count;
    const raw = await guarded(() =>
      opts.oldestFirst
        ? n !== undefined
          ? this.redis.xrange(key, since, '+', 'COUNT', n)
          : this.redis.xrange(key, since, '+')
        : n !== undefined
          ? this.redis.xrevrange(key, '+', since, 'COUNT', n)
          : this.redis.xrevrange(key, '+', since),
    );
    return raw.map(([id, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return { id, at: Number(id.split('-')[0]), fields };
    });
  }
}
