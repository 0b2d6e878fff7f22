/**
 * A replication factor over five real backends (docs/architecture.md
 * "Replication factor", "Placement"): factor 3, two backends configured on
 * one host. Thirty repositories, half by `githa create` and half created by
 * a push, each end up on exactly the 3 backends Redis assigns them (and on no
 * other), spread evenly, never two copies on one host; real git clones and
 * pushes them through githa over HTTP, SSH and git://.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { githaCli } from '../cli/run.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 5 });

describe('replication factor 3 over 5 backends', () => {
  it('places 30 repositories on exactly 3 backends each, evenly, never two on one host; every transport serves them', async () => {
    const c = cluster();
    const g = await startGitha(c, {
      ssh: true,
      git: { allowPush: true },
      admin: true,
      backends: { b4: { host: 'shared-machine' }, b5: { host: 'shared-machine' } },
      config: { replication: { factor: 3 }, repositories: { createOnPush: true } },
    });
    const git = GitClient.forCluster(c, { knownHostsPath: g.knownHostsPath });
    const created = Array.from({ length: 15 }, (_, i) => `fac/created-${i}`);
    const pushed = Array.from({ length: 15 }, (_, i) => `fac/pushed-${i}`);
    for (const r of created) {
      const out = await githaCli(g.configPath, ['create', r, '--json']);
      expect(out.code, out.stderr).toBe(0);
      expect(JSON.parse(out.stdout).backends).toHaveLength(3);
    }
    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    // Create on push (a verified pusher: SSH).
    for (const r of pushed) await git.push(work, g.sshUrl(r), ['HEAD:refs/heads/main']);

    const assigned = new Map<string, string[]>();
    for (const r of [...created, ...pushed]) {
      const ids = (await c.redis.cli('HKEYS', `githa:repo:{${r}.git}:assigned`)).split('\n').map((s) => s.trim()).filter(Boolean).sort();
      expect(ids, r).toHaveLength(3);
      expect(ids.includes('b4') && ids.includes('b5'), `${r} on ${ids.join(',')}`).toBe(false);
      assigned.set(r, ids);
    }
    // Each is on its assigned backends (a pushed one's third copy is created and filled by background replication) and on no other.
    for (const [r, ids] of assigned) {
      for (const b of c.backends) {
        const path = join(b.root, `${r}.git`, 'HEAD');
        if (ids.includes(b.id)) await waitFor(`${r} on ${b.id}`, () => existsSync(path), 30_000);
        else expect(existsSync(join(b.root, `${r}.git`)), `${r} not on ${b.id}`).toBe(false);
      }
    }
    const counts = new Map(c.backends.map((b) => [b.id, 0]));
    for (const ids of assigned.values()) for (const id of ids) counts.set(id, counts.get(id)! + 1);
    const mean = (30 * 3) / c.backends.length;
    for (const [id, n] of counts) expect(n, `${id} holds ${n} (mean ${mean})`).toBeLessThanOrEqual(mean + 2);
    // The placement counts in Redis agree with the assignments.
    for (const [id, n] of counts) expect(Number(await c.redis.cli('HGET', 'githa:placement', `repos:${id}`))).toBe(n);

    // Clone and push over every transport.
    const urls = { http: (r: string) => g.url(r), ssh: (r: string) => g.sshUrl(r), git: (r: string) => g.gitUrl(r) };
    for (const [t, url] of Object.entries(urls)) {
      for (const r of [created[0]!, pushed[0]!, created[7]!]) {
        const oid = await git.commit(work, { [`${t}.txt`]: `${t} ${r}\n` }, `${t} to ${r}`);
        await git.push(work, url(r), [`HEAD:refs/heads/${t}`]);
        const refs = await git.forEachRef(await git.clone(url(r), ['--mirror']));
        expect(refs[`refs/heads/${t}`], `${t} ${r}`).toBe(oid);
        if (r === pushed[0]) expect(refs['refs/heads/main']).toBe(first);
      }
    }
    // Still exactly three copies each: nothing was filled outside the assignment.
    for (const [r, ids] of assigned) {
      for (const b of c.backends) expect(existsSync(join(b.root, `${r}.git`)), `${r} on ${b.id}`).toBe(ids.includes(b.id));
    }
  }, 300_000);
});
