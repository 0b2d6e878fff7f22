/**
 * `githa thaw` against real git, Redis, stock backends and githa processes,
 * with the prompts answered on a real pseudo-terminal: each failure state of
 * issue 5 is cleared by the command its message names.
 *
 * - a write-interrupted repository whose backend is gone: --demote;
 * - a repository whose only leader is lost: --demote (the prompt names the
 *   version and push that are lost), then reads work from the others;
 * - a freeze lifted by --demote B only when it records B among its backends;
 * - an ambiguous repository: --promote B, then every copy converges to B's
 *   refs through replication;
 * - --promote on a healthy repository is refused; no terminal without
 *   --force is refused; --all-repositories demotes everywhere at once.
 */
import { describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';
import { cliVersions, leadersOf, maxOf, repoKey, waitFor } from '../support/state.js';
import { githaPty } from './pty.js';
import { githaCli } from './run.js';
import { FAST, FAST_HEALTH, pushedRepo, useCliCluster } from './setup.js';

const FAST_THAW = { ...FAST, interruptions: { staleAfterMs: 500, suspectGraceMs: 1_500 } };

const { cluster, redis, pushLog, synced } = useCliCluster();

async function waitEverywhere(repo: string, sha: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `main at ${sha} on every backend and all recorded at one version`,
    async () => {
      for (const b of cluster().backends) if ((await refOnDisk(b, `${repo}.git`, 'refs/heads/main')) !== sha) return false;
      return leadersOf(await cliVersions(cluster(), repo)).length === 3;
    },
    timeoutMs,
  );
}

describe('githa thaw', () => {
  it('--demote clears a write interrupted on a backend that is gone: the prompt says nothing recorded is lost, pushes work again, the backend is overwritten when back', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST_THAW });
    const git = GitClient.forCluster(c);
    const repo = 'thaw/interrupted';
    const { work } = await synced(git, githa, repo);
    const b1 = c.backend('b1');
    await b1.stop();
    const old = String(Date.now() - 60_000);
    const recorded = (await redis().hgetall(repoKey(repo, 'checksums'))).b1!;
    await redis().hset(repoKey(repo, 'writing'), { id: 'dead-write', backend: 'b1', proxy: 'ghost:1', user: 'alice', transport: 'http', started: old, heartbeat: old, preChecksum: recorded });

    await git.commit(work, { 'w.txt': 'refused\n' }, 'while frozen');
    const refused = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/was interrupted.*githa thaw thaw\/interrupted\.git --demote/);

    const run = githaPty(githa.configPath, ['thaw', repo, '--demote', 'b1', '--as', 'op-anna']);
    await run.waitFor('Demote b1 in thaw/interrupted.git? [y/N]');
    expect(run.output()).toMatch(/b1 is a leader of thaw\/interrupted\.git at version \d+ together with b2, b3: nothing recorded is lost/);
    expect(run.output()).toMatch(/The interrupted push by alice to b1 \(via ghost:1, started .*\) is discarded/);
    run.write('y\r');
    expect(await run.exit()).toBe(0);
    expect(run.output()).toMatch(/thaw\/interrupted\.git: demoted b1; leaders now b2, b3 at version \d+; cleared: interrupted write/);

    expect(await redis().hgetall(repoKey(repo, 'writing'))).toEqual({});
    const v = await cliVersions(c, repo);
    expect(v).not.toHaveProperty('b1');
    const last = (await pushLog(repo)).filter((e) => e.event === 'thaw-demote').at(-1)!;
    expect(last).toMatchObject({ backend: 'b1', user: 'op-anna', marker: 'dead-write' });

    const pushed = await git.push(work, githa.url(repo), ['main']);
    expect(pushed.code).toBe(0);
    const sha = await git.revParse(work, 'HEAD');
    await b1.start();
    await waitEverywhere(repo, sha);
  });

  it('--demote of the only leader, which is lost: the prompt names the lost version and its push; reads then work from the others', async () => {
    const c = cluster();
    const githa = await startGitha(c, { singleCopy: true, config: { health: FAST_HEALTH } });
    const git = GitClient.forCluster(c);
    const repo = 'thaw/lost';
    const { work, sha: first } = await pushedRepo(c, git, githa, repo);
    const sync = await githaCli(githa.configPath, ['sync', repo, '--as', 'op-anna']);
    expect(sync.code, sync.stdout + sync.stderr).toBe(0);
    expect(leadersOf(await cliVersions(c, repo))).toEqual(['b1', 'b2', 'b3']);
    const second = await git.commit(work, { 'b.txt': 'b\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    const before = await cliVersions(c, repo);
    const [leader, ...others] = leadersOf(before);
    expect(others).toEqual([]);
    await c.backend(leader!).stop();

    const refused = await git.run(['ls-remote', '--', githa.url(repo)], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(new RegExp(`no leader of thaw/lost\\.git is reachable.*githa thaw thaw/lost\\.git --demote ${leader}`));

    const run = githaPty(githa.configPath, ['thaw', repo, '--demote', leader!, '--as', 'op-anna']);
    await run.waitFor(`Demote ${leader} in thaw/lost.git? [y/N]`);
    const max = maxOf(before);
    expect(run.output()).toContain(`${leader} is the only backend at version ${max} of thaw/lost.git; the others have at most version ${max - 1}.`);
    expect(run.output()).toContain(`Demoting it loses what only ${leader} has: version ${max}.`);
    expect(run.output()).toMatch(new RegExp(`version ${max}  push by \\S+  \\S+  refs/heads/main ${first.slice(0, 10)}\\.\\.${second.slice(0, 10)}`));
    run.write('y\r');
    expect(await run.exit()).toBe(0);

    const after = await cliVersions(c, repo);
    expect(after).not.toHaveProperty(leader!);
    expect(maxOf(after)).toBe(max - 1);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(first);
    expect(await git.revParse(await git.clone(githa.url(repo)), 'HEAD')).toBe(first);
    expect(githa.logs()).not.toContain('STATE REGRESSION');
    expect((await pushLog(repo)).filter((e) => e.event === 'thaw-demote').at(-1)).toMatchObject({ backend: leader, lost: `${max}..${max}`, user: 'op-anna' });
  });

  it('--demote B lifts a leaders-lost freeze that records B, and not one that records another backend, whatever its detail says', async () => {
    const c = cluster();
    const githa = await startGitha(c, { singleCopy: true, config: { health: FAST_HEALTH } });
    const git = GitClient.forCluster(c);
    const repo = 'thaw/recorded';
    const { work } = await pushedRepo(c, git, githa, repo);
    const sync = await githaCli(githa.configPath, ['sync', repo, '--as', 'op-anna']);
    expect(sync.code, sync.stdout + sync.stderr).toBe(0);
    await git.commit(work, { 'b.txt': 'b\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    const [leader, ...others] = leadersOf(await cliVersions(c, repo));
    expect(others).toEqual([]);
    // Two stale backends: the freeze records x; its detail names only y.
    const [x, y] = ['b1', 'b2', 'b3'].filter((b) => b !== leader) as [string, string];
    await redis().hset(repoKey(repo, 'frozen'), { reason: 'leaders-lost', detail: `${y} is named here in words only`, since: String(Date.now()), backends: x });

    const notIt = await githaCli(githa.configPath, ['thaw', repo, '--demote', y, '--force', '--json', '--as', 'op-anna']);
    expect(notIt.code, notIt.stderr).toBe(0);
    expect(JSON.parse(notIt.stdout)).toMatchObject({ backend: y, status: 'demoted', cleared: { freeze: '' } });
    expect(await redis().hget(repoKey(repo, 'frozen'), 'reason')).toBe('leaders-lost');

    const named = await githaCli(githa.configPath, ['thaw', repo, '--demote', x, '--force', '--json', '--as', 'op-anna']);
    expect(named.code, named.stderr).toBe(0);
    expect(JSON.parse(named.stdout)).toMatchObject({ backend: x, status: 'demoted', cleared: { freeze: 'leaders-lost' } });
    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    expect((await pushLog(repo)).filter((e) => e.event === 'thaw-demote').at(-1)).toMatchObject({ backend: x, lifted: 'leaders-lost' });
  });

  it('--promote B on an ambiguous repository: B leads, the freeze is lifted, and every copy converges to B through replication', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST_THAW });
    const git = GitClient.forCluster(c);
    const repo = 'thaw/ambiguous';
    const { work, sha } = await synced(git, githa, repo);
    // Redis lost this repository's record, and b2 was changed meanwhile.
    await redis().del(...['versions', 'checksums', 'meta', 'suspect', 'drift'].map((w) => repoKey(repo, w)));
    const oob = await git.commit(work, { 'oob.txt': 'only on b2\n' }, 'out of band');
    await git.push(work, c.backend('b2').url('http', `${repo}.git`), ['main']);
    const refused = await git.run(['ls-remote', '--', githa.url(repo)], { allowFailure: true });
    expect(refused.stderr).toMatch(/ambiguous.*githa thaw thaw\/ambiguous\.git --promote/);
    expect(await redis().hgetall(repoKey(repo, 'frozen'))).toMatchObject({ reason: 'ambiguous', backends: 'b1 b2 b3' });

    const run = githaPty(githa.configPath, ['thaw', repo, '--promote', 'b2', '--as', 'op-anna']);
    await run.waitFor('Promote b2 in thaw/ambiguous.git? [y/N]');
    expect(run.output()).toMatch(/b2's copy of thaw\/ambiguous\.git: 1 ref, checksum [0-9a-f]{12}\./);
    expect(run.output()).toContain('It becomes the only leader at version 1 and the ambiguous freeze is lifted');
    expect(run.output()).toContain(`b1: 1 ref differs:\n    refs/heads/main ${sha.slice(0, 10)} -> ${oob.slice(0, 10)}`);
    expect(run.output()).toContain(`b3: 1 ref differs:`);
    run.write('y\r');
    expect(await run.exit()).toBe(0);
    expect(run.output()).toMatch(/promoted b2: the only leader at version 1/);

    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    await waitEverywhere(repo, oob);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(oob);
    expect((await pushLog(repo)).find((e) => e.event === 'thaw-promote')).toMatchObject({ backend: 'b2', version: '1', lifted: 'ambiguous', user: 'op-anna' });
  });

  it('--promote on a healthy repository is refused (exit 1) naming --demote and sync; nothing changes', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST_THAW });
    const git = GitClient.forCluster(c);
    const repo = 'thaw/healthy';
    await synced(git, githa, repo);
    const before = await cliVersions(c, repo);
    const r = await githaCli(githa.configPath, ['thaw', repo, '--promote', 'b3', '--force']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to promote: thaw\/healthy\.git is not ambiguous: b1, b2, b3 lead at version \d+.*githa thaw thaw\/healthy\.git --demote <backend>.*githa sync thaw\/healthy\.git --to <backend>/);
    expect(await cliVersions(c, repo)).toEqual(before);
    expect((await pushLog(repo)).map((e) => e.event)).not.toContain('thaw-promote');
  });

  it('without a terminal it refuses unless --force (exit 1); with --force it demotes', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: FAST_THAW });
    const git = GitClient.forCluster(c);
    const repo = 'thaw/force';
    await synced(git, githa, repo);
    const before = await cliVersions(c, repo);
    const r = await githaCli(githa.configPath, ['thaw', repo, '--demote', 'b3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no terminal to ask on; nothing was changed \(run again with --force/);
    expect(await cliVersions(c, repo)).toEqual(before);

    const forced = await githaCli(githa.configPath, ['thaw', repo, '--demote', 'b3', '--force', '--json', '--as', 'script']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ repo: 'thaw/force.git', backend: 'b3', status: 'demoted', leaders: ['b1', 'b2'], lostVersions: [] });
    // Replication may already have caught b3 up again (a catch-up entry after it): look for the demotion itself.
    expect((await pushLog(repo)).filter((e) => e.event === 'thaw-demote').at(-1)).toMatchObject({ backend: 'b3', user: 'script' });
    // b3 is stale now: replication brings it back as a leader.
    await waitFor('b3 caught up again', async () => leadersOf(await cliVersions(c, repo)).length === 3);
  });

  it('--all-repositories --demote: one confirmation, every repository B is involved in', async () => {
    const c = cluster();
    const githa = await startGitha(c, { singleCopy: true, config: { health: FAST_HEALTH } });
    const git = GitClient.forCluster(c);
    const repos = ['thaw/all-1', 'thaw/all-2'];
    for (const repo of repos) {
      await pushedRepo(c, git, githa, repo);
      await githaCli(githa.configPath, ['sync', repo]);
    }
    const run = githaPty(githa.configPath, ['thaw', '--all-repositories', '--demote', 'b2', '--as', 'op-anna']);
    await run.waitFor(/Demote b2 in these \d+ repositories\? \[y\/N\]/);
    expect(run.output()).toMatch(/b2 is involved in \d+ repositories:/);
    expect(run.output()).toMatch(/where nothing recorded is lost/);
    run.write('y\r');
    expect(await run.exit()).toBe(0);
    expect(run.output()).toMatch(/b2 demoted in (\d+) of \1 repositories/);
    for (const repo of repos) expect(await cliVersions(c, repo)).not.toHaveProperty('b2');
  });
});
