/**
 * The `githa thaw R --promote B` prompt says, per ref of every other copy,
 * whether promoting B is a fast-forward for it (nothing lost) or which
 * commits only that copy holds leave the ref (count, ids, subjects), read
 * from the real copies (src/cluster/promote-loss.ts). Real git, Redis and
 * stock backends; the CLI as a real process without a terminal, so it prints
 * the prompt and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { repoKey } from '../support/state.js';
import { githaCli } from './run.js';
import { useCliCluster } from './setup.js';

const { cluster, redis, synced } = useCliCluster();

describe('githa thaw --promote prompt', () => {
  it('a fast-forward says nothing is lost; a copy with its own commits names them', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } } });
    const git = GitClient.forCluster(c);
    const repo = 'promote/prompt';
    const { work, sha } = await synced(git, githa, repo);
    await githa.stop();
    // b2 gets two commits on main and b3 one of its own, outside githa; Redis forgets the record: recover finds them ambiguous.
    const one = await git.commit(work, { 'one.txt': '1\n' }, 'first on b2');
    const two = await git.commit(work, { 'two.txt': '2\n' }, 'second on b2');
    await git.push(work, c.backend('b2').url('http', `${repo}.git`), ['main']);
    await git.run(['reset', '--hard', sha], { cwd: work });
    const own = await git.commit(work, { 'own.txt': 'b3\n' }, 'only on b3');
    await git.push(work, c.backend('b3').url('http', `${repo}.git`), ['+main']);
    const keys = await redis().keys(`githa:repo:{${repo}.git}:*`);
    await redis().del(...keys);
    expect((await githaCli(githa.configPath, ['recover', repo])).code).toBe(1);
    expect(await redis().hget(repoKey(repo, 'frozen'), 'reason')).toBe('ambiguous');

    const s = (oid: string): string => oid.slice(0, 10);
    const toB2 = await githaCli(githa.configPath, ['thaw', repo, '--promote', 'b2']);
    expect(toB2.code).toBe(1);
    expect(toB2.stderr).toContain(`  b1: 1 ref differs:\n    refs/heads/main ${s(sha)} -> ${s(two)}: fast-forward, nothing lost\n`);
    expect(toB2.stderr).toContain(
      `  b3: 1 ref differs:\n    refs/heads/main ${s(own)} -> ${s(two)}: 1 commit only on b3 leaves this ref (kept under refs/githa/kept/b3/…):\n      ${s(own)} only on b3\n`,
    );

    const toB1 = await githaCli(githa.configPath, ['thaw', repo, '--promote', 'b1']);
    expect(toB1.code).toBe(1);
    expect(toB1.stderr).toContain(
      `  b2: 1 ref differs:\n    refs/heads/main ${s(two)} -> ${s(sha)}: 2 commits only on b2 leave this ref (kept under refs/githa/kept/b2/…):\n      ${s(two)} second on b2\n      ${s(one)} first on b2\n`,
    );
    expect(toB1.stderr).toContain(`  b3: 1 ref differs:\n    refs/heads/main ${s(own)} -> ${s(sha)}: 1 commit only on b3 leaves this ref`);
    expect(await redis().hget(repoKey(repo, 'frozen'), 'reason')).toBe('ambiguous');
  });

  it('--demote: per ref of the demoted copy, the commits it holds that the leaders lack', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } } });
    const git = GitClient.forCluster(c);
    const repo = 'demote/prompt';
    const { work, sha } = await synced(git, githa, repo);
    await githa.stop();
    const own = await git.commit(work, { 'own.txt': 'b3\n' }, 'by hand on b3');
    await git.push(work, c.backend('b3').url('http', `${repo}.git`), ['main']);
    const r = await githaCli(githa.configPath, ['thaw', repo, '--demote', 'b3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(`b3's copy against b[12]'s, which replication copies over it:\n    refs/heads/main ${own.slice(0, 10)} -> ${sha.slice(0, 10)}: 1 commit only on b3 leaves this ref \\(kept under refs/githa/kept/b3/…\\):\n      ${own.slice(0, 10)} by hand on b3\n`),
    );
    const same = await githaCli(githa.configPath, ['thaw', repo, '--demote', 'b2']);
    expect(same.stderr).toMatch(/b2's copy has the same refs as b[13]'s \(nothing lost\)\./);
  });
});
