/**
 * Repair without loss (docs/architecture.md "Verified copies"), against real
 * git, Redis and lighttpd backends: a copy changed behind githa's back is
 * found by the verifier, and
 * - wiped and re-created empty, or with a ref rolled back: refilled from a
 *   leader within seconds, nothing kept;
 * - with a commit the leaders lack: that commit is kept under
 *   refs/githa/kept/b3/<stamp>/… on every copy, then b3 equals the leaders;
 * - deleted: stays drifted as missing, and `githa repo` / `githa status`
 *   show "missing on b3" with the command that creates it (b3's own account
 *   and root, from its ssh URL: githa may not manage it, no `admin`).
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { checksumOf, diskRefs, gitDir } from '../support/backend-refs.js';
import { maxOf } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
const BACKENDS = ['b1', 'b2', 'b3'];
const cluster = useCluster({ backends: 3 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

async function versions(repo: string): Promise<Record<string, number>> {
  const h = await redis.hgetall(key(repo, 'versions'));
  return Object.fromEntries(Object.entries(h).map(([b, v]) => [b, Number(v)]));
}

/** Waits until every backend holds the same refs on disk, recorded at the highest version with that checksum, and no drift. */
async function waitAllEqual(c: DevCluster, repo: string, timeoutMs = 15_000): Promise<Record<string, string>> {
  return waitFor(
    `every copy of ${repo} equal and recorded`,
    async () => {
      const v = await versions(repo);
      const recorded = await redis.hgetall(key(repo, 'checksums'));
      if ((await redis.hlen(key(repo, 'drift'))) > 0) return undefined;
      const first = await diskRefs(c.backend('b1'), repo);
      for (const id of BACKENDS) {
        const refs = await diskRefs(c.backend(id), repo);
        if (checksumOf(refs) !== checksumOf(first)) return undefined;
        if (v[id] !== maxOf(v) || recorded[id] !== checksumOf(refs)) return undefined;
      }
      return first;
    },
    timeoutMs,
  );
}

/** A repository with two commits on main pushed through githa, on every copy. */
async function seeded(repo: string, verifyMs = 500): Promise<{ c: DevCluster; githa: GithaProcess; git: GitClient; work: string; first: string; second: string }> {
  const c = cluster();
  await c.createRepository(repo);
  // The verifier every half second: drift on an idle repository is found at once (no read needed).
  const githa = await startGitha(c, { config: { verify: { intervalMs: verifyMs, perSecond: 50 }, replication: { scanIntervalMs: 1_000 } } });
  const git = GitClient.forCluster(c);
  const work = await git.init('work');
  const first = await git.commit(work, { 'README.md': 'one\n' }, 'first');
  await git.push(work, githa.url(repo), ['main']);
  const second = await git.commit(work, { 'a.txt': 'two\n' }, 'second');
  await git.push(work, githa.url(repo), ['main']);
  const refs = await waitAllEqual(c, repo);
  expect(refs['refs/heads/main']).toBe(second);
  return { c, githa, git, work, first, second };
}

const kept = (refs: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(refs).filter(([n]) => n.startsWith('refs/githa/kept/')));

function cli(configPath: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [MAIN, ...args, '--config', configPath], { env: { ...process.env, GITHA_CONFIG: '', GITHA_REDIS_URL: '' }, timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : null) : 0;
      res({ code, stdout, stderr });
    });
  });
}

describe('repair without loss', () => {
  it('refills a wiped and re-created (empty) copy within seconds, keeping nothing', async () => {
    const repo = 'repair/wiped';
    const { c, githa, second } = await seeded(repo);
    const b3 = c.backend('b3');
    await rm(b3.repoPath(repo), { recursive: true, force: true });
    await b3.createRepository(repo); // git init --bare: an empty copy
    expect(await diskRefs(b3, repo)).toEqual({});
    const refs = await waitAllEqual(c, repo);
    expect(refs['refs/heads/main']).toBe(second);
    expect(kept(refs)).toEqual({});
    expect(githa.logLines().some((l) => l.component === 'repair' && l.backend === 'b3' && l.kind === 'empty' && String(l.msg).startsWith('copy repaired'))).toBe(true);
  });

  it('refills a copy whose ref went back, keeping nothing', async () => {
    const repo = 'repair/rolled-back';
    const { c, githa, first, second } = await seeded(repo);
    const b3 = c.backend('b3');
    await gitDir(b3, repo, ['update-ref', 'refs/heads/main', first, second]);
    const refs = await waitAllEqual(c, repo);
    expect(refs['refs/heads/main']).toBe(second);
    expect(kept(refs)).toEqual({});
    expect(githa.logLines().some((l) => l.component === 'repair' && l.backend === 'b3' && l.kind === 'behind' && String(l.msg).startsWith('copy repaired'))).toBe(true);
  });

  it('keeps a divergent commit under refs/githa/kept/b3/… on every copy, then makes b3 equal to the leaders', async () => {
    const repo = 'repair/divergent';
    const { c, githa, git, second } = await seeded(repo);
    const b3 = c.backend('b3');
    // Out of band, straight to b3: main moves to a commit no other copy has.
    const side = await git.clone(b3.url('http', repo));
    const oob = await git.commit(side, { 'oob.txt': 'only on b3\n' }, 'out of band');
    await git.push(side, b3.url('http', repo), ['main']);
    expect((await diskRefs(b3, repo))['refs/heads/main']).toBe(oob);

    const refs = await waitAllEqual(c, repo);
    expect(refs['refs/heads/main']).toBe(second);
    const keptRefs = kept(refs);
    expect(Object.keys(keptRefs)).toHaveLength(1);
    const [name] = Object.keys(keptRefs);
    expect(name).toMatch(/^refs\/githa\/kept\/b3\/\d{8}T\d{6}Z\/heads\/main$/);
    expect(keptRefs[name!]).toBe(oob);
    for (const id of BACKENDS) expect((await diskRefs(c.backend(id), repo))[name!]).toBe(oob);
    // The keeping write is in the push log like any push, by githa.
    const log = (await redis.xrange(key(repo, 'log'), '-', '+')).map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]]] : []))));
    expect(log.find((e) => e.event === 'push' && e.transport === 'repair')).toMatchObject({ user: 'githa', refs: expect.stringContaining(`${oob} ${name}`) });
    expect(githa.logLines().some((l) => l.component === 'repair' && l.kind === 'divergent' && Array.isArray(l.kept) && (l.kept as string[]).includes(name!))).toBe(true);

    // `githa repo` lists the kept ref and how to drop it.
    const shown = await cli(githa.configPath, ['repo', repo]);
    expect(shown.stdout).toContain(name);
    expect(shown.stdout).toContain(`git push <githa remote> --delete ${name}`);
    // So does `githa dataloss`.
    const loss = await cli(githa.configPath, ['dataloss']);
    expect(loss.stdout).toContain(name);
    expect(loss.stdout).toContain(`git push <githa remote> --delete ${name}`);
  });

  it('shows a copy deleted on one backend as missing on it, with the command that creates it', async () => {
    const repo = 'repair/deleted';
    const { c, githa } = await seeded(repo);
    const b3 = c.backend('b3');
    await rm(b3.repoPath(repo), { recursive: true, force: true });
    const drift = await waitFor('b3 drifted as missing', async () => {
      const v = await redis.hget(key(repo, 'drift'), 'b3');
      return v?.endsWith(' missing') ? v : undefined;
    });
    expect(drift.split(' ')[0]).toBe('missing');
    await waitFor('the MISSING log line', () => githa.logLines().find((l) => String(l.msg).startsWith('MISSING ON b3')));
    const line = githa.logLines().find((l) => String(l.msg).startsWith('MISSING ON b3'))!;
    expect(Number(line.level)).toBeGreaterThanOrEqual(50);
    expect(String(line.command)).toContain(`git init --bare --initial-branch=main ${b3.repoPath(repo)}`);

    const shown = await cli(githa.configPath, ['repo', repo]);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toContain('missing on b3');
    expect(shown.stdout).toContain(`git init --bare --initial-branch=main ${b3.repoPath(repo)}`);
    const status = await cli(githa.configPath, ['status']);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain('missing on b3');
    expect(status.stdout).toMatch(/attention: .*drifted/);
    expect(status.stdout).toContain(`git init --bare --initial-branch=main ${b3.repoPath(repo)}`);

    // Created again (empty), it is refilled.
    await b3.createRepository(repo);
    await waitAllEqual(c, repo, 30_000);
  });

  it('githa sync --to B keeps a drifted copy\'s own commits before it overwrites the copy', async () => {
    const repo = 'repair/sync';
    // No verifier in githa: the copy stays drifted until the operator acts.
    const { c, githa, git, second } = await seeded(repo, 0);
    const b3 = c.backend('b3');
    const side = await git.clone(b3.url('http', repo));
    const oob = await git.commit(side, { 'oob.txt': 'only on b3\n' }, 'out of band');
    await git.push(side, b3.url('http', repo), ['main']);
    const verified = await cli(githa.configPath, ['verify', repo]);
    expect(verified.code).toBe(1);
    expect(await redis.hexists(key(repo, 'drift'), 'b3')).toBe(1);

    const synced = await cli(githa.configPath, ['sync', repo, '--to', 'b3', '--force']);
    expect(synced.code).toBe(0);
    const refs = await waitAllEqual(c, repo);
    expect(refs['refs/heads/main']).toBe(second);
    const [name, ...more] = Object.keys(kept(refs));
    expect(more).toEqual([]);
    expect(name).toMatch(/^refs\/githa\/kept\/b3\/\d{8}T\d{6}Z\/heads\/main$/);
    expect(refs[name!]).toBe(oob);
    expect(synced.stderr).toContain(`kept as ${name}`);
    expect(synced.stdout).toContain(`its commits the leaders lacked are kept as ${name}`);
  });

  it('githa thaw --demote B keeps B\'s own commits on a leader before replication overwrites it', async () => {
    const repo = 'repair/demote';
    // No verifier and no read: b3's out-of-band commit stays on b3 until the operator demotes it.
    const { c, githa, git, second } = await seeded(repo, 0);
    const b3 = c.backend('b3');
    const side = await git.clone(b3.url('http', repo));
    const oob = await git.commit(side, { 'oob.txt': 'only on b3\n' }, 'out of band');
    await git.push(side, b3.url('http', repo), ['main']);

    const demoted = await cli(githa.configPath, ['thaw', repo, '--demote', 'b3', '--force']);
    expect(demoted.code, demoted.stderr).toBe(0);
    const refs = await waitAllEqual(c, repo, 20_000);
    expect(refs['refs/heads/main']).toBe(second);
    const [name, ...more] = Object.keys(kept(refs));
    expect(more).toEqual([]);
    expect(name).toMatch(/^refs\/githa\/kept\/b3\/\d{8}T\d{6}Z\/heads\/main$/);
    expect(refs[name!]).toBe(oob);
    expect(demoted.stdout).toContain(`b3's refs/heads/main ${oob.slice(0, 10)} was not on the leaders: kept as ${name}`);
  });

  it('githa thaw --promote B keeps the other copies\' commits B lacks before they are overwritten', async () => {
    const c = cluster();
    const repo = 'repair/promote';
    await c.createRepository(repo);
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 }, replication: { scanIntervalMs: 1_000 } } });
    const git = GitClient.forCluster(c);
    // Two hosts used on their own before githa: b1 and b2 each have a commit of their own; b3 is empty.
    const ones: Record<string, string> = {};
    for (const id of ['b1', 'b2']) {
      const work = await git.init(`own-${id}`);
      ones[id] = await git.commit(work, { [`${id}.txt`]: `${id}\n` }, `made on ${id}`);
      await git.push(work, c.backend(id).url('http', repo), ['main']);
    }
    const refused = await git.run(['ls-remote', githa.url(repo)], { allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(await redis.hget(key(repo, 'frozen'), 'reason')).toBe('ambiguous');

    const promoted = await cli(githa.configPath, ['thaw', repo, '--promote', 'b1', '--force']);
    expect(promoted.code, promoted.stderr).toBe(0);
    const refs = await waitAllEqual(c, repo, 20_000);
    expect(refs['refs/heads/main']).toBe(ones.b1);
    const [name, ...more] = Object.keys(kept(refs));
    expect(more).toEqual([]);
    expect(name).toMatch(/^refs\/githa\/kept\/b2\/\d{8}T\d{6}Z\/heads\/main$/);
    expect(refs[name!]).toBe(ones.b2);
    expect(promoted.stdout).toContain(`b2's refs/heads/main ${ones.b2!.slice(0, 10)} was not on b1: kept as ${name}`);
  });
});
