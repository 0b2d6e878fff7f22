/**
 * Memoized listing verdicts (src/cluster/verdict-memo.ts, docs/performance.md
 * "F2: memoized verdicts") keep what a listing's bytes say, never whether a
 * copy may serve: a copy rolled back behind githa's back to exactly the
 * listing githa judged (and memoized) before a push is still checked against
 * the record as it is now, never served, and recorded as drifted. The
 * repository has enough refs (40 tags) that its listings are memoized, over
 * smart HTTP and SSH, protocol v0 and v2.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MEMO_BOUNDS } from '../../src/cluster/verdict-memo.js';
import { checksumOf, diskRefs, gitDir, refOnDisk } from '../support/backend-refs.js';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { maxOf, repoKey } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 3 });
let redis: Redis;
let githa: GithaProcess;

beforeAll(async () => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
  // No verifier: what finds the copy here is the reads.
  githa = await startGitha(cluster(), { ssh: true, keep: true, config: { verify: { intervalMs: 0 } } });
});

afterAll(async () => {
  await githa?.stop();
  redis?.disconnect();
});

async function allCurrent(c: DevCluster, repo: string, sha: string): Promise<void> {
  await waitFor(`every copy of ${repo} current`, async () => {
    const versions = Object.fromEntries(Object.entries(await redis.hgetall(repoKey(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
    const checksums = await redis.hgetall(repoKey(repo, 'checksums'));
    for (const b of c.backends) {
      if ((await refOnDisk(b, repo, 'refs/heads/main')) !== sha) return false;
      if (versions[b.id] !== maxOf(versions) || checksums[b.id] !== checksumOf(await diskRefs(b, repo))) return false;
    }
    return true;
  }, 20_000);
}

const READS = 12;

describe.each(['http', 'ssh'] as const)('a copy rolled back to a listing judged before, over %s', (transport) => {
  it.each([0, 2] as const)('protocol v%i: is never served, and is recorded as drifted', async (version) => {
    const c = cluster();
    const repo = `verified-memo/${transport}-v${version}`;
    await c.createRepository(repo);
    const git = GitClient.forCluster(c, { protocolVersion: version, knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'first\n' }, 'first');
    for (let i = 0; i < 40; i++) await git.run(['tag', `release-with-a-long-enough-name-${String(i).padStart(3, '0')}`], { cwd: work });
    await git.push(work, githa.url(repo), ['main', 'refs/tags/*:refs/tags/*']);
    await allCurrent(c, repo, first);
    const before = await diskRefs(c.backend('b1'), repo);
    const url = transport === 'http' ? githa.url(repo) : githa.sshUrl(repo);
    // Every leader's listing of this state is judged, then memoized: the bytes are the same on every copy.
    for (let i = 0; i < READS; i++) expect(await git.lsRemote(url)).toEqual({ HEAD: first, ...before });

    const second = await git.commit(work, { 'a.txt': 'second\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    await allCurrent(c, repo, second);
    const recorded = await diskRefs(c.backend('b1'), repo);
    // b2 goes back to the state above: its listing is, byte for byte, one githa memoized.
    await gitDir(c.backend('b2'), repo, ['update-ref', 'refs/heads/main', first]);
    expect(await diskRefs(c.backend('b2'), repo)).toEqual(before);
    expect(Buffer.byteLength(Object.entries(before).map(([r, o]) => `${o} ${r}\n`).join(''))).toBeGreaterThan(DEFAULT_MEMO_BOUNDS.minListingBytes);

    for (let i = 0; i < READS; i++) expect(await git.lsRemote(url), `read ${i}`).toEqual({ HEAD: second, ...recorded });

    const log = await redis.xrange(repoKey(repo, 'log'), '-', '+');
    const drifts = log.map(([, f]) => Object.fromEntries(f.reduce<[string, string][]>((a, v, i) => (i % 2 ? a : [...a, [v, f[i + 1]!]]), []))).filter((e) => e.event === 'drift');
    expect(drifts.map((e) => e.backend)).toEqual(['b2']);
    expect(drifts[0]!.checksum).toBe(checksumOf(before));
  });
});
