/**
 * Review of issue 19 item 3 (docs/security.md "git:// connections"): the
 * idle timeout after the request line must not cut a legitimate git:// push
 * while githa itself keeps it waiting (here for the write lock, which another
 * githa holds; a catch-up or the quorum copies are silent the same way).
 * Before the fix git failed after gitDaemon.idleTimeoutMs with "Could not
 * read from remote repository".
 */
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';

describe('git:// push waiting for the write lock (review)', () => {
  const cluster = useCluster({ backends: 2 });

  it('is not cut by the idle timeout while githa itself waits for the lock', async () => {
    const repo = 'gitd/wait';
    await cluster().createRepository(repo);
    const githa = await startGitha(cluster(), { git: { allowPush: true }, config: { verify: { intervalMs: 0 }, gitDaemon: { allowPush: true, idleTimeoutMs: 2_000 }, locks: { waitMs: 15_000 } } });
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.push(work, githa.gitUrl(repo), ['main']);
    const next = await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    // Another githa's push holds the lock for 5 s (longer than the idle timeout, shorter than locks.waitMs).
    expect(await cluster().redis.cli('SET', `githa:lock:{${repo}.git}`, 'other-githa', 'PX', '5000', 'NX')).toBe('OK');
    const r = await git.run(['push', '--porcelain', '--', githa.gitUrl(repo), 'main'], { cwd: work, allowFailure: true });
    expect(r.code, r.stderr).toBe(0);
    const ls = await git.run(['ls-remote', githa.url(repo), 'refs/heads/main']);
    expect(ls.stdout).toContain(next);
  });
});
