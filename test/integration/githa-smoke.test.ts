import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';

describe('githa in front of three stock backends (smoke)', () => {
  const cluster = useCluster({ backends: 3, repositories: ['smoke/app'] });

  it('pushes through githa, records version 2 on the written backend, and clones it back', async () => {
    const githa = await startGitha(cluster());
    const git = await GitClient.forCluster(cluster());
    const work = await git.init();
    const sha = await git.commit(work, { 'README.md': 'hello\n' }, 'first');
    await git.push(work, githa.url('smoke/app'), ['main']);
    const versions = await cluster().redis.cli('HGETALL', 'githa:repo:{smoke/app.git}:versions');
    const pairs = versions.trim().split('\n');
    const map = Object.fromEntries(pairs.flatMap((_, i) => (i % 2 === 0 ? [[pairs[i], Number(pairs[i + 1])]] : [])));
    expect(Object.values(map).sort()).toEqual([1, 1, 2]);
    const clone = await git.clone(githa.url('smoke/app'));
    expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
  });
});
