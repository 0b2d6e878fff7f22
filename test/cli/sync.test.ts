/**
 * `githa sync R [--to B]` against real git, Redis, stock backends and a githa
 * process: stale copies are caught up now (bytes relayed, push-log `sync`
 * entries naming the operator); an unreachable one makes it exit 1; a
 * drifted copy is overwritten only with --to after a prompt (on a real
 * pseudo-terminal) naming the refs that differ, and its drift is cleared.
 */
import { describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { refOnDisk } from '../support/backend-refs.js';
import { cliVersions, leadersOf, maxOf, repoKey } from '../support/state.js';
import { githaPty } from './pty.js';
import { githaCli } from './run.js';
import { FAST_HEALTH, useCliCluster } from './setup.js';

const { cluster, redis, pushLog, synced } = useCliCluster();

describe('githa sync', () => {
  it('catches every stale copy up now from the leader, records each (event sync), and says so; an unreachable copy makes it exit 1', async () => {
    const c = cluster();
    const githa = await startGitha(c, { singleCopy: true, config: { health: FAST_HEALTH } });
    const git = GitClient.forCluster(c);
    const repo = 'sync/stale';
    await c.createRepository(`${repo}.git`);
    const work = await git.init('stale');
    const first = await git.commit(work, { 'a.txt': 'a\n'.repeat(1000) }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    const before = await cliVersions(c, repo);
    const [leader] = leadersOf(before);
    const stale = ['b1', 'b2', 'b3'].filter((b) => b !== leader);

    const r = await githaCli(githa.configPath, ['sync', repo, '--json', '--as', 'op-anna']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { repo: string; backends: Array<Record<string, unknown>> };
    expect(out.repo).toBe('sync/stale.git');
    expect(out.backends.map((b) => b.backend).sort()).toEqual(stale);
    for (const b of out.backends) {
      expect(b).toMatchObject({ status: 'synced', source: leader, version: maxOf(before), commands: 1 });
      expect(b.bytes as number).toBeGreaterThan(0);
    }
    expect(r.stderr).toMatch(new RegExp(`${stale[0]}: \\d+(\\.\\d)? (B|KiB) relayed`));
    expect(leadersOf(await cliVersions(c, repo))).toEqual(['b1', 'b2', 'b3']);
    for (const b of c.backends) expect(await refOnDisk(b, `${repo}.git`, 'refs/heads/main')).toBe(first);
    const syncs = (await pushLog(repo)).filter((e) => e.event === 'sync');
    expect(syncs.map((e) => e.backend).sort()).toEqual(stale);
    for (const e of syncs) expect(e).toMatchObject({ user: 'op-anna', source: leader, version: String(maxOf(before)) });

    const again = await githaCli(githa.configPath, ['sync', repo]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/every enabled copy is current \(version \d+\): nothing to sync/);

    // One stale copy unreachable: the other is synced, and the exit status says not everything was.
    const second = await git.commit(work, { 'b.txt': 'b\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    const [newLeader] = leadersOf(await cliVersions(c, repo));
    const [down, up] = ['b1', 'b2', 'b3'].filter((b) => b !== newLeader);
    await c.backend(down!).stop();
    const partial = await githaCli(githa.configPath, ['sync', repo]);
    expect(partial.code).toBe(1);
    expect(partial.stdout).toMatch(new RegExp(`sync/stale\\.git: ${up} synced from ${newLeader} at version \\d+: 1 ref update, .* relayed in \\d+ ms`));
    expect(partial.stdout).toMatch(new RegExp(`sync/stale\\.git: ${down} NOT synced: `));
    expect(await refOnDisk(c.backend(up!), `${repo}.git`, 'refs/heads/main')).toBe(second);
  });

  it('a drifted copy is skipped without --to; --to B names the refs that differ, asks, keeps B\'s own commit, overwrites B and clears its drift', async () => {
    const c = cluster();
    // No verifier in the serving githa: it would repair b3 by itself (src/cluster/repair.ts); `githa verify` marks the drift.
    const githa = await startGitha(c, { config: { health: FAST_HEALTH, replication: { scanIntervalMs: 300 }, verify: { intervalMs: 0 } } });
    const git = GitClient.forCluster(c);
    const repo = 'sync/drift';
    const { work, sha } = await synced(git, githa, repo);
    const oob = await git.commit(work, { 'oob.txt': 'by hand on b3\n' }, 'out of band');
    await git.push(work, c.backend('b3').url('http', `${repo}.git`), ['main']);
    expect((await githaCli(githa.configPath, ['verify', repo])).code).toBe(1);
    expect(await redis().hexists(repoKey(repo, 'drift'), 'b3')).toBe(1);

    const skipped = await githaCli(githa.configPath, ['sync', repo]);
    expect(skipped.code).toBe(1);
    expect(skipped.stdout).toContain('sync/drift.git: b3 skipped: drifted: changed outside githa; overwrite it with githa sync sync/drift.git --to b3');
    const noTty = await githaCli(githa.configPath, ['sync', repo, '--to', 'b3']);
    expect(noTty.code).toBe(1);
    expect(noTty.stderr).toMatch(/--force/);
    expect(await refOnDisk(c.backend('b3'), `${repo}.git`, 'refs/heads/main')).toBe(oob);

    const run = githaPty(githa.configPath, ['sync', repo, '--to', 'b3', '--as', 'op-anna']);
    await run.waitFor("Overwrite b3's copy of sync/drift.git? [y/N]");
    expect(run.output()).toMatch(/b3 is drifted: its copy of sync\/drift\.git was changed outside githa\. Syncing overwrites it with b[12]'s copy:/);
    expect(run.output()).toContain(`refs/heads/main ${oob.slice(0, 10)} on b3: reset to ${sha.slice(0, 10)}`);
    run.write('y\r');
    expect(await run.exit()).toBe(0);
    // b3's out-of-band commit is kept on the leaders first (src/cluster/kept.ts), then b3 gets main back and the kept ref.
    const kept = /kept as (refs\/githa\/kept\/b3\/\d{8}T\d{6}Z\/heads\/main)/.exec(run.output())?.[1];
    expect(kept, run.output()).toBeDefined();
    expect(run.output()).toMatch(/sync\/drift\.git: b3 synced from b[12] at version \d+: 2 ref updates, .* relayed in \d+ ms; its drift is cleared; its commits the leaders lacked are kept as refs\/githa\/kept\/b3\//);

    expect(await refOnDisk(c.backend('b3'), `${repo}.git`, 'refs/heads/main')).toBe(sha);
    for (const id of ['b1', 'b2', 'b3']) expect(await refOnDisk(c.backend(id), `${repo}.git`, kept!)).toBe(oob);
    expect(await redis().hexists(repoKey(repo, 'drift'), 'b3')).toBe(0);
    expect(leadersOf(await cliVersions(c, repo))).toEqual(['b1', 'b2', 'b3']);
    expect((await pushLog(repo)).at(-1)).toMatchObject({ event: 'sync', backend: 'b3', drift: '1', user: 'op-anna' });
  });
});
