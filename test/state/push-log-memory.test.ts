/**
 * The push log's memory (docs/redis.md "The push log"): a log the scripts
 * create is rebuilt at its real size (src/state/script.ts compactNewLog), so
 * a repository with one entry costs well under Redis 7's 4 KB pre-sized
 * listpack node, and the entries read back whole and in order as it grows.
 * Against a real redis-server.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openState, type StateParts } from '../../src/state/state.js';
import { useCluster } from '../support/cluster.js';

describe('push-log memory', () => {
  const cluster = useCluster({ backends: 0 });
  let redis: Redis;
  let state: StateParts;

  beforeAll(() => {
    redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    state = openState(redis, { prefix: 'plm:', logMax: 10_000, locks: { leaseMs: 10_000, waitMs: 1_000 } });
  });
  afterAll(() => redis.disconnect());

  const usage = async (key: string) => Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));

  it('an adopted repository\'s one-entry log costs under 1.5 KB (a plain XADD into a new stream: over 4 KB)', async () => {
    expect(await state.repos.adopt('one.git', new Map([['b1', 'c'], ['b2', 'c'], ['b3', 'c']]))).toBe(true);
    const compact = await usage(state.keys.log('one.git'));
    // The same entry as a stream Redis created itself, for comparison (what every log cost before).
    await redis.xadd('plm:plain', '*', 'version', '1', 'event', 'adopt');
    const plain = await usage('plm:plain');
    expect(plain).toBeGreaterThan(4_000);
    expect(compact).toBeLessThan(1_500);
    expect((await state.pushLog.read('one.git')).map((e) => e.fields)).toEqual([{ version: '1', event: 'adopt' }]);
  });

  it('a created repository\'s log is compact too, and later pushes append to it: read back whole, newest first', async () => {
    const repo = 'grow.git';
    expect(await state.repos.create(repo, ['b1', 'b2'], { event: 'create', user: 'op' })).toBe('ok');
    expect(await usage(state.keys.log(repo))).toBeLessThan(1_500);
    await redis.set(state.keys.lock(repo), 'tok');
    for (let i = 0; i < 5; i++) {
      const id = `w${i}`;
      await state.repos.beginWrite(repo, 'tok', { id, backend: 'b1', proxy: 'p', user: 'alice', transport: 'http', started: Date.now(), preChecksum: '' });
      expect(await state.repos.commitWrite(repo, { token: 'tok', writeId: id, backend: 'b1', checksum: `c${i}`, copies: ['b2'], log: { event: 'push', user: 'alice' } })).toBe(i + 2);
    }
    const log = await state.pushLog.read(repo);
    expect(log.map((e) => [e.fields.event, e.fields.version])).toEqual([
      ['push', '6'],
      ['push', '5'],
      ['push', '4'],
      ['push', '3'],
      ['push', '2'],
      ['create', '1'],
    ]);
    expect((await state.pushLog.read(repo, { oldestFirst: true, count: 2 })).map((e) => e.fields.version)).toEqual(['1', '2']);
    // Six entries still far below one pre-sized node.
    expect(await usage(state.keys.log(repo))).toBeLessThan(2_000);
  });
});
