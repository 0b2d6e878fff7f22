/**
 * The read-only operator commands (`githa status | repo | log | dataloss`)
 * as real processes against a real dev cluster and real githa processes:
 * what they print, with --json, and their exit statuses (0 all well, 1
 * attention, 2 could not run).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { cliHash, cliVersions, leadersOf, repoKey, waitFor } from '../support/state.js';
import { githaCli, githaJson } from './run.js';
import { pushedRepo } from './setup.js';

describe('githa status, repo, log, dataloss', () => {
  const cluster = useCluster({ backends: 3 });

  it('a synchronized repository: status and repo exit 0 and show every backend leading', async () => {
    const githa = await startGitha(cluster(), { logLevel: 'info' });
    const git = GitClient.forCluster(cluster());
    await pushedRepo(cluster(), git, githa, 'team/sync');
    await waitFor('every backend leads', async () => leadersOf(await cliVersions(cluster(), 'team/sync')).length === 3);
    await waitFor('githa shares backend health', async () => Object.keys(await cliHash(cluster(), 'githa:backend:b3')).includes('health'));

    const human = await githaCli(githa.configPath, ['status']);
    expect(human.stderr).toBe('');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^REPOSITORY\s+STATE\s+VERSION\s+LEADERS/m);
    expect(human.stdout).toMatch(/^team\/sync\.git\s+Synchronized\s+2\s+b1,b2,b3/m);
    expect(human.stdout).toMatch(/^BACKEND\s+ZONE\s+ENABLED\s+WRITABLE\s+HEALTH\s+LEADS\s+STALE/m);
    expect(human.stdout).toMatch(/^b2\s+-\s+yes\s+yes\s+up\s+1\s+0/m);
    expect(human.stdout).toMatch(/1 repository: Synchronized 1, Partial 0, Unsynchronized 0, Ambiguous 0, Frozen 0/);
    expect(human.stdout).toMatch(/replication backlog: 0 stale/);

    const { code, data } = await githaJson(githa.configPath, ['status']);
    expect(code).toBe(0);
    expect(data.repositories).toEqual([expect.objectContaining({ repo: 'team/sync.git', state: 'synchronized', version: 2, leaders: ['b1', 'b2', 'b3'], stale: [] })]);
    expect(data.backends.map((b: { id: string; health: string }) => [b.id, b.health])).toEqual([['b1', 'up'], ['b2', 'up'], ['b3', 'up']]);
    expect(data.attention).toEqual([]);

    const repo = await githaCli(githa.configPath, ['repo', 'team/sync']);
    expect(repo.code).toBe(0);
    expect(repo.stdout).toMatch(/^team\/sync\.git: Synchronized, version 2, leaders b1,b2,b3/m);
    const sums = await cliHash(cluster(), repoKey('team/sync', 'checksums'));
    expect(repo.stdout).toMatch(new RegExp(`^b1\\s+-\\s+2\\s+${sums.b1!.slice(0, 12)}\\s+yes\\s+-\\s+anonymous\\s+\\d{4}-`, 'm'));
    const rj = await githaJson(githa.configPath, ['repo', '/team/sync.git']);
    expect(rj.code).toBe(0);
    expect(rj.data).toMatchObject({ repo: 'team/sync.git', state: 'synchronized', version: 2 });
    expect(rj.data.backends).toHaveLength(3);
    for (const b of rj.data.backends) expect(b).toMatchObject({ version: 2, leader: true, health: 'up', lastWriter: 'anonymous', checksum: sums[b.backend] });

    // Nothing at risk.
    const loss = await githaCli(githa.configPath, ['dataloss']);
    expect(loss.code).toBe(0);
    expect(loss.stdout).toMatch(/no repository at risk/);

    // Unknown repository: exit 1 with a message; a bad name: exit 2.
    const unknown = await githaCli(githa.configPath, ['repo', 'team/never']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/repository team\/never\.git is not known to githa/);
    const bad = await githaCli(githa.configPath, ['repo', '../etc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid repository name/);
  });

  it('a partial repository (one copy): Partial in status, the stale backends in repo, and dataloss with a quorum of 2 lists it', async () => {
    const githa = await startGitha(cluster(), { singleCopy: true, logLevel: 'info' });
    const git = GitClient.forCluster(cluster());
    await pushedRepo(cluster(), git, githa, 'team/part');
    const versions = await cliVersions(cluster(), 'team/part');
    const [leader] = leadersOf(versions);
    const stale = ['b1', 'b2', 'b3'].filter((b) => b !== leader);
    expect(leadersOf(versions)).toHaveLength(1);

    const st = await githaJson(githa.configPath, ['status']);
    expect(st.data.repositories).toContainEqual(expect.objectContaining({ repo: 'team/part.git', state: 'partial', version: 2, leaders: [leader], stale }));
    expect(st.data.backlog).toBe(2);
    expect(st.code).toBe(0);
    const human = await githaCli(githa.configPath, ['status']);
    expect(human.stdout).toMatch(new RegExp(`^team/part\\.git\\s+Partial\\s+2\\s+${leader}\\s+${stale.join(',')}`, 'm'));
    expect(human.stdout).toMatch(/replication backlog: 2 stale/);

    const repo = await githaJson(githa.configPath, ['repo', 'team/part']);
    expect(repo.code).toBe(0);
    for (const b of repo.data.backends) {
      expect(b).toMatchObject({ backend: b.backend, version: b.backend === leader ? 2 : 1, leader: b.backend === leader, stale: b.backend !== leader });
    }

    // With the githa's own quorum (1) nothing is at risk; with a quorum of 2 the repository is.
    expect((await githaCli(githa.configPath, ['dataloss'])).code).toBe(0);
    const quorum2 = githa.configPath.replace(/\.json$/, '-quorum2.json');
    const config = JSON.parse(readFileSync(githa.configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(quorum2, JSON.stringify({ ...config, replication: { writeQuorum: 2, background: false } }));
    const loss = await githaCli(quorum2, ['dataloss']);
    expect(loss.code).toBe(1);
    expect(loss.stdout).toMatch(new RegExp(`^team/part\\.git\\s+2\\s+${leader} \\(1 of 2\\)\\s+${stale[0]} stale at v1 since \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z; ${stale[1]} stale at v1 since`, 'm'));
    expect(loss.stdout).not.toMatch(/team\/sync\.git/);
    const lj = await githaJson(quorum2, ['dataloss']);
    expect(lj.code).toBe(1);
    expect(lj.data.repositories).toEqual([
      expect.objectContaining({ repo: 'team/part.git', version: 2, holders: [leader], lacking: stale.map((b) => expect.objectContaining({ backend: b, kind: 'stale', version: 1 })) }),
    ]);
  });

  it('an ambiguous repository (copies differ before githa saw it): status and repo exit 1 naming the copies', async () => {
    const githa = await startGitha(cluster(), { logLevel: 'info' });
    const git = GitClient.forCluster(cluster());
    await cluster().createRepository('team/amb.git');
    const work = await git.init('amb');
    await git.commit(work, { 'README.md': 'only on b1\n' }, 'first');
    await git.push(work, cluster().backend('b1').url('http', 'team/amb'), ['main']);
    const touched = await git.lsRemote(githa.url('team/amb')).catch((err: unknown) => err);
    expect(touched).toBeInstanceOf(Error);
    await waitFor('frozen as ambiguous', async () => (await cliHash(cluster(), repoKey('team/amb', 'frozen'))).reason === 'ambiguous');

    const st = await githaCli(githa.configPath, ['status']);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(/^team\/amb\.git\s+Ambiguous\s+0\s+-\s+-\s+-\s+copies differ: b\d=[0-9a-f]{12} b\d=[0-9a-f]{12} b\d=[0-9a-f]{12}/m);
    expect(st.stdout).toMatch(/attention: 1 ambiguous/);
    const repo = await githaCli(githa.configPath, ['repo', 'team/amb']);
    expect(repo.code).toBe(1);
    expect(repo.stdout).toMatch(/^team\/amb\.git: Ambiguous, version 0, no leader/m);
    expect(repo.stdout).toMatch(/^frozen: ambiguous: copies differ: b\d=[0-9a-f]{12} b\d=/m);
  });

  it('a frozen repository (an interrupted write): status and repo show who was writing where, exit 1', async () => {
    const githa = await startGitha(cluster(), { singleCopy: true, logLevel: 'info' });
    const git = GitClient.forCluster(cluster());
    await pushedRepo(cluster(), git, githa, 'team/frz');
    // No githa may resolve the marker while the CLI looks at it.
    await githa.stop();
    const started = Date.now() - 60_000;
    await cluster().redis.cli(
      'HSET', repoKey('team/frz', 'writing'),
      'id', 'dead-write', 'backend', 'b2', 'proxy', 'ghost:1', 'user', 'alice', 'transport', 'http',
      'started', String(started), 'heartbeat', String(started), 'preChecksum', 'x',
    );
    const st = await githaJson(githa.configPath, ['status']);
    expect(st.code).toBe(1);
    expect(st.data.repositories).toContainEqual(expect.objectContaining({ repo: 'team/frz.git', state: 'frozen', reason: 'write-interrupted', writing: { backend: 'b2', interrupted: true } }));
    const human = await githaCli(githa.configPath, ['status']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^team\/frz\.git\s+Frozen\s+.*write-interrupted; interrupted write on b2/m);
    const repo = await githaCli(githa.configPath, ['repo', 'team/frz']);
    expect(repo.code).toBe(1);
    expect(repo.stdout).toMatch(new RegExp(`^b2\\s.*INTERRUPTED: alice via ghost:1 since ${new Date(started).toISOString().slice(0, 19)}Z`, 'm'));
    expect(repo.stdout).toMatch(/^team\/frz\.git: Frozen/m);
    expect(repo.stdout).toMatch(/^frozen: write-interrupted: a push by alice to b2 via ghost:1 did not finish/m);
    await cluster().redis.cli('DEL', repoKey('team/frz', 'writing'));
  });

  it('githa log: the push log newest last, filtered by --user, --since and --limit; --json has the stream ids', async () => {
    const githa = await startGitha(cluster(), { ssh: true, logLevel: 'info' });
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    await cluster().createRepository('team/log.git');
    const work = await git.init('log');
    const first = await git.commit(work, { 'a.txt': '1\n' }, 'one');
    await git.push(work, githa.url('team/log'), ['main']); // HTTP: anonymous
    const second = await git.commit(work, { 'a.txt': '2\n' }, 'two');
    await git.push(work, githa.sshUrl('team/log'), ['main']); // SSH: tester
    await git.push(work, githa.sshUrl('team/log'), ['main:refs/heads/topic']);

    const all = await githaJson(githa.configPath, ['log', 'team/log']);
    expect(all.code).toBe(0);
    const pushes = (all.data as Array<Record<string, string>>).filter((e) => e.event === 'push');
    expect(pushes.map((e) => [e.version, e.user, e.transport])).toEqual([['2', 'anonymous', 'http'], ['3', 'tester', 'ssh'], ['4', 'tester', 'ssh']]);
    for (const e of all.data as Array<Record<string, string>>) expect(e.id).toMatch(/^\d+-\d+$/);
    expect((all.data as Array<{ id: string }>)[0]).toMatchObject({ event: 'adopt', version: '1' });
    expect(pushes[1]!.refs).toBe(`${first} ${second} refs/heads/main`);

    const human = await githaCli(githa.configPath, ['log', 'team/log']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^TIME\s+VERSION\s+BACKEND\s+EVENT\s+USER\s+TRANSPORT\s+IP\s+REFS\s+BYTES\s+DURATION/m);
    expect(human.stdout).toMatch(new RegExp(`\\s3\\s+b\\d\\s+push\\s+tester\\s+ssh\\s+127\\.0\\.0\\.1\\s+main ${first.slice(0, 7)}→${second.slice(0, 7)}\\s+\\d+\\s+\\d+ms`));
    expect(human.stdout).toMatch(new RegExp(`\\s4\\s+b\\d\\s+push\\s+tester\\s+ssh\\s+127\\.0\\.0\\.1\\s+refs/tags/|\\s4\\s+b\\d\\s+push\\s+tester\\s+ssh\\s+127\\.0\\.0\\.1\\s+topic \\+${second.slice(0, 7)}`));
    const lines = human.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/\s4\s/); // newest last

    const tester = await githaJson(githa.configPath, ['log', 'team/log', '--user', 'tester']);
    expect((tester.data as Array<Record<string, string>>).map((e) => e.version)).toEqual(['3', '4']);
    const limited = await githaJson(githa.configPath, ['log', 'team/log', '--user', 'tester', '--limit', '1']);
    expect((limited.data as Array<Record<string, string>>).map((e) => e.version)).toEqual(['4']);
    const future = await githaCli(githa.configPath, ['log', 'team/log', '--since', new Date(Date.now() + 60_000).toISOString()]);
    expect(future.code).toBe(0);
    expect(future.stdout).toMatch(/no entries in the push log of team\/log\.git that match/);
    const recent = await githaJson(githa.configPath, ['log', 'team/log', '--since', '10m']);
    expect((recent.data as unknown[]).length).toBe((all.data as unknown[]).length);

    const badSince = await githaCli(githa.configPath, ['log', 'team/log', '--since', 'yesterday']);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toMatch(/ISO date/);
  });
});
