/**
 * Recovery after Redis was lost, with `replication.factor` 3 over five real
 * backends (docs/operations.md "Inventory and recovery after Redis loss",
 * docs/architecture.md "Placement"): `githa recover` and `githa inventory
 * --all` give each repository an assignment of exactly 3 backends among the
 * holders of its copies, so background replication fills only those (not all
 * five). A repository found on fewer backends gets the rest assigned and
 * filled; one found on more keeps its extra copy on disk, untracked.
 * `githa inventory` counts only assigned backends: it exits 0 on the healthy
 * cluster, before and after the loss.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { githaCli } from '../cli/run.js';
import { cliVersions, oneVersion, repoKey, waitFor } from '../support/state.js';

const cluster = useCluster({ backends: 5 });

interface Recovered {
  repo: string;
  status: string;
  backends?: string[];
  assigned?: string[];
}

interface InventoryJson {
  counts: Record<string, number>;
  attention: string[];
  rows: { repo: string; class: string; copies: string[]; missing: string[] }[];
}

async function assignedOf(c: DevCluster, repo: string): Promise<string[]> {
  return (await c.redis.cli('HKEYS', repoKey(repo, 'assigned'))).split('\n').map((s) => s.trim()).filter(Boolean).sort();
}

function holders(c: DevCluster, repo: string): string[] {
  return c.backends.filter((b) => existsSync(join(b.root, `${repo}.git`, 'HEAD'))).map((b) => b.id);
}

/** `githa inventory --json`: exit 0, nothing missing, untracked or a ghost. */
async function inventoryClean(configPath: string): Promise<void> {
  const out = await githaCli(configPath, ['inventory', '--json']);
  const report = JSON.parse(out.stdout) as InventoryJson;
  expect(report.attention, JSON.stringify(report.rows.filter((r) => r.class !== 'tracked'))).toEqual([]);
  expect(report.counts).toMatchObject({ missing: 0, untracked: 0, ghost: 0 });
  expect(out.code, out.stderr).toBe(0);
}

describe('recovery with replication factor 3 over 5 backends', () => {
  it('assigns each recovered repository 3 holders (the rest filled), and inventory counts only assigned backends', async () => {
    const c = cluster();
    const g = await startGitha(c, { admin: true, config: { replication: { factor: 3 } } });
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    const created = ['rf/c0', 'rf/c1', 'rf/c2', 'rf/c3'];
    for (const r of created) {
      const out = await githaCli(g.configPath, ['create', r, '--json']);
      expect(out.code, out.stderr).toBe(0);
      await git.push(work, g.url(r), ['HEAD:refs/heads/main']);
      await oneVersion(c, r, 3);
    }
    // Healthy, factor 3: the two unassigned backends of each repository are no missing copy.
    await inventoryClean(g.configPath);

    // Found outside githa: one on four backends (more than the factor), one on a single backend (fewer).
    const wide = 'rf/wide';
    const narrow = 'rf/narrow';
    for (const id of ['b1', 'b2', 'b3', 'b4']) {
      await c.backend(id).createRepository(wide);
      await git.push(work, c.backend(id).url('http', wide), ['HEAD:refs/heads/main']);
    }
    await c.backend('b2').createRepository(narrow);
    await git.push(work, c.backend('b2').url('http', narrow), ['HEAD:refs/heads/main']);
    const all = [...created, wide, narrow];
    const before = new Map(all.map((r) => [r, holders(c, r)]));

    // Redis lost; `githa recover` rebuilds every record from the listings.
    await c.redis.cli('FLUSHALL');
    const rec = await githaCli(g.configPath, ['recover', '--json']);
    expect(rec.code, rec.stderr + rec.stdout).toBe(0);
    const results = new Map(rec.stdout.trim().split('\n').map((l) => JSON.parse(l) as Recovered).map((r) => [r.repo.replace(/\.git$/, ''), r]));
    expect([...results.keys()].sort()).toEqual([...all].sort());
    const checkRecovered = async (r: string, result: Recovered | undefined): Promise<void> => {
      const held = before.get(r)!;
      const assigned = await assignedOf(c, r);
      expect(assigned, r).toHaveLength(3);
      expect(result?.assigned, r).toEqual(assigned);
      // Holders first: as many of them as the factor allows; only assigned holders are recorded.
      expect(assigned.filter((b) => held.includes(b)), r).toHaveLength(Math.min(3, held.length));
      expect(Object.keys(await cliVersions(c, r)).sort(), r).toEqual(assigned.filter((b) => held.includes(b)));
      expect(await c.redis.cli('HGET', repoKey(r, 'meta'), 'factor'), r).toBe('3');
    };
    for (const r of all) await checkRecovered(r, results.get(r));
    for (const r of created) expect(await assignedOf(c, r), r).toEqual(before.get(r));
    // The placement counts follow the assignments written.
    const counts = new Map(c.backends.map((b) => [b.id, 0]));
    for (const r of all) for (const id of await assignedOf(c, r)) counts.set(id, counts.get(id)! + 1);
    for (const [id, n] of counts) expect(Number(await c.redis.cli('HGET', 'githa:placement', `repos:${id}`)), id).toBe(n);

    // Background replication fills the narrow repository's two new backends, and no other.
    await oneVersion(c, narrow, 3);
    const narrowAssigned = await assignedOf(c, narrow);
    await waitFor('the narrow repository on its assigned backends', () => narrowAssigned.every((id) => holders(c, narrow).includes(id)));
    expect(holders(c, narrow)).toEqual(narrowAssigned);
    // The wide repository's fourth copy stays on disk, untracked by its record.
    expect(holders(c, wide)).toEqual(before.get(wide));
    await inventoryClean(g.configPath);

    // Lost again; `githa inventory --all` adopts every repository the same way.
    const again = new Map(all.map((r) => [r, holders(c, r)]));
    before.clear();
    for (const [r, h] of again) before.set(r, h);
    await c.redis.cli('FLUSHALL');
    const track = await githaCli(g.configPath, ['inventory', '--all', '--json']);
    const tracked = (JSON.parse(track.stdout) as { tracked: Recovered[] }).tracked;
    expect(tracked.map((t) => t.status)).toEqual(all.map(() => 'recovered'));
    for (const t of tracked) await checkRecovered(t.repo.replace(/\.git$/, ''), t);
    expect(track.code, track.stderr).toBe(0);
    await inventoryClean(g.configPath);
    for (const r of all) expect(holders(c, r), r).toEqual(again.get(r));
  }, 300_000);
});
