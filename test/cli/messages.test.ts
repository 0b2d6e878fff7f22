/**
 * Every message that names a fixing command names one that works for that
 * state: each test builds the state against real git, Redis and stock
 * backends, reads the message, runs the command it names, and checks that
 * the command does what the message promises.
 *
 * | message (source)                                                                 | command it names                                  | tested in |
 * |----------------------------------------------------------------------------------|---------------------------------------------------|-----------|
 * | verify: drift, overwrite (src/cli/commands/verify.ts)                            | githa sync R --to B                               | test/cli/sync.test.ts "a drifted copy is skipped…" (same command, same state) |
 * | verify: drift, keep (src/cli/commands/verify.ts)                                 | githa lock R --backend B --release-after 0        | here |
 * | sync: drifted copy skipped (src/cli/commands/sync.ts)                            | githa sync R --to B                               | test/cli/sync.test.ts |
 * | recover: AMBIGUOUS (src/cli/commands/recover.ts)                                 | githa thaw R --promote <backend>                  | here |
 * | sync: ambiguous (src/cli/commands/sync.ts)                                       | githa thaw R --promote <backend>                  | here |
 * | git client: frozen ambiguous (src/cluster/messages.ts REMEDY)                    | githa thaw R --promote <backend>                  | test/cli/thaw.test.ts "--promote B on an ambiguous repository" |
 * | git client: interrupted write (src/cluster/messages.ts interruptedWrite)         | githa thaw R --demote B                           | test/cli/thaw.test.ts "--demote clears a write interrupted…" |
 * | git client: leaders lost (src/cluster/messages.ts leadersLost, REMEDY)           | githa thaw R --demote B                           | test/cli/thaw.test.ts "--demote of the only leader…", "--demote B lifts a leaders-lost freeze" |
 * | thaw --promote refused on a healthy repository (src/cli/commands/thaw.ts)        | githa thaw R --demote B / githa sync R --to B     | test/cli/thaw.test.ts (message), sync.test.ts (command) |
 * | sync: no record (src/cli/commands/sync.ts)                                       | githa recover R                                   | here |
 * | sync: target disabled (src/cli/commands/sync.ts)                                 | githa backend enable B                            | here |
 * | rename/delete of a frozen repository (src/cluster/lifecycle.ts checkRenamable)   | the freeze's own remedy (src/cluster/messages.ts) | names the same commands as the freeze rows above |
 * | status/inventory: untracked (src/cli/commands/status.ts, inventory.ts)           | githa inventory --track R                         | test/integration/inventory.test.ts |
 * | delete: restore with (src/cli/commands/lifecycle.ts)                             | githa restore R                                   | test/integration/lifecycle*.test.ts |
 */
import { describe, expect, it } from 'vitest';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { gitDir, refOnDisk } from '../support/backend-refs.js';
import { cliVersions, leadersOf, maxOf, repoKey, waitFor } from '../support/state.js';
import { githaCli } from './run.js';
import { FAST_HEALTH, useCliCluster } from './setup.js';

const { cluster, redis, synced } = useCliCluster();

/** No verifier in the serving githa: it would repair a drifted copy by itself (src/cluster/repair.ts); `githa verify` marks the drift. */
const NO_VERIFIER = { health: FAST_HEALTH, replication: { scanIntervalMs: 300 }, verify: { intervalMs: 0 } };

/** Deletes the record of `repo` in Redis, as after losing Redis. */
async function forget(repo: string): Promise<void> {
  const keys = await redis().keys(`githa:repo:{${repo}.git}:*`);
  if (keys.length > 0) await redis().del(...keys);
}

describe('fixing commands named by messages', () => {
  it('verify: drift can be kept with the lock command it names: B leads with its own refs, the drift is cleared, the others catch up', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: NO_VERIFIER });
    const git = GitClient.forCluster(c);
    const repo = 'msg/drift';
    const { work } = await synced(git, githa, repo);
    const oob = await git.commit(work, { 'oob.txt': 'by hand on b3\n' }, 'out of band');
    await git.push(work, c.backend('b3').url('http', `${repo}.git`), ['main']);
    const verify = await githaCli(githa.configPath, ['verify', repo]);
    expect(verify.code).toBe(1);
    const named = /or keep it \(b3 leads, the others catch up\): (githa lock \S+ --backend b3 --release-after 0)$/m.exec(verify.stdout)?.[1];
    expect(named, verify.stdout).toBe('githa lock msg/drift.git --backend b3 --release-after 0');

    const before = maxOf(await cliVersions(c, repo));
    const lock = await githaCli(githa.configPath, named!.split(' ').slice(1));
    expect(lock.code, lock.stdout + lock.stderr).toBe(0);
    expect(lock.stdout).toMatch(/msg\/drift\.git: released; b3 leads at version \d+/);
    expect(await redis().hexists(repoKey(repo, 'drift'), 'b3')).toBe(0);
    const after = await cliVersions(c, repo);
    expect(after.b3).toBe(before + 1);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(oob);
    await waitFor('the other copies caught up with b3', async () => (await refOnDisk(c.backend('b1'), `${repo}.git`, 'refs/heads/main')) === oob && (await refOnDisk(c.backend('b2'), `${repo}.git`, 'refs/heads/main')) === oob);
    expect((await githaCli(githa.configPath, ['verify', repo])).code).toBe(0);
  });

  it('recover and sync on an ambiguous repository name thaw --promote, which resolves it', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: NO_VERIFIER });
    const git = GitClient.forCluster(c);
    const repo = 'msg/ambiguous';
    const { sha } = await synced(git, githa, repo);
    await githa.stop();
    await forget(repo);
    await gitDir(c.backend('b2'), `${repo}.git`, ['update-ref', 'refs/heads/by-hand', sha]);

    const recover = await githaCli(githa.configPath, ['recover', repo]);
    expect(recover.code).toBe(1);
    expect(recover.stdout).toContain(`choose one with: githa thaw ${repo}.git --promote <backend>`);
    const sync = await githaCli(githa.configPath, ['sync', repo]);
    expect(sync.code).toBe(1);
    expect(sync.stderr).toContain(`choose one with: githa thaw ${repo}.git --promote <backend>`);

    const thaw = await githaCli(githa.configPath, ['thaw', `${repo}.git`, '--promote', 'b2', '--force']);
    expect(thaw.code, thaw.stdout + thaw.stderr).toBe(0);
    expect(await redis().exists(repoKey(repo, 'frozen'))).toBe(0);
    expect(leadersOf(await cliVersions(c, repo))).toEqual(['b2']);
  });

  it('sync without a record names recover, which rebuilds it', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: NO_VERIFIER });
    const git = GitClient.forCluster(c);
    const repo = 'msg/norecord';
    await synced(git, githa, repo);
    await githa.stop();
    await forget(repo);
    const sync = await githaCli(githa.configPath, ['sync', repo]);
    expect(sync.code).toBe(1);
    expect(sync.stderr).toBe(`githa: githa has no record of ${repo}.git: rebuild it with githa recover ${repo}.git\n`);
    const recover = await githaCli(githa.configPath, ['recover', `${repo}.git`]);
    expect(recover.code, recover.stdout + recover.stderr).toBe(0);
    expect(leadersOf(await cliVersions(c, repo))).toEqual(['b1', 'b2', 'b3']);
  });

  it('sync --to a disabled backend names backend enable, after which the sync runs', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: NO_VERIFIER });
    const git = GitClient.forCluster(c);
    const repo = 'msg/disabled';
    await synced(git, githa, repo);
    expect((await githaCli(githa.configPath, ['backend', 'disable', 'b3'])).code).toBe(0);
    const sync = await githaCli(githa.configPath, ['sync', repo, '--to', 'b3']);
    expect(sync.code).toBe(1);
    expect(sync.stderr).toBe('githa: b3 is disabled; enable it first (githa backend enable b3)\n');
    const enable = await githaCli(githa.configPath, ['backend', 'enable', 'b3']);
    expect(enable.code, enable.stdout + enable.stderr).toBe(0);
    const again = await githaCli(githa.configPath, ['sync', repo, '--to', 'b3']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });
});
