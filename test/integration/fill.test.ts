/**
 * New and replaced backends are filled by githa (docs/architecture.md
 * "Filling a missing copy"), against real git, Redis, lighttpd and sshd
 * backends: repositories pushed through a githa that knows two backends, then
 * githa restarted with a third, empty one.
 * - With `admin` on it: every repository is created there over SSH (HEAD as
 *   the leader's) and caught up by the replicator; its refs on disk equal the
 *   leaders', the versions are recorded, githa_copies_created_total counts them.
 * - Without `admin`: nothing is created; the log names the exact command
 *   (its account, root, HEAD branch and git config), and once an operator ran
 *   it the copy is caught up.
 */
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { checksumOf, diskRefs, gitDir } from '../support/backend-refs.js';
import { maxOf } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 3 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

async function versions(repo: string): Promise<Record<string, number>> {
  const h = await redis.hgetall(key(repo, 'versions'));
  return Object.fromEntries(Object.entries(h).map(([b, v]) => [b, Number(v)]));
}

/**
 * Repositories on b1 and b2 only, each with commits pushed through a githa
 * that knows only those two; the last one's HEAD names `trunk`, not main.
 */
async function seed(c: DevCluster, repos: string[]): Promise<void> {
  for (const repo of repos) for (const id of ['b1', 'b2']) await c.backend(id).createRepository(repo);
  const trunk = repos.at(-1)!;
  for (const id of ['b1', 'b2']) await gitDir(c.backend(id), trunk, ['symbolic-ref', 'HEAD', 'refs/heads/trunk']);
  const githa = await startGitha(c, { only: ['b1', 'b2'], keep: true });
  try {
    const git = GitClient.forCluster(c);
    for (const repo of repos) {
      const work = await git.init(`work-${repo.replace(/\//g, '-')}`);
      await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
      await git.commit(work, { 'a.txt': 'two\n' }, 'second');
      const branch = repo === trunk ? 'trunk' : 'main';
      await git.run(['branch', '-M', branch], { cwd: work });
      await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
      await git.push(work, githa.url(repo), [branch, 'v1']);
    }
    for (const repo of repos) {
      await waitFor(`${repo} recorded on b1 and b2`, async () => {
        const v = await versions(repo);
        return v.b1 !== undefined && v.b1 === v.b2 ? true : undefined;
      });
    }
  } finally {
    await githa.stop();
  }
  for (const repo of repos) expect(existsSync(c.backend('b3').repoPath(repo))).toBe(false);
}

describe('filling a new backend', () => {
  it('creates every repository on a new backend with admin and catches it up', async () => {
    const c = cluster();
    const repos = ['fill/one', 'fill/two', 'fill/deep/three', 'fill/four'];
    await seed(c, repos);

    const githa = await startGitha(c, { admin: ['b3'], config: { replication: { scanIntervalMs: 1_000 }, repositories: { fillConcurrency: 2 } } });
    for (const repo of repos) {
      await waitFor(
        `${repo} filled on b3`,
        async () => {
          const v = await versions(repo);
          const checksums = await redis.hgetall(key(repo, 'checksums'));
          if (!existsSync(c.backend('b3').repoPath(repo))) return undefined;
          const leader = await diskRefs(c.backend('b1'), repo);
          const b3 = await diskRefs(c.backend('b3'), repo);
          if (checksumOf(b3) !== checksumOf(leader)) return undefined;
          return v.b3 === maxOf(v) && checksums.b3 === checksumOf(leader) ? true : undefined;
        },
        30_000,
      );
    }
    // HEAD as the leader's, and the repositories.gitConfig lines (a push over HTTP needs http.receivepack).
    const trunk = repos.at(-1)!;
    expect((await gitDir(c.backend('b3'), trunk, ['symbolic-ref', 'HEAD'])).trim()).toBe('refs/heads/trunk');
    expect((await gitDir(c.backend('b3'), repos[0]!, ['symbolic-ref', 'HEAD'])).trim()).toBe('refs/heads/main');
    expect((await gitDir(c.backend('b3'), repos[0]!, ['config', 'http.receivepack'])).trim()).toBe('true');
    // A catch-up in the push log of each, and the creations counted.
    for (const repo of repos) {
      const log = await redis.xrange(key(repo, 'log'), '-', '+');
      expect(log.some(([, f]) => f.includes('catch-up') && f.includes('b3'))).toBe(true);
    }
    const created = githa.logLines().filter((l) => l.component === 'fill' && l.status === 'created');
    expect(created.map((l) => l.repo).sort()).toEqual(repos.map((r) => `${r}.git`).sort());
    const metrics = await (await fetch(`${githa.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/^githa_copies_created_total\{backend="b3"\} 4$/m);
    expect(metrics).toMatch(/^githa_fill_pending\{backend="b3"\} 0$/m);

    // The filled copy serves: a push through githa lands on all three.
    const git = GitClient.forCluster(c);
    const work = await git.clone(githa.url(repos[0]!));
    const third = await git.commit(work, { 'c.txt': 'three\n' }, 'third');
    await git.push(work, githa.url(repos[0]!), ['main']);
    await waitFor('the push on b3', async () => ((await diskRefs(c.backend('b3'), repos[0]!))['refs/heads/main'] === third ? true : undefined));
  });

  it('creates nothing on a new backend without admin, and logs the exact command', async () => {
    const c = cluster();
    const repos = ['manual/one', 'manual/two'];
    await seed(c, repos);

    const githa = await startGitha(c, { config: { replication: { scanIntervalMs: 1_000 } } });
    for (const repo of repos) {
      const path = c.backend('b3').repoPath(repo);
      const line = await waitFor(`the command for ${repo} in the log`, () =>
        githa.logLines().find((l) => typeof l.err === 'string' && l.err.includes(`${repo}.git does not exist on b3, which githa may not manage`)),
      );
      expect(String(line.err)).toContain(`create it with: on b3 as ${new URL(c.backend('b3').sshUrl).username}: git init --bare --initial-branch=${repo === repos.at(-1) ? 'trunk' : 'main'} ${path} && git --git-dir=${path} config http.receivepack true`);
      expect(existsSync(path)).toBe(false);
      expect((await versions(repo)).b3).toBeUndefined();
    }
    expect(githa.logLines().some((l) => l.component === 'fill' && l.status === 'created')).toBe(false);

    // The operator runs it: the next catch-up fills the copy.
    const repo = repos[0]!;
    const command = String(githa.logLines().find((l) => typeof l.err === 'string' && l.err.includes(`${repo}.git does not exist on b3`))!.err).split('create it with: ')[1]!;
    expect(command).toContain(c.backend('b3').repoPath(repo));
    await c.backend('b3').createRepository(repo);
    await waitFor(`${repo} caught up on b3 once created by hand`, async () => ((await versions(repo)).b3 === maxOf(await versions(repo)) ? true : undefined), 30_000);
  });
});
