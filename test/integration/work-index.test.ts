/**
 * The periodic scan reads the work index, not every repository
 * (docs/architecture.md "Background replication", docs/redis.md `work`): a
 * push among thousands of idle repositories is caught up by a githa that
 * started after it (its start-up scan, no event), and the Redis commands that
 * read repository state stay a handful, where a scan of githa:repos read all
 * of them (six HGETALLs each). Real git, Redis, backends and githa processes.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { checksumOf, diskRefs } from '../support/backend-refs.js';
import { cliVersions, leadersOf, waitFor } from '../support/state.js';

const IDLE = 3_000;

describe('background replication reads the work index', () => {
  const cluster = useCluster({ backends: 3 });

  async function allCurrent(repo: string): Promise<boolean> {
    const sums = await Promise.all(cluster().backends.map(async (b) => checksumOf(await diskRefs(b, `${repo}.git`))));
    const v = await cliVersions(cluster(), repo);
    return sums.every((s) => s === sums[0]) && leadersOf(v).length === 3;
  }

  /** Calls of one command since the last CONFIG RESETSTAT (INFO commandstats; calls inside scripts count too). */
  async function calls(redis: Redis, command: string): Promise<number> {
    const info = await redis.info('commandstats');
    const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
    return m ? Number(m[1]) : 0;
  }

  it('a push among 3,000 whole repositories is caught up by the scan, which reads O(index) repositories', async () => {
    const redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 0 });
    try {
      // 3,000 whole repositories, recorded straight into Redis (no script: none of them needs work).
      const p = redis.pipeline();
      for (let i = 0; i < IDLE; i++) {
        const repo = `idle/r${i}.git`;
        p.hset(`githa:repo:{${repo}}:versions`, { b1: '1', b2: '1', b3: '1' });
        p.hset(`githa:repo:{${repo}}:checksums`, { b1: 'c', b2: 'c', b3: 'c' });
        p.zadd('githa:repos', 1, repo);
      }
      // Another githa swept this interval with the same backends: the reader must not sweep (its REINDEX reads all).
      p.set('githa:periodic:sweep-backends', 'b1 b2 b3');
      p.set('githa:periodic:sweep', 'someone-else', 'PX', 600_000);
      await p.exec();

      const git = GitClient.forCluster(cluster());
      const quiet = { verify: { intervalMs: 0 } };
      const writer = await startGitha(cluster(), { singleCopy: true, config: quiet });
      const repo = 'busy';
      await cluster().createRepository(`${repo}.git`);
      const work = await git.init(repo);
      await git.commit(work, { 'README.md': 'first\n' }, 'first');
      await git.push(work, writer.url(`${repo}.git`), ['main']);
      expect(leadersOf(await cliVersions(cluster(), repo))).toHaveLength(1);
      // The commit script entered it in the index; none of the idle ones is there.
      expect(await redis.zrange('githa:work', '0', '-1')).toEqual([`${repo}.git`]);

      await redis.config('RESETSTAT');
      // Started after the push (its event predates the consumer group): only the start-up scan can see it.
      await startGitha(cluster(), { config: { ...quiet, replication: { scanIntervalMs: 1_000 } } });
      await waitFor('the scan caught both stale copies up', () => allCurrent(repo), 20_000);
      // Whole again: the catch-up's script took it out of the index.
      await waitFor('the index empty', async () => (await redis.zcard('githa:work')) === 0);
      // A scan of githa:repos read six hashes of each of the 3,000 (18,000 HGETALLs); the index scan reads one repository a second.
      expect(await calls(redis, 'hgetall')).toBeLessThan(300);
    } finally {
      redis.disconnect();
    }
  });
});
