/**
 * `githa lock R --backend B` (maintenance) against real git, Redis, stock
 * backends and a githa process, answered on a real pseudo-terminal: while the
 * lock is held a push through githa is refused with the maintenance message
 * (reads go on); after the release B's hand-made change (a ref created
 * directly on B's disk) is served by githa and spread to the other copies.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { checksumOf, diskRefs, gitDir, refOnDisk } from '../support/backend-refs.js';
import { cliVersions, leadersOf, maxOf, repoKey, waitFor } from '../support/state.js';
import { githaPty } from './pty.js';
import { githaCli } from './run.js';
import { FAST, useCliCluster } from './setup.js';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
const { cluster, redis, pushLog, synced } = useCliCluster();

describe('githa lock', () => {
  it('holds the repository for maintenance of B: pushes are refused with the maintenance message; on release B leads and its hand-made ref is served and spread', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST });
    const git = GitClient.forCluster(c);
    const repo = 'lock/app';
    const { work, sha } = await synced(git, githa, repo);
    const before = await cliVersions(c, repo);

    const run = githaPty(githa.configPath, ['lock', repo, '--backend', 'b2', '--as', 'op-anna']);
    await run.waitFor('Ready to release the locks? [y/N]');
    expect(run.output()).toContain('locked for maintenance of b2 (pushes are refused, reads go on):\n  lock/app.git\n');
    expect(await redis().hgetall(repoKey(repo, 'frozen'))).toMatchObject({ reason: 'maintenance', detail: 'githa lock by op-anna while b2 is maintained' });

    // A push through githa is refused at once with the maintenance message; reads go on.
    await git.commit(work, { 'x.txt': 'refused\n' }, 'during maintenance');
    const refused = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/frozen: maintenance \(githa lock by op-anna while b2 is maintained\); an operator is maintaining it/);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(sha);

    // The operator's hand-made change on b2.
    await gitDir(c.backend('b2'), `${repo}.git`, ['update-ref', 'refs/heads/hotfix', sha]);

    // "n" keeps the locks and asks again.
    const mark = run.output().length;
    run.write('n\r');
    await run.waitFor('Ready to release the locks? [y/N]', 10_000, mark);
    expect(await redis().hget(repoKey(repo, 'frozen'), 'reason')).toBe('maintenance');
    run.write('y\r');
    expect(await run.exit()).toBe(0);
    const released = /lock\/app\.git: released; b2 leads at version (\d+)/.exec(run.output());
    expect(released, run.output()).not.toBeNull();
    const version = Number(released![1]);
    expect(version).toBe(maxOf(before) + 1);

    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    const v = await cliVersions(c, repo);
    expect(v.b2).toBe(version);
    expect(await redis().hget(repoKey(repo, 'checksums'), 'b2')).toBe(checksumOf(await diskRefs(c.backend('b2'), `${repo}.git`)));
    const events = (await pushLog(repo)).filter((e) => e.event === 'maintenance');
    expect(events).toEqual([
      expect.objectContaining({ phase: 'lock', backend: 'b2', user: 'op-anna' }),
      expect.objectContaining({ phase: 'release', backend: 'b2', user: 'op-anna', version: String(version), checksum: checksumOf(await diskRefs(c.backend('b2'), `${repo}.git`)) }),
    ]);

    // githa serves b2's hand-made ref, and replication spreads it.
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/hotfix']))['refs/heads/hotfix']).toBe(sha);
    await waitFor('the hand-made ref on every backend', async () => {
      for (const b of c.backends) if ((await refOnDisk(b, `${repo}.git`, 'refs/heads/hotfix')) !== sha) return false;
      return leadersOf(await cliVersions(c, repo)).length === 3;
    });
    // Pushes work again.
    const pushed = await git.push(work, githa.url(repo), ['main']);
    expect(pushed.code).toBe(0);
  });

  it('without a terminal it needs --release-after: refused (exit 1), nothing locked', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST });
    const git = GitClient.forCluster(c);
    const repo = 'lock/no-tty';
    await synced(git, githa, repo);
    const r = await githaCli(githa.configPath, ['lock', repo, '--backend', 'b1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/without a terminal use --release-after <seconds>; nothing was locked/);
    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    expect(await redis().exists(repoKey(repo, 'log'))).toBe(1);
    expect((await pushLog(repo)).map((e) => e.event)).not.toContain('maintenance');
  });

  it('--release-after with B unreachable at release: the record stays, the freeze is lifted, and it says so (exit 1)', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST });
    const git = GitClient.forCluster(c);
    const repo = 'lock/unreachable';
    const { work } = await synced(git, githa, repo);
    const before = await cliVersions(c, repo);
    await c.backend('b3').stop();
    const r = await githaCli(githa.configPath, ['lock', repo, '--backend', 'b3', '--release-after', '0.5', '--json', '--as', 'script']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('locked for maintenance of b3');
    const out = JSON.parse(r.stdout) as { repositories: Array<Record<string, unknown>> };
    expect(out.repositories).toEqual([expect.objectContaining({ repo: 'lock/unreachable.git', status: 'unreachable' })]);
    expect(String(out.repositories[0]!.reason)).toMatch(/b3 is unreachable .*the record is unchanged \(b3 did not become the leader\) and the freeze is lifted/);
    expect(await cliVersions(c, repo)).toEqual(before);
    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    expect((await pushLog(repo)).at(-1)).toMatchObject({ event: 'maintenance', phase: 'release', backend: 'b3', checksum: '', version: '0', user: 'script' });
    await c.backend('b3').start();
    await git.commit(work, { 'y.txt': 'after\n' }, 'after maintenance');
    expect((await git.push(work, githa.url(repo), ['main'])).code).toBe(0);
  });
});

describe('githa lock, stopped', () => {
  it('stopped with SIGTERM while held: the freeze is lifted and the record unchanged (exit 1); a freeze left by a killed lock is taken over', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST });
    const git = GitClient.forCluster(c);
    const repo = 'lock/stopped';
    await synced(git, githa, repo);
    const before = await cliVersions(c, repo);
    const proc = spawn(process.execPath, [MAIN, 'lock', repo, '--backend', 'b1', '--release-after', '60', '--config', githa.configPath], {
      env: { ...process.env, GITHA_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
    await waitFor('locked', () => out.includes('releasing in 60 s'));
    expect(await redis().hget(repoKey(repo, 'frozen'), 'reason')).toBe('maintenance');
    proc.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(out).toMatch(/lock\/stopped\.git: released, but githa lock was stopped \(SIGTERM\): the freeze is lifted, the record is unchanged \(b1 did not become the leader\)/);
    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    expect(await cliVersions(c, repo)).toEqual(before);

    // A githa lock killed outright leaves its freeze; the next githa lock (the write lock is free) takes it over.
    await redis().hset(repoKey(repo, 'frozen'), { reason: 'maintenance', detail: 'githa lock by ghost while b1 is maintained', since: String(Date.now()) });
    const r = await githaCli(githa.configPath, ['lock', repo, '--backend', 'b1', '--release-after', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('lock/stopped.git: taking over a maintenance freeze left behind (githa lock by ghost while b1 is maintained)');
    expect(r.stdout).toMatch(/lock\/stopped\.git: released; b1 leads at version \d+/);
    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
  });
});
