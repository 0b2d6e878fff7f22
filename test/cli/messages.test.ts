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
 * | rename of a frozen repository (src/cluster/lifecycle.ts checkRenamable)          | the freeze's own remedy (src/cluster/messages.ts) | here (ambiguous: githa thaw R --promote <backend>) |
 * | lock: interrupted write (src/cli/commands/lock.ts)                               | githa thaw R --demote B                           | here |
 * | status/inventory: untracked (src/cli/commands/status.ts, inventory.ts)           | githa inventory --track R                         | test/integration/inventory.test.ts |
 * | delete: restore with (src/cli/commands/lifecycle.ts)                             | githa restore R                                   | test/integration/lifecycle.test.ts |
 * | push to a missing repository (src/errors.ts RepositoryNotFoundError.missing)     | githa create R                                    | test/integration/lifecycle.test.ts, test/cluster/create-on-push.test.ts |
 * | read/write with no recorded leader (src/cluster/messages.ts leadersLost)         | githa recover R                                   | test/integration/verified-reads-http.test.ts, recovery.test.ts |
 * | not tested by running the command: lifecycle.ts "githa delete --purge R" (a name whose trash is not purged), lifecycle.ts "githa rename R S again" / "githa delete again" (a backend unreachable mid-rename), status.ts "githa inventory lists them all" (a listing, not a fix) |
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

  it('lock on a repository with an interrupted write names thaw --demote, after which the lock works', async () => {
    const c = cluster();
    const githa = await startGitha(c, { config: NO_VERIFIER });
    const git = GitClient.forCluster(c);
    const repo = 'msg/interrupted';
    await synced(git, githa, repo);
    await githa.stop();
    const old = String(Date.now() - 60_000);
    const recorded = (await redis().hgetall(repoKey(repo, 'checksums'))).b1!;
    await redis().hset(repoKey(repo, 'writing'), { id: 'dead-write', backend: 'b1', proxy: 'ghost:1', user: 'alice', transport: 'http', started: old, heartbeat: old, preChecksum: recorded });
    const lock = await githaCli(githa.configPath, ['lock', repo, '--backend', 'b2', '--release-after', '0']);
    expect(lock.code).toBe(1);
    const named = /resolve it first \((githa thaw \S+ --demote b1)\); nothing was locked/.exec(lock.stderr)?.[1];
    expect(named, lock.stderr).toBe('githa thaw msg/interrupted.git --demote b1');
    const thaw = await githaCli(githa.configPath, [...named!.split(' ').slice(1), '--force']);
    expect(thaw.code, thaw.stdout + thaw.stderr).toBe(0);
    expect(await redis().exists(repoKey(repo, 'writing'))).toBe(0);
    const again = await githaCli(githa.configPath, ['lock', repo, '--backend', 'b2', '--release-after', '0']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('rename of a frozen (ambiguous) repository names the freeze\'s remedy, thaw --promote, after which the rename works', async () => {
    const c = cluster();
    const githa = await startGitha(c, { ssh: true, admin: true, config: NO_VERIFIER });
    const git = GitClient.forCluster(c);
    const repo = 'msg/frozen';
    const { sha } = await synced(git, githa, repo);
    await githa.stop();
    await forget(repo);
    await gitDir(c.backend('b2'), `${repo}.git`, ['update-ref', 'refs/heads/by-hand', sha]);
    expect((await githaCli(githa.configPath, ['recover', repo])).code).toBe(1);
    const rename = await githaCli(githa.configPath, ['rename', repo, 'msg/renamed']);
    expect(rename.code).not.toBe(0);
    expect(rename.stderr).toContain(`repository ${repo}.git is frozen (ambiguous): resolve that first; an operator must choose the right copy with: githa thaw ${repo}.git --promote <backend>`);
    const thaw = await githaCli(githa.configPath, ['thaw', `${repo}.git`, '--promote', 'b2', '--force']);
    expect(thaw.code, thaw.stdout + thaw.stderr).toBe(0);
    const renamed = await githaCli(githa.configPath, ['rename', repo, 'msg/renamed']);
    expect(renamed.code, renamed.stdout + renamed.stderr).toBe(0);
  });
});
