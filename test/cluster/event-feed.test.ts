/**
 * EventFeed (src/cluster/event-feed.ts): githa:events through a consumer
 * group, against a real redis-server (docs/redis.md "githa:events").
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { EventFeed, type EventFeedOptions, type FeedEvent } from '../../src/cluster/event-feed.js';
import { useCluster } from '../support/cluster.js';

const KEY = 'githa:events';

describe('EventFeed', () => {
  const cluster = useCluster({ backends: 0 });
  const connections: Redis[] = [];
  let n = 0;

  afterEach(async () => {
    for (const c of connections.splice(0)) c.disconnect();
    await cluster().redis.cli('DEL', KEY);
  });

  function connect(): Redis {
    const r = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    connections.push(r);
    return r;
  }

  function feed(consumer: string, opts: Partial<EventFeedOptions> = {}): EventFeed {
    return new EventFeed({ redis: connect(), key: KEY, group: 'replicators', consumer, blockMs: 100, claimIdleMs: 60_000, ...opts });
  }

  async function write(repo: string, version: number): Promise<string> {
    return cluster().redis.cli('XADD', KEY, '*', 'repo', repo, 'version', String(version), 'backend', 'b1');
  }

  async function pending(): Promise<number> {
    return Number((await cluster().redis.cli('XPENDING', KEY, 'replicators')).split('\n')[0]);
  }

  /** Reads until `count` events came (a read with nothing new returns []). */
  async function take(f: EventFeed, count: number): Promise<FeedEvent[]> {
    const got: FeedEvent[] = [];
    for (let i = 0; i < 50 && got.length < count; i++) got.push(...(await f.next()));
    return got;
  }

  it('delivers entries written while nobody read, each to one consumer of the group, with repository, version and time', async () => {
    const a = feed(`a${++n}`);
    const b = feed(`b${n}`);
    await a.open();
    await b.open();
    const ids = [await write('one.git', 3), await write('two.git', 7)];
    const got = await take(a, 2);
    expect(got.map((e) => [e.id, e.repo, e.version])).toEqual([
      [ids[0], 'one.git', 3],
      [ids[1], 'two.git', 7],
    ]);
    expect(got[0]!.at).toBe(Number(ids[0]!.split('-')[0]));
    expect(await b.next()).toEqual([]);
    expect(await pending()).toBe(2);
    a.ack(ids);
    await a.next();
    expect(await pending()).toBe(0);
  });

  it('a consumer started again under the same name first gets what it had not acknowledged', async () => {
    const name = `same${++n}`;
    const before = feed(name);
    await before.open();
    const id = await write('left.git', 2);
    expect((await take(before, 1)).map((e) => e.id)).toEqual([id]);
    // "Restart": a new feed, same consumer name; nothing new is written.
    const after = feed(name);
    expect((await after.next()).map((e) => e.id)).toEqual([id]);
  });

  it("takes over another consumer's entries once they are idle longer than claimIdleMs", async () => {
    const dead = feed(`dead${++n}`);
    await dead.open();
    const id = await write('orphan.git', 5);
    expect((await take(dead, 1)).map((e) => e.id)).toEqual([id]);
    const alive = feed(`alive${n}`, { claimIdleMs: 300 });
    const got = await take(alive, 1);
    expect(got.map((e) => e.id)).toEqual([id]);
    const owner = (await cluster().redis.cli('XPENDING', KEY, 'replicators', '-', '+', '10')).split('\n')[1];
    expect(owner).toBe(`alive${n}`);
  });

  it('acknowledges pending entries trimmed from the stream without handing them out', async () => {
    const f = feed(`trim${++n}`);
    await f.open();
    const id = await write('gone.git', 1);
    await take(f, 1);
    await cluster().redis.cli('XDEL', KEY, id);
    const again = feed(`trim${n}`);
    expect(await again.next()).toEqual([]);
    await again.next();
    expect(await pending()).toBe(0);
  });

  it('creates the group again when the stream was deleted (NOGROUP), and goes on', async () => {
    const f = feed(`lost${++n}`);
    await f.open();
    await cluster().redis.cli('DEL', KEY);
    await expect(f.next()).rejects.toThrow(/NOGROUP/);
    await f.next();
    const id = await write('back.git', 1);
    expect((await take(f, 1)).map((e) => e.id)).toEqual([id]);
  });

  it('removes consumers with nothing pending that were idle longer than forgetConsumerMs, never itself', async () => {
    const old = feed(`old${++n}`);
    await old.open();
    await old.next();
    const self = feed(`self${n}`, { forgetConsumerMs: 0, claimIdleMs: 10 });
    // The sweep ends on its first page here (nothing pending): it removes the idle consumer.
    await self.next();
    const names = (await cluster().redis.cli('XINFO', 'CONSUMERS', KEY, 'replicators')).split('\n');
    expect(names).toContain(`self${n}`);
    expect(names).not.toContain(`old${n}`);
  });
});
