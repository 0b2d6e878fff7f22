/**
 * Re-replication (docs/architecture.md "Re-replication") against real git,
 * Redis, lighttpd and sshd backends: five backends, factor 3, a few
 * repositories each on three of them; the servers of one backend holding
 * some of them are SIGKILLed. Clones of every repository run in a loop the
 * whole time and none fails; once the backend is down past
 * replication.reReplicateAfterMs (short here), every repository it held has
 * a replacement created, caught up and assigned, and the killed backend left
 * the assignment: three caught-up copies on live backends, whose refs on
 * disk are the leaders'. The killed backend's copies are left on its disk.
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM } from '../../src/cluster/checksum.js';
import { useCluster } from '../support/cluster.js';
import { diskRefs } from '../support/backend-refs.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 5 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

/** Where each repository starts: b3 (killed below) holds three of the four. */
const LAYOUT: Record<string, string[]> = {
  'rr/one': ['b1', 'b2', 'b3'],
  'rr/two': ['b2', 'b3', 'b4'],
  'rr/three': ['b3', 'b4', 'b5'],
  'rr/four': ['b1', 'b2', 'b5'],
};

/** The record `githa create` writes for a repository placed on `ids` (docs/redis.md): version 1, empty, assigned. */
async function record(repo: string, ids: string[]): Promise<void> {
  const now = Date.now();
  const p = redis.multi();
  for (const id of ids) {
    p.hset(key(repo, 'versions'), id, '1');
    p.hset(key(repo, 'checksums'), id, EMPTY_CHECKSUM);
    p.hset(key(repo, 'assigned'), id, String(now));
  }
  p.hset(key(repo, 'meta'), 'epoch', `test-${repo}`, 'since', String(now));
  p.zadd('githa:repos', now, `${repo}.git`);
  await p.exec();
}

async function hash(repo: string, what: string): Promise<Record<string, string>> {
  return redis.hgetall(key(repo, what));
}

describe('re-replication', () => {
  it('gives every repository of a killed backend a third caught-up copy elsewhere, and no read fails meanwhile', async () => {
    const c = cluster();
    for (const [repo, ids] of Object.entries(LAYOUT)) {
      for (const id of ids) await c.backend(id).createRepository(repo);
      await record(repo, ids);
    }
    const githa = await startGitha(c, {
      admin: true,
      config: {
        replication: { factor: 3, reReplicateAfterMs: 3_000, scanIntervalMs: 1_000, retryMaxMs: 1_000 },
        health: { intervalMs: 200, failuresToDown: 2 },
      },
    });
    const git = GitClient.forCluster(c);
    const heads = new Map<string, string>();
    for (const repo of Object.keys(LAYOUT)) {
      const work = await git.init(`work-${repo.replace(/\//g, '-')}`);
      heads.set(repo, await git.commit(work, { 'README.md': `${repo}\n` }, 'first'));
      await git.push(work, githa.url(repo), ['main']);
    }
    // Every assigned copy caught up before the loss.
    for (const [repo, ids] of Object.entries(LAYOUT)) {
      await waitFor(`${repo} at one version on ${ids.join(', ')}`, async () => {
        const v = await hash(repo, 'versions');
        return ids.every((id) => v[id] === '2') ? true : undefined;
      }, 30_000);
    }

    // Reads of every repository, in a loop, the whole time.
    const failures: string[] = [];
    let reads = 0;
    let reading = true;
    const loop = (async () => {
      while (reading) {
        for (const [repo, head] of heads) {
          try {
            const refs = await git.lsRemote(githa.url(repo));
            if (refs['refs/heads/main'] !== head) failures.push(`${repo}: main is ${refs['refs/heads/main']}, not ${head}`);
            const dir = await git.clone(githa.url(repo));
            if ((await git.revParse(dir, 'HEAD')) !== head) failures.push(`${repo}: cloned HEAD is not ${head}`);
            reads++;
          } catch (err) {
            failures.push(`${repo}: ${(err as Error).message}`);
          }
        }
      }
    })();

    await c.backend('b3').stop('SIGKILL');
    const held = Object.entries(LAYOUT).filter(([, ids]) => ids.includes('b3')).map(([repo]) => repo);
    for (const repo of held) {
      await waitFor(
        `${repo} re-replicated off b3`,
        async () => {
          const assigned = Object.keys(await hash(repo, 'assigned')).sort();
          const v = await hash(repo, 'versions');
          if (assigned.length !== 3 || assigned.includes('b3')) return undefined;
          return assigned.every((id) => v[id] === '2') ? assigned : undefined;
        },
        90_000,
        { intervalMs: 200, detail: () => githa.logs().split('\n').filter((l) => l.includes('re-replica') || l.includes('fill')).slice(-20).join('\n') },
      );
    }
    // A few more rounds of reads on the new assignment.
    const after = reads;
    await waitFor('reads after the re-replication', () => reads >= after + 2 * heads.size, 60_000);
    reading = false;
    await loop;
    expect(failures).toEqual([]);

    for (const [repo, ids] of Object.entries(LAYOUT)) {
      const assigned = Object.keys(await hash(repo, 'assigned')).sort();
      expect(assigned).toHaveLength(3);
      expect(assigned).not.toContain('b3');
      if (!ids.includes('b3')) expect(assigned).toEqual(ids);
      // Three copies on live backends, each holding the pushed commit on disk.
      for (const id of assigned) expect((await diskRefs(c.backend(id), repo))['refs/heads/main']).toBe(heads.get(repo));
      // The killed backend's record went with it; its copy stays on its disk.
      expect(Object.keys(await hash(repo, 'versions')).sort()).toEqual(assigned);
      if (ids.includes('b3')) expect(existsSync(c.backend('b3').repoPath(repo))).toBe(true);
    }
    const log = await redis.xrange(key('rr/one', 'log'), '-', '+');
    const steps = log.map(([, f]) => f.join(' ')).filter((l) => l.includes('event re-replicate'));
    expect(steps).toEqual([expect.stringContaining('step add'), expect.stringContaining('step drop')]);
    await githa.stop();
  }, 240_000);
});
