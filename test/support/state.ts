/**
 * Reading githa's cluster state in the test's real Redis, and waiting for it
 * to change (waitFor, from ./wait.ts, re-exported here): shared by the
 * integration tests of replication, recovery, verification and health.
 */
import type { DevCluster } from '../../src/demo/cluster.js';
import { waitFor } from './wait.js';

/** `githa:repo:{<repo>.git}:<what>` (the `.git` suffix added when absent). */
export function repoKey(repo: string, what: string, prefix = 'githa:'): string {
  return `${prefix}repo:{${repo.endsWith('.git') ? repo : `${repo}.git`}}:${what}`;
}

/** HGETALL through redis-cli. */
export async function cliHash(cluster: DevCluster, key: string): Promise<Record<string, string>> {
  const lines = (await cluster.redis.cli('HGETALL', key)).split('\n').filter((l) => l.length > 0);
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) map[lines[i]!] = lines[i + 1]!;
  return map;
}

/** backend → version of a repository. */
export async function cliVersions(cluster: DevCluster, repo: string): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await cliHash(cluster, repoKey(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
}

/** Waits until all `backends` copies of a repository are recorded at one version (replication caught up). */
export async function oneVersion(cluster: DevCluster, repo: string, backends: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(`every backend of ${repo} at one version`, async () => {
    const v = await cliVersions(cluster, repo);
    return Object.keys(v).length === backends && new Set(Object.values(v)).size === 1;
  }, timeoutMs);
}

export function maxOf(v: Record<string, number>): number {
  return Math.max(0, ...Object.values(v));
}

/** The backends at the highest version, sorted. */
export function leadersOf(v: Record<string, number>): string[] {
  const max = maxOf(v);
  return Object.keys(v)
    .filter((b) => v[b] === max && max > 0)
    .sort();
}

export { waitFor };
