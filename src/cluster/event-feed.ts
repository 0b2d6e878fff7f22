import type { RedisClient } from '../state/redis.js';

/** One githa:events entry: "repository `repo` reached `version`", committed at `at` (ms, from the entry id). */
export interface FeedEvent {
  id: string;
  repo: string;
  version: number;
  at: number;
}

export interface EventFeedOptions {
  /** A connection of its own: XREADGROUP BLOCK holds it for up to blockMs. */
  redis: RedisClient;
  /** The stream (githa:events). */
  key: string;
  /** The consumer group every githa reads in (docs/redis.md). */
  group: string;
  /** This githa's consumer name (its proxyId). */
  consumer: string;
  /** How long one read blocks (under the connection's command timeout). */
  blockMs: number;
  /** An entry delivered this long ago and still not acknowledged is taken over (its githa is taken for dead). */
  claimIdleMs: number;
  /** Entries per read. */
  count?: number;
  /** A consumer with nothing pending and idle this long is removed from the group (a githa gone for good). */
  forgetConsumerMs?: number;
}

type Entry = [id: string, fields: string[] | null] | null;

/**
 * This githa's share of githa:events, through a Redis Streams consumer group
 * (docs/architecture.md "Background replication"): every entry is delivered
 * to one githa of the group and stays pending until that githa acknowledges
 * it, so an entry written while no githa read (a restart, a stopped process,
 * Redis unreachable) is delivered when one reads again, and the entries of a
 * githa that died before acknowledging are taken over by another after
 * claimIdleMs. Nothing is delivered twice on purpose, but an entry may be
 * (a taken-over entry whose githa was only slow): handling must be idempotent.
 *
 * `next()` returns the next entries to handle: first this consumer's own
 * pending ones (a restart with the same proxyId), then, between blocking reads
 * of new entries, the stale pending entries of any consumer (XAUTOCLAIM).
 * `ack()` marks entries handled; acknowledgements go out with the next call.
 * One caller at a time; errors are thrown to it (call again to go on).
 */
export class EventFeed {
  private phase: 'setup' | 'own' | 'new' = 'setup';
  /** Where the re-read of this consumer's pending entries stands. */
  private ownFrom = '0';
  private claimFrom = '0-0';
  private claimDue = 0;
  private acks: string[] = [];
  private readonly count: number;

  constructor(private readonly opts: EventFeedOptions) {
    this.count = opts.count ?? 500;
  }

  /** Marks entries handled (XACK with the next `next()`). */
  ack(ids: readonly string[]): void {
    this.acks.push(...ids);
  }

  /**
   * Creates the group if there is none (XGROUP CREATE … $ MKSTREAM; BUSYGROUP
   * is fine). From then on every new entry is kept for the group: what was
   * written before the group existed is for a scan to find.
   */
  /** Where a new group starts: `$` at first (a scan covers what came before), `0` once the group was lost. */
  private createFrom = '$';

  async open(): Promise<void> {
    if (this.phase !== 'setup') return;
    try {
      await this.opts.redis.xgroup('CREATE', this.opts.key, this.opts.group, this.createFrom, 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
    this.phase = 'own';
    this.ownFrom = '0';
  }

  /** The next entries to handle; [] when a blocking read found none. */
  async next(): Promise<FeedEvent[]> {
    try {
      await this.flushAcks();
      await this.open();
      if (this.phase === 'own') {
        const entries = await this.read(this.ownFrom, false);
        if (entries.length > 0) {
          this.ownFrom = entries[entries.length - 1]![0];
          return this.events(entries);
        }
        this.phase = 'new';
      }
      if (performance.now() >= this.claimDue) {
        const events = await this.claim();
        if (events.length > 0) return events;
      }
      return this.events(await this.read('>', true));
    } catch (err) {
      // A reply lost with the connection may have delivered entries: read our pending ones again.
      // NOGROUP: the stream or group is gone (Redis lost its data, or the key was deleted): create it again.
      if (this.phase !== 'setup' && /NOGROUP/.test((err as Error).message)) {
        this.phase = 'setup';
        // The stream came back without its group (deleted, or Redis lost it): every entry in it was
        // written since, and none was handed to anyone, so the new group starts at its beginning.
        this.createFrom = '0';
      } else if (this.phase !== 'setup') this.phase = 'own';
      this.ownFrom = '0';
      throw err;
    }
  }

  private async flushAcks(): Promise<void> {
    if (this.acks.length === 0) return;
    const ids = this.acks;
    this.acks = [];
    try {
      await this.opts.redis.xack(this.opts.key, this.opts.group, ...ids);
    } catch (err) {
      this.acks.unshift(...ids);
      throw err;
    }
  }

  private async read(from: string, block: boolean): Promise<Entry[]> {
    const { redis, key, group, consumer, blockMs } = this.opts;
    const reply = (await (block
      ? redis.xreadgroup('GROUP', group, consumer, 'COUNT', this.count, 'BLOCK', blockMs, 'STREAMS', key, from)
      : redis.xreadgroup('GROUP', group, consumer, 'COUNT', this.count, 'STREAMS', key, from))) as [string, Entry[]][] | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** One XAUTOCLAIM page; a finished sweep waits half of claimIdleMs for the next. */
  private async claim(): Promise<FeedEvent[]> {
    const { redis, key, group, consumer, claimIdleMs } = this.opts;
    const reply = (await redis.xautoclaim(key, group, consumer, claimIdleMs, this.claimFrom, 'COUNT', this.count)) as [string, Entry[], string[]?];
    this.claimFrom = reply[0];
    if (this.claimFrom === '0-0') {
      this.claimDue = performance.now() + claimIdleMs / 2;
      await this.forgetConsumers();
    }
    return this.events(reply[1]);
  }

  /** Consumers of githas gone for good (a proxyId with the pid in it changes at every restart) would pile up in XINFO. */
  private async forgetConsumers(): Promise<void> {
    const { redis, key, group, consumer } = this.opts;
    const forgetMs = this.opts.forgetConsumerMs ?? 24 * 3_600_000;
    const rows = (await redis.xinfo('CONSUMERS', key, group)) as (string | number)[][];
    for (const row of rows) {
      const info = new Map<string, string | number>();
      for (let i = 0; i + 1 < row.length; i += 2) info.set(String(row[i]), row[i + 1]!);
      const name = String(info.get('name'));
      if (name !== consumer && Number(info.get('pending')) === 0 && Number(info.get('idle')) > forgetMs) {
        await redis.xgroup('DELCONSUMER', key, group, name);
      }
    }
  }

  /** Entries to events; an entry trimmed away (no fields) or without a repository is acknowledged at once. */
  private events(entries: Entry[]): FeedEvent[] {
    const out: FeedEvent[] = [];
    for (const entry of entries) {
      if (!entry) continue;
      const [id, fields] = entry;
      const repo = field(fields, 'repo');
      if (!repo) {
        this.acks.push(id);
        continue;
      }
      out.push({ id, repo, version: Number(field(fields, 'version')), at: Number(id.split('-')[0]) });
    }
    return out;
  }
}

function field(fields: string[] | null, name: string): string | undefined {
  for (let i = 0; fields && i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
