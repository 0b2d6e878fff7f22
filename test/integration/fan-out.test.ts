/**
 * Fan-out writes end to end (docs/architecture.md "Write quorum", "Fan-out
 * writes"): real git pushes through a real githa to three stock backends,
 * the push streamed to the target and to writeQuorum − 1 copies at once.
 * Disagreeing copies are made by hand: a pre-receive hook that refuses once,
 * a copy's servers paused (slow) or killed (dies mid-pack) while the push is
 * on its way, read from the marker that names the copies in Redis.
 * b2 and b3 take no writes (backends[].writable false), so b1 is always the
 * target and the copies are the other two.
 */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient, randomData } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';
import { cliVersions, repoKey, waitFor } from '../support/state.js';

const MB = 1024 * 1024;
const FAST_HEALTH = { intervalMs: 200, timeoutMs: 500, failuresToDown: 1, successesToUp: 1, downForMs: 2_000 };

describe('fan-out writes through githa', () => {
  const cluster = useCluster({ backends: 3 });

  async function start(writeQuorum: number, extra: Record<string, unknown> = {}): Promise<GithaProcess> {
    return startGitha(cluster(), {
      ssh: true,
      backends: { b2: { writable: false }, b3: { writable: false } },
      config: { replication: { writeQuorum, background: false, fanOut: true, fanOutStallMs: 500, ...extra }, health: FAST_HEALTH },
    });
  }

  async function seed(git: GitClient, githa: GithaProcess, repo: string): Promise<string> {
    await cluster().createRepository(`${repo}.git`);
    const work = await git.init(repo);
    await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    return work;
  }

  /** githa_quorum_copies_total by outcome. */
  async function copyCounts(githa: GithaProcess): Promise<Record<string, number>> {
    const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
    const counts: Record<string, number> = {};
    for (const m of text.matchAll(/^githa_quorum_copies_total\{outcome="([^"]+)"\} (\d+)/gm)) counts[m[1]!] = Number(m[2]);
    return counts;
  }

  /** The copies the marker of the push in flight names (read from Redis as soon as it is written). */
  async function markedCopies(repo: string): Promise<string[]> {
    let copies: string[] = [];
    await waitFor('the marker naming the fan-out copies', async () => {
      const out = await cluster().redis.cli('HGET', repoKey(repo, 'writing'), 'copies');
      copies = out.split(/[\s,]+/).filter(Boolean);
      return copies.length > 0;
    }, 30_000, { intervalMs: 5 });
    return copies;
  }

  /** A pre-receive hook in one backend's copy: refuses the first push it sees, then accepts. */
  async function refuseOnce(backendId: string, repo: string): Promise<void> {
    const b = cluster().backend(backendId);
    const hook = join(b.repoPath(`${repo}.git`), 'hooks', 'pre-receive');
    const flag = join(b.repoPath(`${repo}.git`), 'refused-once');
    await writeFile(hook, `#!/bin/sh\ncat >/dev/null\nif [ ! -e '${flag}' ]; then touch '${flag}'; echo 'refused once by a hook' >&2; exit 1; fi\nexit 0\n`);
    await chmod(hook, 0o755);
  }

  it('streams HTTP and SSH pushes to every copy at once: recorded on all three with no relay (and with fanOut off, by relays)', { timeout: 120_000 }, async () => {
    const githa = await start(3);
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const repo = 'fan-all';
    const work = await seed(git, githa, repo);
    const before = await copyCounts(githa);
    const viaHttp = await git.commit(work, { 'a.txt': 'http\n' }, 'over http');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(viaHttp);
    const viaSsh = await git.commit(work, { 'a.txt': 'ssh\n' }, 'over ssh');
    await git.push(work, githa.sshUrl(repo), ['main']);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(viaSsh);
    const v = await cliVersions(cluster(), repo);
    expect(new Set(Object.values(v)).size).toBe(1);
    const after = await copyCounts(githa);
    // Two pushes, two copies each, all by fan-out; not one relay.
    expect((after['fan-out-made'] ?? 0) - (before['fan-out-made'] ?? 0)).toBe(4);
    expect((after.copied ?? 0) - (before.copied ?? 0)).toBe(0);
    await githa.stop();

    // The same push with fan-out off takes the relay path: the metric tells them apart.
    const relayed = await start(3, { fanOut: false });
    const sha = await git.commit(work, { 'a.txt': 'relayed\n' }, 'relayed');
    await git.push(work, relayed.url(`${repo}.git`), ['main']);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(sha);
    const counts = await copyCounts(relayed);
    expect(counts.copied).toBe(2);
    expect(counts['fan-out-made'] ?? 0).toBe(0);
  });

  it('a copy that refuses the push (its hook): the push is acknowledged and that copy is brought to it by a relay', { timeout: 120_000 }, async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await start(3);
    const repo = 'fan-refuse';
    const work = await seed(git, githa, repo);
    await refuseOnce('b2', repo);
    const before = await copyCounts(githa);
    const sha = await git.commit(work, { 'b.txt': 'refused once\n' }, 'refused once on b2');
    const r = await git.push(work, githa.url(`${repo}.git`), ['main']);
    expect(r.stdout).toMatch(/\*\trefs\/heads\/main:refs\/heads\/main\t\[new branch\]|\trefs\/heads\/main:refs\/heads\/main\t/);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(sha);
    const v = await cliVersions(cluster(), repo);
    expect(new Set(Object.values(v)).size).toBe(1);
    const after = await copyCounts(githa);
    expect((after['fan-out-made'] ?? 0) - (before['fan-out-made'] ?? 0)).toBe(1);
    expect((after['fan-out-unchanged'] ?? 0) - (before['fan-out-unchanged'] ?? 0)).toBe(1);
    expect((after.copied ?? 0) - (before.copied ?? 0)).toBe(1);
  });

  it('the target refuses and a copy took the push: the client is told it was refused, and the copy is brought back', { timeout: 120_000 }, async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await start(2);
    const repo = 'fan-target-refuses';
    const work = await seed(git, githa, repo);
    const held = new Map<string, string | undefined>();
    for (const b of cluster().backends) held.set(b.id, await refOnDisk(b, `${repo}.git`, 'refs/heads/main'));
    await refuseOnce('b1', repo);
    const before = await copyCounts(githa);
    await git.commit(work, { 'c.txt': 'refused by the target\n' }, 'refused by b1');
    const r = await git.push(work, githa.url(`${repo}.git`), ['main'], [], { allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/pre-receive hook declined|refused once by a hook/);
    // The copy took the push (its hook accepts) and was brought back: every backend holds what it held, no drift recorded.
    const after = await copyCounts(githa);
    expect((after['fan-out-partial'] ?? 0) - (before['fan-out-partial'] ?? 0)).toBe(1);
    for (const b of cluster().backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(held.get(b.id));
    expect(await cluster().redis.cli('HLEN', repoKey(repo, 'drift'))).toBe('0');
    expect(await cluster().redis.cli('EXISTS', repoKey(repo, 'writing'))).toBe('0');
  });

  it('a copy that is slow (paused) is dropped after fanOutStallMs before the pack\'s end; the quorum comes from the other', { timeout: 180_000 }, async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await start(2);
    const repo = 'fan-slow';
    const work = await seed(git, githa, repo);
    const first = await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main');
    const sha = await git.commit(work, { 'big.bin': randomData(24 * MB) }, 'big');
    const pushing = git.push(work, githa.url(`${repo}.git`), ['main']);
    const [copy] = await markedCopies(repo);
    const slow = cluster().backend(copy!);
    slow.pause();
    try {
      await pushing;
    } finally {
      slow.resume();
    }
    const other = copy === 'b2' ? 'b3' : 'b2';
    expect(await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main')).toBe(sha);
    expect(await refOnDisk(cluster().backend(other), `${repo}.git`, 'refs/heads/main')).toBe(sha);
    // The slow copy never had the pack's end: it holds what it held.
    expect(await refOnDisk(slow, `${repo}.git`, 'refs/heads/main')).toBe(first);
    const v = await cliVersions(cluster(), repo);
    expect(v.b1).toBe(v[other]);
    expect(v[copy!]).toBeLessThan(v.b1!);
    expect(githa.logLines().some((l) => l.msg === 'fan-out copy dropped before the end of the push' && l.backend === copy && l.reason === 'stalled')).toBe(true);
  });

  it('a copy that dies mid-pack (SIGKILL): the push is acknowledged with the quorum from the other, nothing lost', { timeout: 180_000 }, async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await start(2, { fanOutStallMs: 30_000 });
    const repo = 'fan-dies';
    const work = await seed(git, githa, repo);
    const sha = await git.commit(work, { 'big.bin': randomData(24 * MB) }, 'big');
    const pushing = git.push(work, githa.url(`${repo}.git`), ['main']);
    const [copy] = await markedCopies(repo);
    const dying = cluster().backend(copy!);
    // Paused first, so the copy holds part of the pack when it dies.
    dying.pause();
    await dying.stop('SIGKILL');
    await pushing;
    const other = copy === 'b2' ? 'b3' : 'b2';
    expect(await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main')).toBe(sha);
    expect(await refOnDisk(cluster().backend(other), `${repo}.git`, 'refs/heads/main')).toBe(sha);
    const v = await cliVersions(cluster(), repo);
    expect(v.b1).toBe(v[other]);
    expect(v[copy!] ?? 0).toBeLessThan(v.b1!);
  });
});
