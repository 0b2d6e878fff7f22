import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';

const run = promisify(execFile);
const REPO = 'stream/rep';

async function refsOnDisk(cluster: DevCluster, id: string): Promise<string> {
  const { stdout } = await run('git', ['--git-dir', cluster.backend(id).repoPath(REPO), 'for-each-ref', '--format=%(objectname) %(refname)']);
  return stdout;
}

async function versions(cluster: DevCluster): Promise<Record<string, number>> {
  const flat = (await cluster.redis.cli('HGETALL', `githa:repo:{${REPO}.git}:versions`)).trim().split('\n');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = Number(flat[i + 1]);
  return out;
}

describe('a cluster of SSH-only and git://-only backends', () => {
  const cluster = useCluster({ backends: 3, repositories: [REPO] });

  it('takes pushes over SSH and catches stale backends up over SSH and git://', async () => {
    const c = cluster();
    // b1 and b2 offer only SSH, b3 only git:// (git daemon with receive-pack on).
    const endpoints = { b3: { ssh: undefined, git: c.backend('b3').gitUrl } };
    const pusher = await startGitha(c, { singleCopy: true, ssh: true, endpoints: ["ssh"], backends: { ...endpoints, b3: { ...endpoints.b3, writable: false } } });
    const git = GitClient.forCluster(c, { knownHostsPath: pusher.knownHostsPath });
    const work = await git.init();
    await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.run(['tag', '-a', 'v1', '-m', 'release 1'], { cwd: work });
    await git.push(work, pusher.sshUrl(REPO), ['main', 'refs/tags/v1', 'main:refs/heads/doomed']);
    await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    await git.push(work, pusher.sshUrl(REPO), ['main', ':refs/heads/doomed']);

    const v = await versions(c);
    const leader = Object.entries(v).find(([, n]) => n === Math.max(...Object.values(v)))![0];
    expect(['b1', 'b2']).toContain(leader);
    const stale = leader === 'b1' ? 'b2' : 'b1';
    expect(v[stale]).toBeLessThan(v[leader]!);
    expect(await refsOnDisk(c, stale)).not.toBe(await refsOnDisk(c, leader));

    // A githa in the stale SSH backend's zone catches it up (SSH → SSH) before serving.
    const near = await startGitha(c, { singleCopy: true, ssh: true, endpoints: ["ssh"], zone: 'z', backends: { ...endpoints, [stale]: { zone: 'z' } } });
    const nearGit = GitClient.forCluster(c, { knownHostsPath: near.knownHostsPath });
    await nearGit.clone(near.sshUrl(REPO));
    expect(await refsOnDisk(c, stale)).toBe(await refsOnDisk(c, leader));
    expect((await versions(c))[stale]).toBe(v[leader]);

    // And a githa in b3's zone catches b3 up over git:// (SSH leader → git daemon).
    const far = await startGitha(c, { singleCopy: true, ssh: true, endpoints: ["ssh"], zone: 'y', backends: { b3: { ...endpoints.b3, zone: 'y' } } });
    const farGit = GitClient.forCluster(c, { knownHostsPath: far.knownHostsPath });
    const clone = await farGit.clone(far.sshUrl(REPO));
    expect(await refsOnDisk(c, 'b3')).toBe(await refsOnDisk(c, leader));
    expect((await versions(c)).b3).toBe(v[leader]);
    expect(await farGit.forEachRef(clone, 'refs/tags')).toHaveProperty('refs/tags/v1');
    expect(far.logs()).toMatch(/"msg":"catch-up"/);
  });
});
