/**
 * `githa verify [R]` against real git, Redis, stock backends and a githa
 * process: a table of every copy (ok / DRIFTED / skipped) and its HEAD; a
 * drifted copy is recorded in Redis and makes it exit 1; HEAD pointing
 * elsewhere on one backend is a warning, not drift.
 */
import { describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { gitDir } from '../support/backend-refs.js';
import { repoKey } from '../support/state.js';
import { githaCli } from './run.js';
import { useCliCluster } from './setup.js';

const { cluster, redis, synced } = useCliCluster();

describe('githa verify', () => {
  it('all copies match: a table, exit 0; a ref made by hand on b2 is drift: DRIFTED, recorded in Redis, exit 1', async () => {
    const c = cluster();
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const repo = 'verify/app';
    const { sha } = await synced(git, githa, repo);

    const ok = await githaCli(githa.configPath, ['verify', repo]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^REPO\s+BACKEND\s+RESULT\s+HEAD$/m);
    for (const b of ['b1', 'b2', 'b3']) expect(ok.stdout).toMatch(new RegExp(`^verify/app\\.git\\s+${b}\\s+ok\\s+refs/heads/main$`, 'm'));
    expect(ok.stdout).toMatch(/^no drift$/m);

    await gitDir(c.backend('b2'), `${repo}.git`, ['update-ref', 'refs/heads/by-hand', sha]);
    const drift = await githaCli(githa.configPath, ['verify', repo]);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/^verify\/app\.git\s+b2\s+DRIFTED\s+refs\/heads\/main$/m);
    expect(drift.stdout).toMatch(/^verify\/app\.git\s+b1\s+ok/m);
    expect(drift.stdout).toContain('drift: verify/app.git on b2 changed outside githa; overwrite it with the leaders\' state: githa sync verify/app.git --to b2; or keep it (b2 leads, the others catch up): githa lock verify/app.git --backend b2 --release-after 0');
    expect(await redis().hexists(repoKey(repo, 'drift'), 'b2')).toBe(1);

    const j = await githaCli(githa.configPath, ['verify', repo, '--json']);
    expect(j.code).toBe(1);
    const data = JSON.parse(j.stdout) as { repositories: Array<{ repo: string; ok: string[]; drifted: string[]; headMismatch: boolean }>; drifted: number };
    expect(data.drifted).toBe(1);
    expect(data.repositories[0]).toMatchObject({ repo: 'verify/app.git', drifted: ['b2'], headMismatch: false });
    expect([...data.repositories[0]!.ok].sort()).toEqual(['b1', 'b3']);
  });

  it('HEAD pointing to another branch on one backend is a warning (exit 0), not drift', async () => {
    const c = cluster();
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const repo = 'verify/head';
    await synced(git, githa, repo, ['main', 'other']);
    await gitDir(c.backend('b3'), `${repo}.git`, ['symbolic-ref', 'HEAD', 'refs/heads/other']);
    const r = await githaCli(githa.configPath, ['verify', repo]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^verify\/head\.git\s+b3\s+ok\s+refs\/heads\/other$/m);
    expect(r.stdout).toContain('warning: HEAD differs between the copies of verify/head.git (b1=refs/heads/main b2=refs/heads/main b3=refs/heads/other)');
    expect(await redis().exists(repoKey(repo, 'drift'))).toBe(0);
    const j = JSON.parse((await githaCli(githa.configPath, ['verify', repo, '--json'])).stdout) as { headMismatches: string[] };
    expect(j.headMismatches).toEqual(['verify/head.git']);
  });

  it('without a repository: every known repository, with progress on stderr; exit 1 while one is drifted', async () => {
    const c = cluster();
    // No background work: the scan of the work index (drifted b2 is in it) would repair b2 before the command runs.
    const githa = await startGitha(c, { config: { replication: { background: false }, verify: { intervalMs: 0 } } });
    const r = await githaCli(githa.configPath, ['verify']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^verify\/app\.git\s+b2\s+DRIFTED/m);
    expect(r.stdout).toMatch(/^verify\/head\.git\s+b1\s+ok/m);
    // Repositories are verified verify.concurrency at a time: progress counts them as they end, in any order.
    expect(r.stderr).toMatch(/verifying: 1\/2 verify\/(head|app)\.git/);
    expect(r.stderr).toMatch(/verifying: 2\/2 verify\/(head|app)\.git/);
    expect(r.stderr).toContain('verify/head.git');
    expect(r.stderr).toContain('verify/app.git');
  });
});
