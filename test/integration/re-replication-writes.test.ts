/**
 * Pushes while a re-replication waits for its replacement (docs/architecture.md
 * "Re-replication"), against real git, Redis, lighttpd and sshd backends:
 * four backends, a repository assigned to b1, b2, b3; b4 has no admin
 * account, so once b3 is SIGKILLed and lost, b4 is assigned as its
 * replacement but cannot be created by githa: the window between the two
 * steps stays open until the test creates the repository there by hand. A
 * push in that window is accepted (the write quorum counts b3 and its
 * replacement as one copy: a majority of three, which b1 and b2 make); once
 * b4 exists it is caught up, and b3 leaves the assignment.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM } from '../../src/cluster/checksum.js';
import { diskRefs } from '../support/backend-refs.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 4 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

const REPO = 'rr/window';
const key = (what: string): string => `githa:repo:{${REPO}.git}:${what}`;

describe('re-replication and writes', () => {
  it('takes pushes while the replacement of a lost backend is not caught up yet', async () => {
    const c = cluster();
    const ids = ['b1', 'b2', 'b3'];
    const now = Date.now();
    const p = redis.multi();
    for (const id of ids) {
      await c.backend(id).createRepository(REPO);
      p.hset(key('versions'), id, '1').hset(key('checksums'), id, EMPTY_CHECKSUM).hset(key('assigned'), id, String(now));
    }
    p.hset(key('meta'), 'epoch', 'test-window', 'since', String(now)).zadd('githa:repos', now, `${REPO}.git`);
    await p.exec();
    const githa = await startGitha(c, {
      admin: ['b1', 'b2', 'b3'],
      config: {
        replication: { factor: 3, reReplicateAfterMs: 2_000, scanIntervalMs: 1_000, retryMaxMs: 1_000, quorumTimeoutMs: 5_000 },
        health: { intervalMs: 200, failuresToDown: 2 },
      },
    });
    const git = GitClient.forCluster(c);
    const work = await git.init('work-window');
    await git.commit(work, { 'README.md': 'one\n' }, 'first');
    await git.push(work, githa.url(REPO), ['main']);
    await waitFor('b1, b2 and b3 at version 2', async () => {
      const v = await redis.hgetall(key('versions'));
      return ids.every((id) => v[id] === '2') ? true : undefined;
    }, 30_000);

    await c.backend('b3').stop('SIGKILL');
    await waitFor('b4 assigned as the replacement of b3', async () => ((await redis.hget(key('replacing'), 'b4')) === 'b3' ? true : undefined), 60_000, { intervalMs: 100 });
    expect(Object.keys(await redis.hgetall(key('assigned'))).sort()).toEqual(['b1', 'b2', 'b3', 'b4']);

    // The window: b3 down, b4 assigned and missing. A push is acknowledged on b1 and b2.
    const second = await git.commit(work, { 'a.txt': 'two\n' }, 'second');
    await git.push(work, githa.url(REPO), ['main']);
    const v = await redis.hgetall(key('versions'));
    expect([v.b1, v.b2]).toEqual(['3', '3']);
    expect(Object.keys(await redis.hgetall(key('assigned'))).sort()).toEqual(['b1', 'b2', 'b3', 'b4']);

    // The operator creates the repository on b4 (githa has no admin account there): b4 is caught up, b3 leaves.
    await c.backend('b4').createRepository(REPO);
    await waitFor(
      'b3 replaced by b4',
      async () => {
        const assigned = Object.keys(await redis.hgetall(key('assigned'))).sort();
        const now = await redis.hgetall(key('versions'));
        return assigned.join(' ') === 'b1 b2 b4' && now.b4 === '3' ? true : undefined;
      },
      60_000,
      { intervalMs: 200 },
    );
    expect((await diskRefs(c.backend('b4'), REPO))['refs/heads/main']).toBe(second);
    expect(await redis.hgetall(key('replacing'))).toEqual({});
    await githa.stop();
  }, 240_000);
});
