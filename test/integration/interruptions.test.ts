/**
 * Write interruptions resolved without a human (design: "Failure modes",
 * safety rule 3), deterministic: the `writing` marker a githa leaves when it
 * dies is planted in the real Redis by hand, with a heartbeat long stopped,
 * then real githa processes meet it. The SIGKILL-in-the-middle-of-a-push
 * case, with real timing, is in replication.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { cliHash, repoKey, waitFor } from '../support/state.js';
import { checksumOf, diskRefs, refOnDisk } from '../support/backend-refs.js';

const FAST_HEALTH = { intervalMs: 200, timeoutMs: 500, failuresToDown: 1, successesToUp: 1, downForMs: 2_000 };
const FAST = { locks: { leaseMs: 1_500 }, interruptions: { staleAfterMs: 500, suspectGraceMs: 1_500 }, health: FAST_HEALTH, replication: { scanIntervalMs: 300 } };

describe('interrupted writes of a dead githa', () => {
  const cluster = useCluster({ backends: 3 });
  const key = (repo: string, what: string): string => repoKey(repo, what);
  const hash = (k: string): Promise<Record<string, string>> => cliHash(cluster(), k);

  /** A repository in sync on every backend, with githa's record of it. */
  async function synced(git: GitClient, repo: string, url: string): Promise<string> {
    await cluster().createRepository(`${repo}.git`);
    const work = await git.init(repo);
    await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
    await git.push(work, url, ['main']);
    await waitFor('every copy current', async () => {
      const v = await hash(key(repo, 'versions'));
      return Object.keys(v).length === 3 && new Set(Object.values(v)).size === 1;
    });
    return work;
  }

  /** The marker a githa that died in the middle of a push to `backend` leaves behind. */
  async function plantMarker(repo: string, backend: string, preChecksum: string, commands?: string): Promise<void> {
    const old = String(Date.now() - 60_000);
    await cluster().redis.cli(
      'HSET', key(repo, 'writing'),
      'id', 'dead-write', 'backend', backend, 'proxy', 'ghost:1', 'user', 'alice', 'transport', 'http',
      'started', old, 'heartbeat', old, 'preChecksum', preChecksum,
      // The marker holds the push's commands (docs/redis.md): a changed copy is adopted only when they explain the change.
      ...(commands !== undefined ? ['commands', commands] : []),
    );
    // BEGIN_WRITE enters the repository in the work index with its marker (docs/redis.md `work`): the replicators' scan finds it there.
    await cluster().redis.cli('ZADD', 'githa:work', 'NX', old, `${repo}.git`);
  }

  it('unreachable backend: writes stay frozen naming it, reads go on from the others; once it is back and unchanged the marker is cleared and it is suspect', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: FAST });
    const repo = 'planted-clear';
    const work = await synced(git, repo, githa.url(`${repo}.git`));
    const recorded = (await hash(key(repo, 'checksums'))).b1!;
    const b1 = cluster().backend('b1');
    await b1.stop();
    await plantMarker(repo, 'b1', recorded);

    await git.commit(work, { 'w.txt': 'refused\n' }, 'while frozen');
    const refused = await git.push(work, githa.url(`${repo}.git`), ['main'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/push by alice to backend b1 via ghost:1 .*was interrupted.*reads go on.*githa thaw planted-clear\.git --demote/);
    // Reads are served by the other leaders.
    const clone = await git.clone(githa.url(`${repo}.git`));
    expect(await git.revParse(clone, 'HEAD')).toBe(await refOnDisk(cluster().backend('b2'), `${repo}.git`, 'refs/heads/main'));
    expect(await hash(key(repo, 'writing'))).toMatchObject({ id: 'dead-write' });

    await b1.start();
    await waitFor('the marker is cleared', async () => Object.keys(await hash(key(repo, 'writing'))).length === 0);
    const suspect = await hash(key(repo, 'suspect'));
    expect(Number(suspect.b1)).toBeGreaterThan(Date.now() - 5_000);
    // Writes work again, and go to a leader that is not suspect.
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    const entries = await cluster().redis.cli('XREVRANGE', key(repo, 'log'), '+', '-', 'COUNT', '10');
    expect(entries).toMatch(/clear-interrupted/);
    // After the grace period the suspect copy is verified again and stops being suspect.
    await waitFor('b1 is no longer suspect', async () => Object.keys(await hash(key(repo, 'suspect'))).length === 0, 10_000);
    await waitFor('b1 current again', async () => {
      const sums = await Promise.all(cluster().backends.map(async (b) => checksumOf(await diskRefs(b, `${repo}.git`))));
      return new Set(sums).size === 1;
    });
  });

  it('a changed backend is adopted as a new version (nothing pushed is lost) and spread to the others', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: FAST });
    const repo = 'planted-adopt';
    const work = await synced(git, repo, githa.url(`${repo}.git`));
    const before = await hash(key(repo, 'versions'));
    const recorded = (await hash(key(repo, 'checksums'))).b2!;
    // The dead githa's push landed on b2: its refs changed behind the marker.
    const old = await refOnDisk(cluster().backend('b2'), `${repo}.git`, 'refs/heads/main');
    const sha = await git.commit(work, { 'landed.txt': 'landed\n' }, 'landed');
    await git.push(work, cluster().backend('b2').url('http', `${repo}.git`), ['main']);
    await plantMarker(repo, 'b2', recorded, `${old} ${sha} refs/heads/main`);

    await waitFor('the marker is resolved', async () => Object.keys(await hash(key(repo, 'writing'))).length === 0);
    const after = await hash(key(repo, 'versions'));
    expect(Number(after.b2)).toBe(Number(before.b2) + 1);
    expect(await hash(key(repo, 'suspect'))).toHaveProperty('b2');
    // Replication spreads the adopted push: everywhere, and served by githa.
    await waitFor('every copy has the adopted push', async () => {
      const tips = await Promise.all(cluster().backends.map((b) => refOnDisk(b, `${repo}.git`, 'refs/heads/main')));
      return tips.every((t) => t === sha);
    });
    expect(await git.revParse(await git.clone(githa.url(`${repo}.git`)), 'HEAD')).toBe(sha);
  });

  it('onInterruptedWrite: freeze leaves a changed backend for an operator; an unchanged one is still cleared', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: { ...FAST, onInterruptedWrite: 'freeze' } });
    const repo = 'planted-freeze';
    const work = await synced(git, repo, githa.url(`${repo}.git`));
    const versions = await hash(key(repo, 'versions'));
    const recorded = (await hash(key(repo, 'checksums'))).b3!;
    await git.commit(work, { 'landed.txt': 'landed\n' }, 'landed');
    await git.push(work, cluster().backend('b3').url('http', `${repo}.git`), ['main']);
    await plantMarker(repo, 'b3', recorded);
    // The resolver has looked at the marker (and decided) once it says so in the log: only then is "unchanged" news.
    await waitFor('the marker left for an operator', () => githa.logLines().some((l) => l.repo === `${repo}.git` && /left frozen for an operator/.test(String(l.msg))));
    expect(await hash(key(repo, 'writing'))).toMatchObject({ id: 'dead-write', backend: 'b3' });
    expect(await hash(key(repo, 'versions'))).toEqual(versions);
    const refused = await git.push(work, githa.url(`${repo}.git`), ['main'], [], { allowFailure: true });
    expect(refused.stderr).toMatch(/was interrupted/);

    // The unchanged case is safe to clear whatever the setting.
    const other = 'planted-freeze-clear';
    await synced(git, other, githa.url(`${other}.git`));
    await plantMarker(other, 'b1', (await hash(key(other, 'checksums'))).b1!);
    await waitFor('the unchanged marker is cleared', async () => Object.keys(await hash(key(other, 'writing'))).length === 0);
  });

  it('a suspect backend that changed while behind the leaders is not adopted: it is caught up, and the pushes acknowledged meanwhile stay', async () => {
    // Found by the chaos checker: a half-done copy into a suspect, stale backend looked like
    // "late bytes of the interrupted write", was adopted above the leaders, and replication
    // then overwrote acknowledged pushes with it.
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: FAST });
    const repo = 'planted-stale-suspect';
    const work = await synced(git, repo, githa.url(`${repo}.git`));
    const b1 = cluster().backend('b1');
    await b1.stop();
    const acked = await git.commit(work, { 'acked.txt': 'acknowledged while b1 was away\n' }, 'acknowledged');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    const versions = await hash(key(repo, 'versions'));
    expect(Number(versions.b1)).toBeLessThan(Math.max(...Object.values(versions).map(Number)));
    // b1 changes behind githa's back (as a copy that stopped half-way would) and is suspect, its grace over.
    const other = await git.init('half-copy');
    await git.commit(other, { 'stray.txt': 'never acknowledged\n' }, 'stray');
    await git.push(other, b1.repoPath(`${repo}.git`), ['HEAD:refs/heads/main'], ['--force']);
    await cluster().redis.cli('HSET', key(repo, 'suspect'), 'b1', String(Date.now() - 1_000));
    // As RESOLVE_INTERRUPTED would have, with the suspect entry: in the work index.
    await cluster().redis.cli('ZADD', 'githa:work', 'NX', String(Date.now()), `${repo}.git`);
    await b1.start();

    await waitFor('b1 caught up to the acknowledged push', async () => (await refOnDisk(b1, `${repo}.git`, 'refs/heads/main')) === acked, 20_000);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(acked);
    expect(await hash(key(repo, 'suspect'))).toEqual({});
    expect(await cluster().redis.cli('XRANGE', key(repo, 'log'), '-', '+')).not.toMatch(/adopt-late-write/);
    expect(githa.logs()).toMatch(/changed while behind the leaders; not adopted/);
    expect(await git.revParse(await git.clone(githa.url(`${repo}.git`)), 'HEAD')).toBe(acked);
  });

  it('leaders at one version with contradicting checksums in Redis freeze the repository as ambiguous', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: FAST });
    const repo = 'contradiction';
    await synced(git, repo, githa.url(`${repo}.git`));
    await cluster().redis.cli('HSET', key(repo, 'checksums'), 'b2', 'f'.repeat(64));
    const r = await git.run(['ls-remote', githa.url(`${repo}.git`)], { allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/frozen: ambiguous \(leaders at one version with different checksums: .*b2=ffffffffffff/);
    expect(await hash(key(repo, 'frozen'))).toMatchObject({ reason: 'ambiguous' });
  });
});
