/**
 * Vitest wrappers around the dev cluster (src/demo/cluster.ts).
 *
 * One cluster per test file:
 *
 *   const cluster = useCluster({ backends: 2 });
 *   it('…', async () => { const b1 = cluster().backends[0]; … });
 *
 * `useCluster` starts the cluster in beforeAll, stops it in afterAll (even when
 * tests fail), and after each test resumes paused servers and restarts stopped
 * ones, so a test that crashes a backend does not break the next one.
 *
 * One cluster for a single test: `const c = await startTestCluster({ backends: 1 })`
 * inside the test; it is stopped when the test finishes (pass or fail).
 */
import { afterAll, afterEach, beforeAll, onTestFinished } from 'vitest';
import { startDevCluster, type DevCluster, type DevClusterOptions } from '../../src/demo/cluster.js';

export type { DevCluster, DevBackend, DevRedis, EndpointKind } from '../../src/demo/cluster.js';

export interface UseClusterOptions extends DevClusterOptions {
  /** After each test, resume paused and restart stopped servers (default true). */
  restoreAfterEach?: boolean;
  /** Repositories to create on every backend once the cluster is up. */
  repositories?: string[];
}

/** Registers beforeAll/afterEach/afterAll hooks; returns a getter for the running cluster. */
export function useCluster(options: UseClusterOptions = {}): () => DevCluster {
  let cluster: DevCluster | undefined;
  const { restoreAfterEach = true, repositories = [], ...clusterOptions } = options;

  beforeAll(async () => {
    cluster = await startDevCluster(clusterOptions);
    for (const name of repositories) await cluster.createRepository(name);
  });

  afterEach(async () => {
    if (!cluster || !restoreAfterEach) return;
    await cluster.ensureRunning();
    // The githa processes of the test are gone, but their "down" verdicts on
    // the backends just restarted would stay fresh in Redis for health.ttlMs
    // and start the next test's githa with those backends down (writes then
    // refused for want of a quorum). Healing the servers heals the verdicts.
    await forgetHealth(cluster);
  });

  afterAll(async () => {
    await cluster?.stop();
  });

  return () => {
    if (!cluster) throw new Error('the dev cluster is not running (used outside a test, or beforeAll failed)');
    return cluster;
  };
}

/** Starts a cluster for the current test only; it is stopped when the test finishes. */
export async function startTestCluster(options: DevClusterOptions = {}): Promise<DevCluster> {
  const cluster = await startDevCluster(options);
  onTestFinished(() => cluster.stop());
  return cluster;
}

/** Deletes the shared health fields of every backend (operator overrides in the same hash stay). */
async function forgetHealth(cluster: DevCluster): Promise<void> {
  const fields = ['health', 'health.at', 'health.by', 'health.detail', 'health.expires'];
  let redis: DevCluster['redis'];
  try {
    redis = cluster.redis;
  } catch {
    return; // a cluster started without Redis
  }
  for (const b of cluster.backends) await redis.cli('HDEL', `githa:backend:${b.id}`, ...fields);
}
