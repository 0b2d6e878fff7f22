import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';

describe('githa in front of three stock backends (smoke)', () => {
  const cluster = useCluster({ backends: 3, repositories: ['smoke/app'] });

  it('pushes through githa, records version 2 on at least the write quorum (2 of 3) at the acknowledgement, and clones it back', async () => {
    const githa = await startGitha(cluster());
    const git = GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'hello\n' }, 'first');
    await git.push(work, githa.url('smoke/app'), ['main']);
    const versions = await cluster().redis.cli('HGETALL', 'githa:repo:{smoke/app.git}:versions');
    const pairs = versions.trim().split('\n');
    const map = Object.fromEntries(pairs.flatMap((_, i) => (i % 2 === 0 ? [[pairs[i], Number(pairs[i + 1])]] : [])));
    // The written backend and at least one quorum copy are at version 2 when git returns; the third is a moment behind or already there.
    expect(Object.values(map).filter((v) => v === 2).length).toBeGreaterThanOrEqual(2);
    expect(Object.values(map).every((v) => v === 1 || v === 2)).toBe(true);
    const clone = await git.clone(githa.url('smoke/app'));
    expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
  });
});
