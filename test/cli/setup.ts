/**
 * The setup the operator-command tests share: a dev cluster of three backends
 * for the file, an ioredis client on its Redis, the push log, and repositories
 * pushed through githa.
 *
 *   const { cluster, redis, pushLog, synced } = useCliCluster();
 *   it('…', async () => { const { work, sha } = await synced(git, githa, 'team/app'); … });
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import type { GitClient } from '../support/git.js';
import type { GithaProcess } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';
import { cliVersions, leadersOf, repoKey, waitFor } from '../support/state.js';

/** Health checks that notice a stopped backend within a second and a restarted one soon after. */
export const FAST_HEALTH = { intervalMs: 200, timeoutMs: 500, failuresToDown: 1, successesToUp: 1, downForMs: 2_000 };
/** githa settings for the tests: short lock leases, FAST_HEALTH, a replication scan every 300 ms. */
export const FAST = { locks: { leaseMs: 1_500 }, health: FAST_HEALTH, replication: { scanIntervalMs: 300 } };

/** One push-log entry's fields. */
export type PushLogEntry = Record<string, string>;

/**
 * A new repository on every backend with one commit (README.md) at `main` and
 * at each of the other `branches`, pushed through githa; returns the work tree
 * and the commit.
 */
export async function pushedRepo(
  c: DevCluster,
  git: GitClient,
  githa: GithaProcess,
  repo: string,
  branches: string[] = ['main'],
): Promise<{ work: string; sha: string }> {
  await c.createRepository(`${repo}.git`);
  const work = await git.init(repo.replace(/\//g, '-'));
  const sha = await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
  for (const b of branches.filter((x) => x !== 'main')) await git.run(['branch', b], { cwd: work });
  await git.push(work, githa.url(repo), branches);
  return { work, sha };
}

export interface CliCluster {
  /** The running cluster. */
  cluster: () => DevCluster;
  /** The ioredis client on the cluster's Redis. */
  redis: () => Redis;
  /** The repository's push log, oldest first. */
  pushLog(repo: string): Promise<PushLogEntry[]>;
  /** pushedRepo, then waits until every backend has the branches and all are recorded at one version. */
  synced(git: GitClient, githa: GithaProcess, repo: string, branches?: string[]): Promise<{ work: string; sha: string }>;
}

/** Registers the cluster's and the Redis client's beforeAll/afterAll hooks (see useCluster). */
export function useCliCluster(): CliCluster {
  const cluster = useCluster({ backends: 3 });
  let client: Redis | undefined;
  beforeAll(() => {
    client = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(() => client?.disconnect());

  const redis = (): Redis => {
    if (!client) throw new Error('the Redis client is not connected (used outside a test, or beforeAll failed)');
    return client;
  };

  async function pushLog(repo: string): Promise<PushLogEntry[]> {
    return (await redis().xrange(repoKey(repo, 'log'), '-', '+')).map(([, f]) => {
      const e: PushLogEntry = {};
      for (let i = 0; i + 1 < f.length; i += 2) e[f[i]!] = f[i + 1]!;
      return e;
    });
  }

  async function synced(git: GitClient, githa: GithaProcess, repo: string, branches: string[] = ['main']): Promise<{ work: string; sha: string }> {
    const c = cluster();
    const pushed = await pushedRepo(c, git, githa, repo, branches);
    await waitFor('every copy current', async () => {
      for (const b of c.backends) for (const br of branches) if ((await refOnDisk(b, `${repo}.git`, `refs/heads/${br}`)) !== pushed.sha) return false;
      return leadersOf(await cliVersions(c, repo)).length === 3;
    });
    return pushed;
  }

  return { cluster, redis, pushLog, synced };
}
