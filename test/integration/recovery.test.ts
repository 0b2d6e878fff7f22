/**
 * Losing Redis (design: "Losing Redis", "Failure modes: ambiguous leaders",
 * "Safety rules" 4 and 5), against real git, Redis and stock backends:
 *
 * - after every githa key is deleted from Redis, the next request through a
 *   running githa adopts the repository from its copies: equal copies → all
 *   three backends leaders again, reads and pushes work;
 * - if one copy was changed out of band meanwhile, the copies differ: githa
 *   refuses reads and writes naming "ambiguous" and freezes the repository;
 * - `githa recover R --json` rebuilds the record at once: in-sync copies →
 *   recovered with b1,b2,b3 as leaders (exit 0); differing copies → ambiguous,
 *   frozen (exit 1); on an intact record the version only goes up and the
 *   repository keeps working.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient, type GitResult } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { checksumOf, diskRefs, refOnDisk } from '../support/backend-refs.js';
import { leadersOf, maxOf, waitFor } from '../support/state.js';

const MAIN = resolve(import.meta.dirname, '../../dist/cli/main.js');
const PREFIX = 'githa:';
const BACKENDS = ['b1', 'b2', 'b3'];

const cluster = useCluster({ backends: 3 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

// ---- helpers ----------------------------------------------------------------

const canonical = (repo: string): string => (repo.endsWith('.git') ? repo : `${repo}.git`);
const key = (repo: string, what: string): string => `${PREFIX}repo:{${canonical(repo)}}:${what}`;

async function versions(repo: string): Promise<Record<string, number>> {
  const h = await redis.hgetall(key(repo, 'versions'));
  return Object.fromEntries(Object.entries(h).map(([b, v]) => [b, Number(v)]));
}




/**
 * Waits until every backend has `main` at `sha` on disk, the three copies have
 * the same checksum, and Redis records all three at the highest version with
 * that checksum (background replication done). Returns the versions.
 */
async function waitAllCurrent(c: DevCluster, repo: string, sha: string): Promise<Record<string, number>> {
  return waitFor(`all three copies of ${repo} at ${sha} and recorded as leaders`, async () => {
    const sums = new Set<string>();
    for (const b of c.backends) {
      if ((await refOnDisk(b, repo, 'refs/heads/main')) !== sha) return undefined;
      sums.add(checksumOf(await diskRefs(b, repo)));
    }
    if (sums.size !== 1) return undefined;
    const v = await versions(repo);
    if (leadersOf(v).join(',') !== BACKENDS.join(',')) return undefined;
    const recorded = await redis.hgetall(key(repo, 'checksums'));
    if (BACKENDS.some((b) => recorded[b] !== [...sums][0])) return undefined;
    return v;
  });
}

/** Deletes every key with githa's prefix (SCAN + DEL): Redis lost githa's state. */
async function wipeRedis(): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  const [, left] = await redis.scan('0', 'MATCH', `${PREFIX}*`, 'COUNT', 100_000);
  expect(left).toEqual([]);
}

/** Creates the repository, pushes `count` commits (one push each) through githa; returns the last commit. */
async function pushSeveral(git: GitClient, githa: GithaProcess, repo: string, count = 4): Promise<{ work: string; sha: string }> {
  await cluster().createRepository(repo);
  const work = await git.init('work');
  let sha = '';
  for (let i = 1; i <= count; i++) {
    sha = await git.commit(work, { 'file.txt': `${repo} commit ${i}\n`, [`f${i}.txt`]: `${i}\n` }, `commit ${i}`);
    await git.push(work, githa.url(repo), ['main']);
  }
  return { work, sha };
}

/** Pushes one commit on main straight to one backend, bypassing githa (an out-of-band change). */
async function pushOutOfBand(git: GitClient, work: string, c: DevCluster, backend: string, repo: string): Promise<string> {
  const sha = await git.commit(work, { 'oob.txt': `out of band on ${backend}\n` }, `out of band on ${backend}`);
  await git.push(work, c.backend(backend).url('http', repo), ['main']);
  expect(await refOnDisk(c.backend(backend), repo, 'refs/heads/main')).toBe(sha);
  return sha;
}

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function recoverCli(configPath: string, repos: string[], extra: string[] = ['--json']): Promise<CliResult> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [MAIN, 'recover', ...repos, '--config', configPath, ...extra],
      { env: { ...process.env, GITHA_CONFIG: '', GITHA_REDIS_URL: '' }, timeout: 30_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : null) : 0;
        res({ code, stdout, stderr });
      },
    );
  });
}

function jsonLines(out: string): Array<Record<string, unknown>> {
  return out
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function output(r: GitResult): string {
  return `${r.stdout}\n${r.stderr}`;
}

type LogEntry = Record<string, string>;

async function pushLog(repo: string): Promise<LogEntry[]> {
  const entries = await redis.xrange(key(repo, 'log'), '-', '+');
  return entries.map(([, fields]) => {
    const e: LogEntry = {};
    for (let i = 0; i < fields.length; i += 2) e[fields[i]!] = fields[i + 1]!;
    return e;
  });
}

// ---- tests --------------------------------------------------------------------

describe('losing Redis: lazy adoption by a running githa', () => {
  it('after every githa key is deleted, the next clone adopts the repository with all three backends as leaders, and pushes go on', async () => {
    const c = cluster();
    const repo = 'recovery/lazy-equal';
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const { work, sha } = await pushSeveral(git, githa, repo, 4);
    const before = await waitAllCurrent(c, repo, sha);
    expect(maxOf(before)).toBeGreaterThanOrEqual(4);
    const epochBefore = await redis.hget(key(repo, 'meta'), 'epoch');

    await wipeRedis();
    expect(await redis.exists(key(repo, 'versions'))).toBe(0);

    // The next read works and sees everything that was pushed.
    const clone = await git.clone(githa.url(repo));
    expect(await git.revParse(clone, 'origin/main')).toBe(sha);
    const log = (await git.run(['log', '--format=%s', 'origin/main'], { cwd: clone })).stdout.split('\n');
    for (let i = 1; i <= 4; i++) expect(log).toContain(`commit ${i}`);

    // The record is rebuilt from the copies: every backend a leader, with the copies' checksum.
    const after = await versions(repo);
    expect(leadersOf(after)).toEqual(BACKENDS);
    expect(after).toEqual({ b1: 1, b2: 1, b3: 1 });
    const sum = checksumOf(await diskRefs(c.backend('b1'), repo));
    expect(await redis.hgetall(key(repo, 'checksums'))).toEqual({ b1: sum, b2: sum, b3: sum });
    expect(await redis.exists(key(repo, 'frozen'))).toBe(0);
    const epochAfter = await redis.hget(key(repo, 'meta'), 'epoch');
    expect(epochAfter).toBeTruthy();
    expect(epochAfter).not.toBe(epochBefore);
    expect((await pushLog(repo)).map((e) => e.event)).toContain('adopt');
    // Not taken for a regression (version 1 < the version githa saw before): a new epoch.
    expect(githa.logs()).not.toContain('STATE REGRESSION');

    // Writes work again, on top of the adopted record, and reach every copy.
    await git.run(['fetch', '--quiet', githa.url(repo), 'main'], { cwd: work });
    const next = await git.commit(work, { 'after.txt': 'after the wipe\n' }, 'after the wipe');
    await git.push(work, githa.url(repo), ['main']);
    const v2 = await waitAllCurrent(c, repo, next);
    expect(maxOf(v2)).toBe(2);
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(next);
  });

  it('after the wipe one copy changed out of band: the next request is refused as ambiguous and the repository is frozen', async () => {
    const c = cluster();
    const repo = 'recovery/lazy-diverged';
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const { work, sha } = await pushSeveral(git, githa, repo, 3);
    await waitAllCurrent(c, repo, sha);

    await wipeRedis();
    const oob = await pushOutOfBand(git, work, c, 'b2', repo);

    const clone = await git.run(['clone', '--quiet', '--', githa.url(repo), `${await git.workdir('refused')}/repo`], { allowFailure: true });
    expect(clone.code, output(clone)).not.toBe(0);
    expect(clone.stderr).toMatch(/ambiguous/);
    expect(clone.stderr).toMatch(/githa thaw recovery\/lazy-diverged\.git --promote/);

    const frozen = await redis.hgetall(key(repo, 'frozen'));
    expect(frozen.reason).toBe('ambiguous');
    expect(frozen.detail).toMatch(/b1=/);
    expect(frozen.detail).toMatch(/b2=/);
    // Nothing was guessed: no versions recorded.
    expect(await versions(repo)).toEqual({});

    // Reads stay refused (b2's commit is never served), and so do writes.
    const ls = await git.run(['ls-remote', '--', githa.url(repo)], { allowFailure: true });
    expect(ls.code).not.toBe(0);
    expect(ls.stderr).toMatch(/ambiguous/);
    expect(ls.stdout).not.toContain(oob);
    const next = await git.commit(work, { 'x.txt': 'x\n' }, 'refused push');
    const push = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
    expect(push.code, output(push)).not.toBe(0);
    expect(push.stderr).toMatch(/ambiguous/);
    for (const b of c.backends) expect(await refOnDisk(b, repo, 'refs/heads/main')).not.toBe(next);
    expect(await refOnDisk(c.backend('b1'), repo, 'refs/heads/main')).toBe(sha);
    expect(await refOnDisk(c.backend('b3'), repo, 'refs/heads/main')).toBe(sha);
    expect(await refOnDisk(c.backend('b2'), repo, 'refs/heads/main')).toBe(oob);
  });
});

describe('githa recover', () => {
  it('after a wipe: in-sync copies are recovered with b1,b2,b3 as leaders (exit 0); githa serves them', async () => {
    const c = cluster();
    const repo = 'recovery/cli-sync';
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const { work, sha } = await pushSeveral(git, githa, repo, 3);
    await waitAllCurrent(c, repo, sha);
    await wipeRedis();

    const r = await recoverCli(githa.configPath, [repo]);
    expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    const lines = jsonLines(r.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ repo: canonical(repo), status: 'recovered', backends: BACKENDS });
    const version = lines[0]!.version as number;
    expect(version).toBeGreaterThanOrEqual(1);

    const v = await versions(repo);
    expect(v).toEqual({ b1: version, b2: version, b3: version });
    const sum = checksumOf(await diskRefs(c.backend('b1'), repo));
    expect(await redis.hgetall(key(repo, 'checksums'))).toEqual({ b1: sum, b2: sum, b3: sum });
    expect(await redis.hget(key(repo, 'meta'), 'epoch')).toBeTruthy();
    expect(await redis.exists(key(repo, 'frozen'))).toBe(0);
    expect((await pushLog(repo)).map((e) => e.event)).toContain('recover');

    // The running githa serves the recovered record, reads and writes.
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(sha);
    const next = await git.commit(work, { 'after.txt': 'after recover\n' }, 'after recover');
    await git.push(work, githa.url(repo), ['main']);
    const after = await waitAllCurrent(c, repo, next);
    expect(maxOf(after)).toBe(version + 1);
  });

  it('after a wipe: differing copies are reported ambiguous (exit 1) and frozen; githa refuses them', async () => {
    const c = cluster();
    const repo = 'recovery/cli-diverged';
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const { work, sha } = await pushSeveral(git, githa, repo, 3);
    await waitAllCurrent(c, repo, sha);
    await wipeRedis();
    await pushOutOfBand(git, work, c, 'b2', repo);

    const r = await recoverCli(githa.configPath, [repo]);
    expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(1);
    const lines = jsonLines(r.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ repo: canonical(repo), status: 'ambiguous' });
    const copies = lines[0]!.copies as Record<string, string>;
    expect(Object.keys(copies).sort()).toEqual(BACKENDS);
    expect(copies.b1).toBe(checksumOf(await diskRefs(c.backend('b1'), repo)));
    expect(copies.b2).toBe(checksumOf(await diskRefs(c.backend('b2'), repo)));
    expect(copies.b1).toBe(copies.b3);
    expect(copies.b2).not.toBe(copies.b1);

    const frozen = await redis.hgetall(key(repo, 'frozen'));
    expect(frozen.reason).toBe('ambiguous');
    expect(await versions(repo)).toEqual({});

    const clone = await git.run(['clone', '--quiet', '--', githa.url(repo), `${await git.workdir('refused')}/repo`], { allowFailure: true });
    expect(clone.code, output(clone)).not.toBe(0);
    expect(clone.stderr).toMatch(/ambiguous/);

    // The text form names the repository, AMBIGUOUS and the thaw command; still exit 1.
    const text = await recoverCli(githa.configPath, [repo], []);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/recovery\/cli-diverged\.git\tAMBIGUOUS\t.*githa thaw recovery\/cli-diverged\.git --promote/);
  });

  it('on an intact record: versions only go up, every copy stays a leader, and the repository keeps working', async () => {
    const c = cluster();
    const repo = 'recovery/cli-intact';
    const githa = await startGitha(c);
    const git = GitClient.forCluster(c);
    const { work, sha } = await pushSeveral(git, githa, repo, 3);
    const before = await waitAllCurrent(c, repo, sha);
    const maxBefore = maxOf(before);
    // The running githa has seen maxBefore (a read), so a lower version would be a regression to it.
    expect((await git.lsRemote(githa.url(repo), ['refs/heads/main']))['refs/heads/main']).toBe(sha);

    const r = await recoverCli(githa.configPath, [repo]);
    expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    const [line] = jsonLines(r.stdout);
    expect(line).toMatchObject({ repo: canonical(repo), status: 'recovered', backends: BACKENDS });
    const version = line!.version as number;
    expect(version).toBeGreaterThan(maxBefore);
    const after = await versions(repo);
    expect(after).toEqual({ b1: version, b2: version, b3: version });
    for (const b of BACKENDS) expect(after[b]).toBeGreaterThan(before[b]!);

    // Reads and writes go on through the githa that was running all along.
    const clone = await git.clone(githa.url(repo));
    expect(await git.revParse(clone, 'origin/main')).toBe(sha);
    const next = await git.commit(work, { 'after.txt': 'after recover\n' }, 'after recover');
    await git.push(work, githa.url(repo), ['main']);
    const final = await waitAllCurrent(c, repo, next);
    expect(maxOf(final)).toBe(version + 1);
    expect(githa.logs()).not.toContain('STATE REGRESSION');

    // Recovering twice more: still only upwards.
    const again = jsonLines((await recoverCli(githa.configPath, [repo])).stdout)[0]!;
    expect(again.status).toBe('recovered');
    expect(again.version as number).toBeGreaterThan(version + 1);
  });
  it('on an intact record with a stale copy (writeQuorum 1, no background replication): the record is kept, reads go on, nothing goes down', async () => {
    const c = cluster();
    const repo = 'recovery/cli-intact-stale';
    const githa = await startGitha(c, { singleCopy: true });
    const git = GitClient.forCluster(c);
    await c.createRepository(repo);
    const work = await git.init('work');
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, githa.url(repo), ['main']);
    const second = await git.commit(work, { 'b.txt': 'b\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    const before = await versions(repo);
    const [leader, ...others] = leadersOf(before);
    expect(others).toEqual([]);
    expect(await refOnDisk(c.backend(leader!), repo, 'refs/heads/main')).toBe(second);
    const stale = BACKENDS.filter((b) => b !== leader && (before[b] ?? 0) < maxOf(before));
    expect(stale.length).toBeGreaterThan(0);
    for (const b of stale) expect(await refOnDisk(c.backend(b), repo, 'refs/heads/main')).not.toBe(second);

    const r = await recoverCli(githa.configPath, [repo]);
    const after = await versions(repo);
    // Nothing needs an operator: exit 0, and the answer is no ambiguity.
    expect(r.code, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ repo: canonical(repo) });
    expect(jsonLines(r.stdout)[0]!.status).not.toBe('ambiguous');
    // Redis still knows which copy is right: stale copies are no ambiguity (design: "Ambiguous leaders" = versions missing or contradicting checksums).
    expect(await redis.hgetall(key(repo, 'frozen')), `recover said: ${r.stdout} (exit ${r.code})`).toEqual({});
    expect(maxOf(after)).toBeGreaterThanOrEqual(maxOf(before));
    expect(after[leader!]).toBeGreaterThanOrEqual(before[leader!]!);
    // The stale copies did not become leaders with their old refs.
    for (const b of leadersOf(after)) expect(await refOnDisk(c.backend(b), repo, 'refs/heads/main')).toBe(second);
    const clone = await git.clone(githa.url(repo));
    expect(await git.revParse(clone, 'origin/main')).toBe(second);
    expect(await git.revParse(clone, 'origin/main~1')).toBe(first);
  });
});
