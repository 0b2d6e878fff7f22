/**
 * A backend removed from the configuration while repositories are still
 * assigned to it (docs/architecture.md "Re-replication", docs/operations.md
 * "Retiring a backend"), against real git, Redis, lighttpd and sshd backends:
 * four backends, factor 3, repositories on three of them each; githa is
 * restarted with b3 removed from its configuration. Clones of every readable
 * repository run in a loop the whole time and none fails; b3 is replaced at
 * once (no reReplicateAfterMs wait: it can never come back as configured).
 * b4 has no admin account in the second configuration, so the replacement of
 * b3 in rm/one (b4, the only backend outside its assignment) stays missing
 * until the test creates it by hand: a push in that window is accepted, and
 * ends on every assigned copy. A repository whose newest version is recorded
 * on b3 alone keeps its record untouched and is reported.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM } from '../../src/cluster/checksum.js';
import { githaCli, githaJson, type DatalossJson, type StatusJson } from '../cli/run.js';
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

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;
const hash = (repo: string, what: string): Promise<Record<string, string>> => redis.hgetall(key(repo, what));

/** Factor 3 over four backends; b3 (removed below) holds three of the four. */
const LAYOUT: Record<string, string[]> = {
  'rm/one': ['b1', 'b2', 'b3'],
  'rm/two': ['b2', 'b3', 'b4'],
  'rm/three': ['b1', 'b3', 'b4'],
  'rm/four': ['b1', 'b2', 'b4'],
  'rm/orphan': ['b1', 'b2', 'b3'],
};

/** The record `githa create` writes for a repository placed on `ids` (docs/redis.md): version 1, empty, assigned. */
async function record(repo: string, ids: string[]): Promise<void> {
  const now = Date.now();
  const p = redis.multi();
  for (const id of ids) p.hset(key(repo, 'versions'), id, '1').hset(key(repo, 'checksums'), id, EMPTY_CHECKSUM).hset(key(repo, 'assigned'), id, String(now));
  p.hset(key(repo, 'meta'), 'epoch', `test-${repo}`, 'since', String(now)).zadd('githa:repos', now, `${repo}.git`);
  await p.exec();
}

describe('a backend removed from the configuration', () => {
  it('has its repositories re-replicated at once, with no read failing and a push meanwhile on every assigned copy', async () => {
    const c = cluster();
    for (const [repo, ids] of Object.entries(LAYOUT)) {
      for (const id of ids) await c.backend(id).createRepository(repo);
      await record(repo, ids);
    }
    const replication = { factor: 3, reReplicateAfterMs: 600_000, scanIntervalMs: 1_000, retryMaxMs: 1_000, quorumTimeoutMs: 5_000 };
    const health = { intervalMs: 200, failuresToDown: 2 };
    const first = await startGitha(c, { admin: true, keep: true, config: { replication, health } });
    const git = GitClient.forCluster(c);
    const heads = new Map<string, string>();
    const works = new Map<string, string>();
    for (const repo of Object.keys(LAYOUT)) {
      const work = await git.init(`work-${repo.replace(/\//g, '-')}`);
      works.set(repo, work);
      heads.set(repo, await git.commit(work, { 'README.md': `${repo}\n` }, 'first'));
      await git.push(work, first.url(repo), ['main']);
    }
    for (const [repo, ids] of Object.entries(LAYOUT)) {
      await waitFor(`${repo} at version 2 on ${ids.join(', ')}`, async () => {
        const v = await hash(repo, 'versions');
        return ids.every((id) => v[id] === '2') ? true : undefined;
      }, 30_000);
    }
    await first.stop();
    // rm/orphan: a version recorded on b3 alone (as a push b3 alone acknowledged with writeQuorum 1 would leave).
    await redis.hset(key('rm/orphan', 'versions'), 'b3', '3');
    await redis.hset(key('rm/orphan', 'checksums'), 'b3', 'only-on-b3');
    const orphanBefore = { versions: await hash('rm/orphan', 'versions'), assigned: await hash('rm/orphan', 'assigned') };
    const b3Before = await diskRefs(c.backend('b3'), 'rm/one');

    // Restarted without b3; b4 gets no admin account, so rm/one's replacement waits for the test.
    const githa = await startGitha(c, { only: ['b1', 'b2', 'b4'], admin: ['b1', 'b2'], config: { replication, health } });
    const readable = [...heads].filter(([repo]) => repo !== 'rm/orphan');
    const failures: string[] = [];
    let reads = 0;
    let reading = true;
    const loop = (async () => {
      while (reading) {
        for (const [repo, head] of readable) {
          try {
            const dir = await git.clone(githa.url(repo));
            const got = await git.revParse(dir, 'HEAD');
            // The push below moves rm/one's head while clones run: a clone gives the first head or the pushed one.
            if (got !== head && got !== heads.get(repo)) failures.push(`${repo}: cloned HEAD ${got}, not ${heads.get(repo)}`);
            reads++;
          } catch (err) {
            failures.push(`${repo}: ${(err as Error).message}`);
          }
        }
      }
    })();

    await waitFor('b4 assigned as the replacement of b3 in rm/one', async () => ((await redis.hget(key('rm/one', 'replacing'), 'b4')) === 'b3' ? true : undefined), 60_000, {
      intervalMs: 100,
      detail: () => githa.logs().split('\n').filter((l) => l.includes('re-replica')).slice(-20).join('\n'),
    });
    // The window: b3 gone, b4 assigned and missing. A push is acknowledged on b1 and b2.
    const work = works.get('rm/one')!;
    const second = await git.commit(work, { 'a.txt': 'two\n' }, 'second');
    // Set before the push: a clone may see it before `git push` returns.
    heads.set('rm/one', second);
    await git.push(work, githa.url('rm/one'), ['main']);
    await c.backend('b4').createRepository('rm/one');

    for (const [repo, ids] of Object.entries(LAYOUT)) {
      if (!ids.includes('b3') || repo === 'rm/orphan') continue;
      await waitFor(
        `${repo} re-replicated off b3`,
        async () => {
          const assigned = Object.keys(await hash(repo, 'assigned')).sort();
          const v = await hash(repo, 'versions');
          if (assigned.length !== 3 || assigned.includes('b3')) return undefined;
          const max = Math.max(...Object.values(v).map(Number));
          return assigned.every((id) => v[id] === String(max)) ? assigned : undefined;
        },
        90_000,
        { intervalMs: 200, detail: () => githa.logs().split('\n').filter((l) => l.includes('re-replica') || l.includes('fill')).slice(-20).join('\n') },
      );
    }
    await waitFor('rm/orphan reported', () => (githa.logs().includes('newest version is only on a backend removed from the configuration') ? true : undefined), 30_000);
    const after = reads;
    await waitFor('reads after the re-replication', () => (reads >= after + 2 * readable.length ? true : undefined), 60_000);
    reading = false;
    await loop;
    expect(failures).toEqual([]);

    for (const [repo, ids] of Object.entries(LAYOUT)) {
      if (repo === 'rm/orphan') continue;
      const assigned = Object.keys(await hash(repo, 'assigned')).sort();
      expect(assigned).toHaveLength(3);
      expect(assigned).not.toContain('b3');
      if (!ids.includes('b3')) expect(assigned).toEqual(ids);
      // Three caught-up copies on configured backends, each holding the newest commit on disk (rm/one: the push in the window).
      for (const id of assigned) expect((await diskRefs(c.backend(id), repo))['refs/heads/main']).toBe(heads.get(repo));
      expect(Object.keys(await hash(repo, 'versions')).sort()).toEqual(assigned);
      expect(Object.keys(await hash(repo, 'checksums')).sort()).toEqual(assigned);
    }
    expect((await hash('rm/one', 'versions')).b4).toBe('3');
    // b3's copies are not touched: githa cannot reach them.
    expect(await diskRefs(c.backend('b3'), 'rm/one')).toEqual(b3Before);
    // The repository whose newest version only b3 holds keeps its record, b3 included, and is reported.
    expect({ versions: await hash('rm/orphan', 'versions'), assigned: await hash('rm/orphan', 'assigned') }).toEqual(orphanBefore);
    const status = await githaJson<StatusJson & { unconfigured?: Record<string, number> }>(githa.configPath, ['status']);
    expect(status.data.unconfigured).toEqual({ b3: 1 });
    const loss = await githaJson<DatalossJson>(githa.configPath, ['dataloss']);
    const atRisk = loss.data.repositories as Array<{ repo: string; lacking: Array<{ backend: string; kind: string }> }>;
    expect(atRisk.find((r) => r.repo === 'rm/orphan.git' || r.repo === 'rm/orphan')?.lacking).toContainEqual(expect.objectContaining({ backend: 'b3', kind: 'removed' }));
    await githa.stop();
    // githa backend list reads placement's counts (a hint, docs/redis.md `placement`; the hand-made records above
    // noted none): one repository noted on b3, as githa create would have.
    await redis.hset('githa:placement', 'repos:b3', '1');
    const list = await githaCli(githa.configPath, ['backend', 'list']);
    expect(list.code).toBe(1);
    expect(list.stdout).toContain('warning: b3 is not in the configuration but about 1 repository is still assigned to it');

    // githa move --from a removed backend (no githa running, so no re-replication races it): rm/four, assigned to b3
    // in b4's place by hand, is moved to b4 as a replacement, copied from a leader; b3's copy is not touched.
    await redis.hdel(key('rm/four', 'assigned'), 'b4');
    await redis.hdel(key('rm/four', 'versions'), 'b4');
    await redis.hdel(key('rm/four', 'checksums'), 'b4');
    await redis.hset(key('rm/four', 'assigned'), 'b3', String(Date.now()));
    await redis.hset(key('rm/four', 'versions'), 'b3', '2');
    await redis.hset(key('rm/four', 'checksums'), 'b3', (await hash('rm/four', 'checksums')).b1!);
    const moved = await githaCli(githa.configPath, ['move', 'rm/four', '--from', 'b3', '--to', 'b4']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toContain('not in the configuration');
    expect(Object.keys(await hash('rm/four', 'assigned')).sort()).toEqual(['b1', 'b2', 'b4']);
    expect((await hash('rm/four', 'versions')).b4).toBe('2');
    const orphanMove = await githaCli(githa.configPath, ['move', 'rm/orphan', '--from', 'b3', '--to', 'b4']);
    expect(orphanMove.code).toBe(1);
    expect(orphanMove.stderr).toContain('only on b3, not in the configuration');
    const typo = await githaCli(githa.configPath, ['move', 'rm/one', '--from', 'b9', '--to', 'b3']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('--to b3: no such backend');
    const typoFrom = await githaCli(githa.configPath, ['move', 'rm/one', '--from', 'b9', '--to', 'b4']);
    expect(typoFrom.code).toBe(1);
    expect(typoFrom.stderr).toContain('unknown backend "b9"');
  }, 300_000);
});
