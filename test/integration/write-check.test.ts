/**
 * Writes are checked, and a backend is verified before it leads again
 * (issue 16 items 2 and 3; docs/architecture.md "Verified copies"). Real git,
 * Redis, lighttpd backends and githa processes; copies are changed on disk
 * behind githa's back (test/support/backend-refs.ts).
 *
 * - A copy that lost an acknowledged ref update (a crash, a restore) takes
 *   the next push of an unrelated branch: githa refuses to record it (before:
 *   the rolled-back listing became the new version and the quorum copy turned
 *   the acknowledged commit back on a good copy). Pushed again, it goes to
 *   another leader; no acknowledged commit disappears from any copy.
 * - `githa backend enable` starts the catch-up at once: with a 10-minute scan
 *   interval, the enabled backend has what it missed within seconds.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { githaCli } from '../cli/run.js';
import { diskRefs, gitDir, refOnDisk } from '../support/backend-refs.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
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

const key = (repo: string, what: string): string => `githa:repo:{${repo}}:${what}`;

async function versions(repo: string): Promise<Record<string, number>> {
  const h = await redis.hgetall(key(repo, 'versions'));
  return Object.fromEntries(Object.entries(h).map(([b, v]) => [b, Number(v)]));
}

/** Waits until every backend named has main at `sha` on disk and is recorded at the highest version. */
async function current(repo: string, sha: string, ids = ['b1', 'b2', 'b3']): Promise<Record<string, number>> {
  return waitFor(`${ids.join(',')} current at ${sha}`, async () => {
    const v = await versions(repo);
    for (const id of ids) {
      if ((await refOnDisk(cluster().backend(id), repo, 'refs/heads/main')) !== sha || v[id] !== maxOf(v)) return undefined;
    }
    return v;
  });
}

describe('a push checked against the record', () => {
  it('a target that lost an acknowledged ref update is refused, the push goes to another leader, and no acknowledged commit is lost', async () => {
    const c = cluster();
    const repo = 'wcheck/rollback.git';
    await c.createRepository(repo);
    // b1 is githa's zone: it takes the writes (and the verifier never runs, so only the push can notice b1's loss).
    // Over SSH: githa's advertisement of an SSH push is the target's own (not checked against the record), so the push reaches b1.
    const githa = await startGitha(c, { ssh: true, keep: true, zone: 'east', backends: { b1: { zone: 'east' } }, config: { verify: { intervalMs: 0 } } });
    onTestFinished(() => githa.stop());
    const git = GitClient.forCluster(c, { knownHostsPath: githa.knownHostsPath });
    const work = await git.init('work');
    const first = await git.commit(work, { 'README.md': 'first\n' }, 'first');
    await git.push(work, githa.sshUrl(repo), ['main']);
    const acked = await git.commit(work, { 'a.txt': 'acknowledged\n' }, 'acknowledged');
    await git.push(work, githa.sshUrl(repo), ['main']);
    const before = await current(repo, acked);

    // b1 loses its last ref update (git's default core.fsync does not flush refs): main is back at `first`.
    const b1 = c.backend('b1');
    await gitDir(b1, repo, ['update-ref', 'refs/heads/main', first]);
    await git.run(['checkout', '--quiet', '-b', 'topic'], { cwd: work });
    const topic = await git.commit(work, { 't.txt': 'unrelated\n' }, 'topic');

    const refused = await git.push(work, githa.sshUrl(repo), ['topic'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/not acknowledged: backend b1 did not hold the recorded refs.*push again/);
    // Nothing was recorded from the bad copy: no version moved, and b1 was found drifted (the push log's `drift` entry).
    const moved = await versions(repo);
    expect(maxOf(moved)).toBe(maxOf(before));
    const log = await redis.xrange(key(repo, 'log'), '-', '+');
    expect(log.filter(([, f]) => f.includes('drift')).map(([, f]) => f[f.indexOf('backend') + 1])).toEqual(['b1']);

    // Pushed again, it goes to another leader and is acknowledged.
    await git.push(work, githa.sshUrl(repo), ['topic']);
    expect(maxOf(await versions(repo))).toBeGreaterThan(maxOf(before));
    // No acknowledged commit disappeared from any copy, and b1 is repaired (refilled) to the record.
    await waitFor('every copy holds main and topic', async () => {
      for (const id of ['b1', 'b2', 'b3']) {
        const refs = await diskRefs(c.backend(id), repo);
        if (refs['refs/heads/main'] !== acked || refs['refs/heads/topic'] !== topic) return false;
      }
      return (await redis.hlen(key(repo, 'drift'))) === 0;
    }, 20_000);
    expect(await git.revParse(await git.clone(githa.url(repo)), 'HEAD')).toBe(acked);
  });
});

describe('a backend that returns', () => {
  it('githa backend enable catches it up at once, not at the next scan', async () => {
    const c = cluster();
    const repo = 'wcheck/enable.git';
    await c.createRepository(repo);
    // Only the enable can explain a catch-up within seconds: the periodic scan is 10 minutes away.
    const githa = await startGitha(c, { proxyId: 'wcheck-enable', config: { verify: { intervalMs: 0 }, replication: { scanIntervalMs: 600_000 } } });
    const git = GitClient.forCluster(c);
    const work = await git.init('work');
    const first = await git.commit(work, { 'README.md': 'first\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    await current(repo, first);

    const disabled = await githaCli(githa.configPath, ['backend', 'disable', 'b3']);
    expect(disabled.code).toBe(0);
    const missed = await git.commit(work, { 'm.txt': 'missed\n' }, 'missed by b3');
    await git.push(work, githa.url(repo), ['main']);
    await current(repo, missed, ['b1', 'b2']);
    // The push's event has been taken and acknowledged by the replicator (b3 disabled: skipped), so no event is left to copy it later.
    const [[lastEvent]] = (await redis.xrevrange('githa:events', '+', '-', 'COUNT', 1)) as [[string, string[]]];
    await waitFor('the replicator is done with the last event', async () => {
      const groups = (await redis.xinfo('GROUPS', 'githa:events')) as unknown[][];
      const g = groups.map((f) => Object.fromEntries(Array.from({ length: f.length / 2 }, (_, i) => [f[2 * i], f[2 * i + 1]]))).find((x) => x.name === 'replicators');
      // This githa's own pending entries (an earlier test's githa may have left some for the group to take over).
      const pending = (await redis.xpending('githa:events', 'replicators', '-', '+', 10, 'wcheck-enable')) as unknown[];
      return g !== undefined && g['last-delivered-id'] === lastEvent && pending.length === 0;
    });
    expect(await refOnDisk(c.backend('b3'), repo, 'refs/heads/main')).toBe(first);

    const enabled = await githaCli(githa.configPath, ['backend', 'enable', 'b3']);
    expect(enabled.code).toBe(0);
    await current(repo, missed, ['b3']);
  });
});

describe('a repository with a symbolic ref besides HEAD (refs/heads/master -> refs/heads/main, a renamed default branch)', () => {
  it('takes pushes to the branch the symbolic ref points at', async () => {
    const c = cluster();
    const repo = 'wcheck/symref-alias.git';
    await c.createRepository(repo);
    // Every copy has the alias alike from the start (it lists nothing while main does not exist).
    for (const b of c.backends) await gitDir(b, repo, ['symbolic-ref', 'refs/heads/master', 'refs/heads/main']);
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } } });
    const git = GitClient.forCluster(c);
    const work = await git.init('work');
    for (const file of ['first', 'second']) {
      const sha = await git.commit(work, { [`${file}.txt`]: `${file}\n` }, file);
      const pushed = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
      expect(pushed.stderr, `push of ${file}`).toBe('');
      expect(pushed.code, `push of ${file}`).toBe(0);
      await current(repo, sha);
      expect(await redis.hkeys(key(repo, 'drift'))).toEqual([]);
    }
  });
});
