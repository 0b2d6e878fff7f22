/**
 * Replication, write quorum and automatic failure handling (issue 5), with
 * real git, Redis, stock backends and githa processes; faults are injected
 * with SIGKILL and stopped servers (design: "Write path" 6, "Background
 * replication", "Failure modes", "Safety rules").
 */
import { writeFileSync, chmodSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { cliHash, cliVersions, leadersOf, repoKey, waitFor } from '../support/state.js';
import { checksumOf, diskRefs, refOnDisk } from '../support/backend-refs.js';

/** Probes every 200 ms; one failure marks down, one success up: faults show within half a second. */
const FAST_HEALTH = { intervalMs: 200, timeoutMs: 500, failuresToDown: 1, successesToUp: 1, downForMs: 2_000 };

describe('replication, write quorum and failure handling', () => {
  const cluster = useCluster({ backends: 3 });
  const key = (repo: string, what: string): string => repoKey(repo, what);
  const hash = (k: string): Promise<Record<string, string>> => cliHash(cluster(), k);

  async function exists(k: string): Promise<boolean> {
    return (await cluster().redis.cli('EXISTS', k)) === '1';
  }

  /** The `field` of the newest push-log entries, newest first. */
  async function logEntries(repo: string, count = 20): Promise<Record<string, string>[]> {
    const out = await cluster().redis.cli('XREVRANGE', key(repo, 'log'), '+', '-', 'COUNT', String(count));
    const lines = out.split('\n').filter((l) => l.length > 0);
    const entries: Record<string, string>[] = [];
    let cur: Record<string, string> | undefined;
    for (let i = 0; i < lines.length; i++) {
      if (/^\d+-\d+$/.test(lines[i]!)) {
        cur = {};
        entries.push(cur);
        continue;
      }
      cur![lines[i]!] = lines[i + 1] ?? '';
      i++;
    }
    return entries;
  }

  /** The same ref checksum on every backend's disk. */
  async function allCurrent(repo: string): Promise<string | undefined> {
    const sums = await Promise.all(cluster().backends.map(async (b) => checksumOf(await diskRefs(b, `${repo}.git`))));
    return sums.every((s) => s === sums[0]) ? sums[0] : undefined;
  }

  async function seed(git: GitClient, repo: string, url: string): Promise<string> {
    await cluster().createRepository(`${repo}.git`);
    const work = await git.init(repo);
    await git.commit(work, { 'README.md': `${repo}\n` }, 'first');
    await git.push(work, url, ['main']);
    return work;
  }

  it('acknowledges a push only once it is on writeQuorum backends; SIGKILL of the written backend loses nothing', async () => {
    const git = GitClient.forCluster(cluster());
    // Background replication off: only the copies made for the quorum exist.
    const githa = await startGitha(cluster(), { config: { replication: { writeQuorum: 2, background: false }, health: FAST_HEALTH } });
    const repo = 'quorum';
    const work = await seed(git, repo, githa.url(`${repo}.git`));
    const sha = await git.commit(work, { 'a.txt': 'quorum\n' }, 'quorum push');
    await git.push(work, githa.url(`${repo}.git`), ['main']);

    // At the acknowledgement the push is recorded on at least two backends, and on their disks.
    const v = await cliVersions(cluster(), repo);
    const holders = leadersOf(v);
    expect(holders.length).toBeGreaterThanOrEqual(2);
    for (const b of holders) expect(await refOnDisk(cluster().backend(b), `${repo}.git`, 'refs/heads/main')).toBe(sha);
    const entry = (await logEntries(repo)).find((e) => e.event === 'push');
    expect(entry).toBeDefined();
    const written = entry!.backend!;
    expect(entry!.copies!.split(',').filter(Boolean).length).toBeGreaterThanOrEqual(1);

    await cluster().backend(written).stop('SIGKILL');
    const clone = await git.clone(githa.url(`${repo}.git`));
    expect(await git.revParse(clone, 'HEAD')).toBe(sha);
    expect(await exists(key(repo, 'frozen'))).toBe(false);
    expect(await exists(key(repo, 'writing'))).toBe(false);
    // Writes go on with two of three backends up.
    const next = await git.commit(work, { 'b.txt': 'after the kill\n' }, 'after');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    expect(await git.revParse(await git.clone(githa.url(`${repo}.git`)), 'HEAD')).toBe(next);
  });

  it('refuses writes while fewer backends are up than the quorum, naming how many; reads go on', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: { health: FAST_HEALTH } });
    const repo = 'noquorum';
    const work = await seed(git, repo, githa.url(`${repo}.git`));
    await waitFor('all copies current', () => allCurrent(repo));
    const before = await cliVersions(cluster(), repo);
    await cluster().backend('b2').stop();
    await cluster().backend('b3').stop();
    await waitFor('b2 and b3 seen down', async () => (await hash('githa:backend:b3')).health === 'down' && (await hash('githa:backend:b2')).health === 'down');
    await git.commit(work, { 'c.txt': 'refused\n' }, 'refused');
    const r = await git.push(work, githa.url(`${repo}.git`), ['main'], [], { allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/1 of 3 backends is up \(b1\) and replication\.writeQuorum needs 2; reads go on/);
    expect(await cliVersions(cluster(), repo)).toEqual(before);
    // Reads are served by the leader that is up.
    const clone = await git.clone(githa.url(`${repo}.git`));
    expect(await git.revParse(clone, 'HEAD')).toBe(await refOnDisk(cluster().backend('b1'), `${repo}.git`, 'refs/heads/main'));
  });

  it('a backend stopped during 20 pushes is current again within seconds of its restart, with no operator action', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: { health: FAST_HEALTH } });
    const repo = 'returning';
    const work = await seed(git, repo, githa.url(`${repo}.git`));
    await waitFor('all copies current', () => allCurrent(repo));
    const b3 = cluster().backend('b3');
    await b3.stop();
    for (let i = 0; i < 20; i++) {
      await git.commit(work, { 'n.txt': `push ${i}\n` }, `push ${i}`);
      await git.push(work, githa.url(`${repo}.git`), ['main']);
    }
    const head = await git.revParse(work, 'HEAD');
    expect(await refOnDisk(b3, `${repo}.git`, 'refs/heads/main')).not.toBe(head);
    const seen = githa.logLines().length;
    await b3.start();
    const sum = await waitFor('b3 caught up', () => allCurrent(repo), 10_000);
    expect(await refOnDisk(b3, `${repo}.git`, 'refs/heads/main')).toBe(head);
    const v = await waitFor('b3 recorded as a leader', async () => {
      const v = await cliVersions(cluster(), repo);
      return leadersOf(v).includes('b3') ? v : undefined;
    });
    expect(leadersOf(v)).toEqual(['b1', 'b2', 'b3']);
    expect((await hash(key(repo, 'checksums'))).b3).toBe(sum);
    // No operator action and no wait for the next scan (replication.scanIntervalMs is 30 s): the replicator saw b3
    // come back and copied the repository to it at once, from a leader, to the version of the last push.
    const since = githa.logLines().slice(seen);
    expect(since.some((l) => l.component === 'replicator' && l.msg === 'backend is up; scanning for what it missed' && l.backend === 'b3')).toBe(true);
    expect(since.filter((l) => l.component === 'replicator' && l.msg === 'catch-up' && l.repo === `${repo}.git` && l.target === 'b3')).toContainEqual(
      expect.objectContaining({ source: expect.stringMatching(/^b[12]$/), version: v.b3, status: 'OK' }),
    );
  });

  it('SIGKILL of githa in the middle of a push: another githa resolves it; the commit is everywhere or nowhere, never acknowledged', async () => {
    const git = GitClient.forCluster(cluster());
    const repo = 'interrupted';
    await cluster().createRepository(`${repo}.git`);
    // A pre-receive hook that holds receive-pack after the whole pack arrived, while a flag file exists.
    const flag = join(cluster().dir, 'slow-interrupted');
    for (const b of cluster().backends) {
      const hook = join(b.repoPath(`${repo}.git`), 'hooks', 'pre-receive');
      writeFileSync(hook, `#!/bin/sh\ncat >/dev/null\nif [ -f '${flag}' ]; then touch '${flag}.reached'; sleep 3; fi\nexit 0\n`);
      chmodSync(hook, 0o755);
    }
    const fast = { locks: { leaseMs: 1_500 }, interruptions: { staleAfterMs: 1_000, suspectGraceMs: 1_000 }, health: FAST_HEALTH };
    const doomed = await startGitha(cluster(), { proxyId: 'doomed', config: fast });
    const survivor = await startGitha(cluster(), { proxyId: 'survivor', config: { ...fast, replication: { scanIntervalMs: 300 } } });
    const work = await seed(git, repo, survivor.url(`${repo}.git`));
    await waitFor('all copies current', () => allCurrent(repo));
    const before = await git.revParse(work, 'HEAD');
    const sha = await git.commit(work, { 'x.txt': 'the push githa dies in\n' }, 'interrupted push');

    writeFileSync(flag, '');
    const push = new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('git', ['push', '--porcelain', doomed.url(`${repo}.git`), 'main'], { cwd: work, env: git.environment() });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', (code) => resolve({ code, out }));
    });
    // The pack reached the backend (its hook runs) and the marker is written: kill githa now.
    await waitFor('the pack reached a backend', async () => existsSync(`${flag}.reached`) && (await exists(key(repo, 'writing'))));
    await doomed.stop('SIGKILL');
    rmSync(flag);
    const result = await push;
    expect(result.code).not.toBe(0);
    expect(result.out).not.toMatch(/^ok\b|\bmain -> main\b.*\n?Done/m);

    // The survivor resolves the interruption by itself: the marker goes, a log entry says how.
    await waitFor('the marker is resolved', async () => !(await exists(key(repo, 'writing'))), 15_000);
    const resolution = (await logEntries(repo)).find((e) => /-interrupted$/.test(e.event ?? ''));
    expect(resolution?.event).toMatch(/^(clear|adopt)-interrupted$/);
    expect(resolution?.proxy).toBe('survivor');
    expect(resolution?.writer).toBe('doomed');

    // Everywhere or nowhere.
    await waitFor('all copies current', () => allCurrent(repo), 15_000);
    const tips = await Promise.all(cluster().backends.map((b) => refOnDisk(b, `${repo}.git`, 'refs/heads/main')));
    expect(new Set(tips).size).toBe(1);
    expect([before, sha]).toContain(tips[0]);
    expect(resolution!.event === 'adopt-interrupted').toBe(tips[0] === sha);

    // Writable again, through the survivor.
    await git.run(['pull', '--quiet', '--rebase', survivor.url(`${repo}.git`), 'main'], { cwd: work, allowFailure: true });
    const after = await git.commit(work, { 'y.txt': 'after\n' }, 'after');
    await git.push(work, survivor.url(`${repo}.git`), ['main'], ['--force']);
    expect(await git.revParse(await git.clone(survivor.url(`${repo}.git`)), 'HEAD')).toBe(after);
  });

  it('with no reachable leader, reads and writes are refused naming the lost leaders and the thaw command', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { singleCopy: true, config: { health: FAST_HEALTH } });
    const repo = 'leaderless';
    const work = await seed(git, repo, githa.url(`${repo}.git`));
    await git.commit(work, { 'z.txt': 'only on one\n' }, 'one copy');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    const [leader] = leadersOf(await cliVersions(cluster(), repo));
    await cluster().backend(leader!).stop();
    const read = await git.run(['clone', githa.url(`${repo}.git`), join(await git.workdir('lost'), 'r')], { allowFailure: true });
    expect(read.code).not.toBe(0);
    const expected = new RegExp(`no leader of ${repo}\\.git is reachable \\(leaders: ${leader}\\).*githa thaw ${repo}\\.git --demote ${leader}`);
    expect(read.stderr).toMatch(expected);
    await git.commit(work, { 'z.txt': 'refused\n' }, 'refused');
    const write = await git.push(work, githa.url(`${repo}.git`), ['main'], [], { allowFailure: true });
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/no leader of leaderless\.git is reachable|githa thaw leaderless\.git --demote/);
  });

  it('a version regression in Redis (an old snapshot) fails closed and is logged loudly', async () => {
    const git = GitClient.forCluster(cluster());
    const githa = await startGitha(cluster(), { config: { health: FAST_HEALTH } });
    const repo = 'regressed';
    const work = await seed(git, repo, githa.url(`${repo}.git`));
    await git.commit(work, { 'r.txt': 'two\n' }, 'two');
    await git.push(work, githa.url(`${repo}.git`), ['main']);
    await git.clone(githa.url(`${repo}.git`));
    const v = await cliVersions(cluster(), repo);
    const max = Math.max(...Object.values(v));
    // "Restore" an older snapshot of the versions: every backend one version lower.
    for (const b of Object.keys(v)) await cluster().redis.cli('HSET', key(repo, 'versions'), b, String(Math.max(1, v[b]! - 1)));
    const r = await git.run(['clone', githa.url(`${repo}.git`), join(await git.workdir('regress'), 'r')], { allowFailure: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`went back from version ${max} to ${max - 1}.*githa recover ${repo}\\.git`));
    expect(githa.logs()).toMatch(/STATE REGRESSION/);
  });
});
