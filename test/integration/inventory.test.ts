/**
 * `githa inventory`, `githa status` and `githa recover` against real git,
 * Redis, stock backends and githa's admin account over SSH
 * (docs/operations.md "Inventory and recovery after Redis loss"):
 *
 * - a repository made on the backends by hand is untracked, a copy removed
 *   on one backend is a missing copy, a repository removed on every backend
 *   is a ghost, a deleted repository's copy is a leftover: inventory and
 *   status name each and exit 1; the gauge githa_copies_missing counts them;
 * - `--track` adopts the untracked one (clonable through githa at once), and
 *   refuses the deleted one;
 * - after FLUSHALL, `githa inventory --all` and `githa recover` without names
 *   rebuild every repository's record from the listings;
 * - with no backend githa can list and an empty Redis, `githa recover` says
 *   what is missing and exits 1.
 */
import { rm } from 'node:fs/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { githaCli } from '../cli/run.js';
import { FAST, pushedRepo } from '../cli/setup.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { cliVersions, leadersOf, repoKey, waitFor } from '../support/state.js';

const cluster = useCluster({ backends: 3 });
let redis: Redis;
beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});
afterAll(() => redis?.disconnect());

interface InventoryJson {
  rows: Array<{ repo: string; class: string; copies: string[]; missing: string[] }>;
  counts: Record<string, number>;
  backends: Array<{ backend: string; how: string }>;
}
interface CopiesJson {
  copies: { listed: string[]; missing: Record<string, string[]>; untracked: string[]; ghosts: string[]; leftovers: string[] };
  attention: string[];
}

const ALL = ['b1', 'b2', 'b3'];

describe('githa inventory', () => {
  it('names untracked, missing, ghost and leftover repositories; --track adopts; after FLUSHALL --all and recover rebuild every record', async () => {
    const c = cluster();
    const git = GitClient.forCluster(c);
    // Recorded, on every backend (replicated by a first githa).
    const first = await startGitha(c, { config: FAST });
    for (const repo of ['inv/tracked', 'inv/partial', 'inv/ghost']) await pushedRepo(c, git, first, repo);
    for (const repo of ['inv/tracked', 'inv/partial', 'inv/ghost']) {
      await waitFor(`${repo} recorded on every backend`, async () => leadersOf(await cliVersions(c, `${repo}.git`)).join(',') === ALL.join(','));
    }
    await first.stop();
    // No background replication and no verifier sweep from now on: the missing copy stays missing while the test looks at it.
    const githa = await startGitha(c, { admin: true, config: { ...FAST, replication: { background: false }, verify: { intervalMs: 0 }, metrics: { statusRefreshMs: 200 } } });
    // A missing copy: gone from b3's disk. A ghost: gone from every disk.
    await rm(c.backend('b3').repoPath('inv/partial'), { recursive: true });
    for (const b of c.backends) await rm(b.repoPath('inv/ghost'), { recursive: true });
    // Untracked: made on the backends by hand, the same commit pushed to each directly.
    const work = await git.init('inv-untracked');
    const sha = await git.commit(work, { 'README.md': 'made by hand\n' }, 'by hand');
    for (const b of c.backends) {
      await b.createRepository('inv/untracked.git');
      await git.push(work, b.repoPath('inv/untracked'), ['main']);
    }
    // A leftover: deleted (its tombstone), but b1 still has a copy.
    await c.backend('b1').createRepository('inv/left.git');
    await redis.hset(repoKey('inv/left', 'gone'), { kind: 'deleted', at: String(Date.now()), by: 'ops', stamp: '20261206T074700Z' });

    const inv = await githaCli(githa.configPath, ['inventory', '--json']);
    expect(inv.code, inv.stderr).toBe(1);
    const report = JSON.parse(inv.stdout) as InventoryJson;
    const rows = Object.fromEntries(report.rows.map((r) => [r.repo, r]));
    expect(rows['inv/tracked.git']).toMatchObject({ class: 'tracked', copies: ALL });
    expect(rows['inv/partial.git']).toMatchObject({ class: 'missing', copies: ['b1', 'b2'], missing: ['b3'] });
    expect(rows['inv/ghost.git']).toMatchObject({ class: 'ghost', copies: [] });
    expect(rows['inv/untracked.git']).toMatchObject({ class: 'untracked', copies: ALL });
    expect(rows['inv/left.git']).toMatchObject({ class: 'leftover', copies: ['b1'] });
    expect(report.backends.map((b) => b.how)).toEqual(['listed', 'listed', 'listed']);

    const text = await githaCli(githa.configPath, ['inventory']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^inv\/partial\.git\s+missing copy\s+b1,b2\s+b3/m);
    expect(text.stdout).toMatch(/^inv\/ghost\.git\s+ghost\s+-\s+b1,b2,b3\s+recorded, no copy on any backend$/m);
    expect(text.stdout).toMatch(/^inv\/untracked\.git\s+untracked\s+b1,b2,b3/m);
    expect(text.stdout).toContain('untracked: inv/untracked.git; adopt it with: githa inventory --track inv/untracked.git');
    expect(text.stdout).toContain('5 repositories: tracked 1, missing copy 1, untracked 1, ghost 1, leftover 1');

    const st = await githaCli(githa.configPath, ['status', '--json']);
    expect(st.code).toBe(1);
    const copies = (JSON.parse(st.stdout) as CopiesJson).copies;
    expect(copies).toMatchObject({ listed: ALL, untracked: ['inv/untracked.git'], ghosts: ['inv/ghost.git'], leftovers: ['inv/left.git'] });
    expect(copies.missing).toEqual({ b1: [], b2: [], b3: ['inv/partial.git'] });
    const stText = await githaCli(githa.configPath, ['status']);
    expect(stText.stdout).toContain('missing copies on b3: 1 (inv/partial.git)');
    // Its record alone looks synchronized; the listings say otherwise.
    expect(stText.stdout).toMatch(/^inv\/ghost\.git\s+GHOST\s/m);
    expect(stText.stdout).toContain('attention: 1 missing copy; 1 untracked; 1 ghost; 1 leftover');
    // The serving githa's gauge, from its status snapshot.
    await waitFor('githa_copies_missing{backend="b3"} 1', async () => (await (await fetch(`${githa.adminUrl}/metrics`)).text()).includes('githa_copies_missing{backend="b3"} 1'));
    const page = await (await fetch(`${githa.adminUrl}/status`)).text();
    expect(page).toContain('<h2>Copies</h2>');
    expect(page).toMatch(/missing on <code>b3<\/code><\/td><td class="num">1<\/td><td>inv\/partial\.git/);
    expect(page).toMatch(/untracked<\/td><td class="num">1<\/td><td>inv\/untracked\.git/);

    // --track: the untracked one is adopted from its copies; the deleted one is refused.
    const track = await githaCli(githa.configPath, ['inventory', '--track', 'inv/untracked']);
    expect(track.code, track.stderr).toBe(0);
    expect(track.stdout).toMatch(/^inv\/untracked\.git\trecovered\tversion \d+\tleaders b1,b2,b3$/m);
    expect(await git.revParse(await git.clone(githa.url('inv/untracked')), 'HEAD')).toBe(sha);
    const left = await githaCli(githa.configPath, ['inventory', '--track', 'inv/left']);
    expect(left.code).toBe(2);
    expect(left.stderr).toContain('repository inv/left.git was deleted');
    expect(await redis.exists(repoKey('inv/left', 'versions'))).toBe(0);

    // Redis loses everything: the listings bring every repository back.
    await rm(c.backend('b1').repoPath('inv/left'), { recursive: true });
    await redis.flushall();
    const all = await githaCli(githa.configPath, ['inventory', '--all']);
    expect(all.stdout).toMatch(/^inv\/tracked\.git\trecovered\tversion \d+\tleaders b1,b2,b3$/m);
    expect(all.stdout).toMatch(/^inv\/untracked\.git\trecovered\tversion \d+\tleaders b1,b2,b3$/m);
    expect(all.stdout).toMatch(/^inv\/partial\.git\trecovered\tversion \d+\tleaders b1,b2$/m);
    // The missing copy on b3 still needs a look: exit 1.
    expect(all.code, all.stderr).toBe(1);
    for (const repo of ['inv/tracked', 'inv/untracked', 'inv/partial']) {
      expect(Object.keys(await cliVersions(c, `${repo}.git`)).length).toBeGreaterThan(0);
      await git.clone(githa.url(repo));
    }
    expect(await redis.exists(repoKey('inv/ghost', 'versions'))).toBe(0);

    await redis.flushall();
    const rec = await githaCli(githa.configPath, ['recover']);
    expect(rec.code, rec.stderr).toBe(0);
    expect(rec.stdout.split('\n').filter((l) => l.includes('\trecovered\t')).map((l) => l.split('\t')[0])).toEqual(['inv/partial.git', 'inv/tracked.git', 'inv/untracked.git']);
    expect(leadersOf(await cliVersions(c, 'inv/tracked.git'))).toEqual(ALL);

    // No backend githa can list, and Redis empty: recover says what is missing.
    await redis.flushall();
    const bare = await startGitha(c, { config: { replication: { background: false } } });
    const none = await githaCli(bare.configPath, ['recover']);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('no repositories known: Redis records none, and no enabled backend can be listed (without admin: b1, b2, b3)');
    const plain = await githaCli(bare.configPath, ['status']);
    expect(plain.stdout).toContain('untracked repositories: not looked for (no enabled backend has admin');
  });
});
