/**
 * The catch-up relay (design: "Catch-up"): a stale backend is brought to a
 * leader's exact refs by one pack relayed from the leader, and its version is
 * recorded only when its new checksum is the leader's recorded one.
 *
 * - through githa: a zone-preferring githa catches its stale same-zone backend
 *   up before that backend serves a read;
 * - directly: catchUp() between two real backends, with states built by
 *   pushing straight to the backends and versions seeded into Redis.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackendClient } from '../../src/backends/http.js';
import { catchUp } from '../../src/cluster/catch-up.js';
import { EMPTY_CHECKSUM, refsChecksum } from '../../src/cluster/checksum.js';
import { createLogger } from '../../src/log.js';
import { connectRedis, redisReady, type RedisClient } from '../../src/state/redis.js';
import { copyDeps, testState } from '../support/copy-deps.js';
import type { StateParts } from '../../src/state/state.js';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient, writeRandomFile } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { gitDir, diskRefs, fullRefs, checksumOf } from '../support/backend-refs.js';

const execFileP = promisify(execFile);
const cluster = useCluster({ backends: 3 });

// ---- helpers ----------------------------------------------------------------





const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

async function hgetall(k: string): Promise<Record<string, string>> {
  const out = await cluster().redis.cli('HGETALL', k);
  if (out === '') return {};
  const lines = out.split('\n');
  const obj: Record<string, string> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) obj[lines[i]!] = lines[i + 1]!;
  return obj;
}

async function versions(repo: string): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await hgetall(key(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
}

function soleLeader(v: Record<string, number>): string {
  const max = Math.max(...Object.values(v));
  const leaders = Object.keys(v).filter((b) => v[b] === max);
  expect(leaders).toHaveLength(1);
  return leaders[0]!;
}

// ---- through githa ---------------------------------------------------------------

describe('read-time catch-up through githa (zone preference)', () => {
  it('catches the stale same-zone backend up to the leader before it serves: created, updated, forced, deleted refs and tags', async () => {
    const c = cluster();
    const repo = 'cu/zone';
    await c.createRepository(repo);
    // The pusher cannot write to b3, so every write lands on b1 or b2.
    const pusher = await startGitha(c, { singleCopy: true, backends: { b3: { writable: false } } });
    const east = await startGitha(c, { singleCopy: true, zone: "east", backends: { b3: { zone: "east" } } });
    const b3 = c.backend('b3');
    const git = GitClient.forCluster(c);

    // Version 2 on b1 or b2: branches and tags of every kind.
    const work = await git.init();
    const base = await git.commit(work, { 'a.txt': 'a\n' }, 'base');
    for (const branch of ['keep', 'ff', 'forced', 'doomed']) await git.run(['branch', branch], { cwd: work });
    await git.run(['tag', '-a', 'v1', '-m', 'release 1'], { cwd: work });
    await git.run(['tag', 'light'], { cwd: work });
    await git.run(['tag', '-a', 'moving', '-m', 'first position'], { cwd: work });
    await git.push(work, pusher.url(repo), ['refs/heads/*:refs/heads/*', 'refs/tags/*:refs/tags/*']);
    const v2 = await versions(repo);
    const leaderId = soleLeader(v2);
    expect(leaderId).not.toBe('b3');
    expect(v2).toMatchObject({ [leaderId]: 2, b3: 1 });
    const leader = c.backend(leaderId);
    const bystander = c.backends.find((b) => b.id !== leaderId && b.id !== 'b3')!;
    expect(await diskRefs(b3, repo)).toEqual({});

    // First read through the east githa: b3 gets every ref created.
    expect(await git.lsRemote(east.url(repo), ['refs/heads/main'])).toEqual({ 'refs/heads/main': base });
    expect(await fullRefs(b3, repo)).toBe(await fullRefs(leader, repo));
    expect(await versions(repo)).toEqual({ ...v2, b3: 2 });
    const firstCopy = east.logLines().filter((l) => l.msg === 'catch-up');
    expect(firstCopy).toHaveLength(1);
    expect(firstCopy[0]).toMatchObject({ repo: `${repo}.git`, source: leaderId, target: 'b3', version: 2, status: 'OK' });
    const before = await diskRefs(b3, repo);

    // Three more pushes through the pusher (versions 3, 4, 5 on the leader only).
    const ff = await git.commit(work, { 'b.txt': 'b\n' }, 'fast-forward');
    await git.push(work, pusher.url(repo), ['HEAD:refs/heads/ff']);
    await git.run(['checkout', '--quiet', '--orphan', 'unrelated'], { cwd: work });
    const forced = await git.commit(work, { 'c.txt': 'unrelated history\n' }, 'unrelated');
    await git.push(work, pusher.url(repo), ['+HEAD:refs/heads/forced']);
    await git.run(['tag', '-f', '-a', 'moving', '-m', 'second position', ff], { cwd: work });
    await git.run(['tag', '-a', 'v2', '-m', 'release 2', ff], { cwd: work });
    await git.push(work, pusher.url(repo), [
      ':refs/heads/doomed',
      ':refs/tags/light',
      `${ff}:refs/heads/fresh`,
      'refs/tags/v2',
      '+refs/tags/moving',
    ]);
    const v5 = await versions(repo);
    expect(v5).toEqual({ [leaderId]: 5, b3: 2, [bystander.id]: 1 });
    const want = await diskRefs(leader, repo);
    const movingTag = want['refs/tags/moving']!;
    expect(movingTag).not.toBe(before['refs/tags/moving']);
    expect(want).toEqual({
      'refs/heads/main': base,
      'refs/heads/keep': base,
      'refs/heads/ff': ff,
      'refs/heads/forced': forced,
      'refs/heads/fresh': ff,
      'refs/tags/v1': before['refs/tags/v1'],
      'refs/tags/v2': want['refs/tags/v2'],
      'refs/tags/moving': movingTag,
    });
    // b3 is really stale on disk: it still has the old refs and lacks the new objects.
    expect(await diskRefs(b3, repo)).toEqual(before);
    await expect(gitDir(b3, repo, ['cat-file', '-e', forced])).rejects.toThrow();

    // A clone through the east githa: served by b3, and it already has everything.
    const mark = east.logLines().length;
    const clone = await git.clone(east.url(repo), ['--mirror']);
    const cloned = await git.forEachRef(clone);
    expect(cloned).toEqual(want);
    const requests = east.logLines().slice(mark).filter((l) => l.msg === 'request');
    expect(requests.length).toBeGreaterThanOrEqual(2);
    for (const r of requests) expect(r).toMatchObject({ repo: `${repo}.git`, backend: 'b3', outcome: 'ok' });

    // b3 now equals the leader exactly, on disk and in Redis.
    expect(await diskRefs(b3, repo)).toEqual(want);
    expect(await fullRefs(b3, repo)).toBe(await fullRefs(leader, repo));
    expect(await gitDir(b3, repo, ['cat-file', 'tag', movingTag])).toBe(await gitDir(leader, repo, ['cat-file', 'tag', movingTag]));
    expect((await gitDir(b3, repo, ['cat-file', 'tag', movingTag])).split('\n')[0]).toBe(`object ${ff}`);
    await gitDir(b3, repo, ['fsck', '--no-dangling']);
    expect(await versions(repo)).toEqual({ [leaderId]: 5, b3: 5, [bystander.id]: 1 });
    const checksums = await hgetall(key(repo, 'checksums'));
    expect(checksums.b3).toBe(checksums[leaderId]);
    expect(checksums.b3).toBe(checksumOf(want));
    // The bystander was not touched.
    expect(await diskRefs(bystander, repo)).toEqual({});

    const copies = east.logLines().filter((l) => l.msg === 'catch-up');
    expect(copies).toHaveLength(2);
    expect(copies[1]).toMatchObject({ repo: `${repo}.git`, source: leaderId, target: 'b3', version: 5, status: 'OK' });
    expect(copies[1]!.commands).toBe(7); // ff, forced, fresh, moving, v2 + deletes of doomed, light

    // b3 is a leader now: the next read copies nothing.
    expect(await git.lsRemote(east.url(repo), ['refs/heads/ff'])).toEqual({ 'refs/heads/ff': ff });
    expect(east.logLines().filter((l) => l.msg === 'catch-up')).toHaveLength(2);
    const log = await cluster().redis.cli('XRANGE', key(repo, 'log'), '-', '+');
    expect(log.match(/^catch-up$/gm)).toHaveLength(2);
  });
});

// ---- catchUp() directly ---------------------------------------------------------

describe('catchUp() between two stock backends', () => {
  let redis: RedisClient;
  let store: StateParts;
  const log = createLogger('silent');
  const clients = new Map<string, HttpBackendClient>();

  beforeAll(async () => {
    redis = connectRedis(cluster().redis.url, { commandTimeoutMs: 5_000 });
    expect(await redisReady(redis, 5_000)).toBe(true);
    store = testState(redis);
    for (const b of cluster().backends) clients.set(b.id, new HttpBackendClient({ id: b.id, baseUrl: b.httpUrl, timeoutMs: 30_000 }));
  });

  afterAll(async () => {
    for (const client of clients.values()) await client.close();
    redis?.disconnect();
  });

  const client = (id: string): HttpBackendClient => clients.get(id)!;

  /** Makes `backend`'s refs exactly those of the local repository `work` (git push --mirror, straight to the backend). */
  async function mirror(git: GitClient, work: string, backend: DevBackend, repo: string): Promise<void> {
    await git.run(['push', '--quiet', '--mirror', '--', backend.url('http', repo)], { cwd: work });
  }

  async function seed(repo: string, state: Record<string, [number, string]>): Promise<void> {
    const k = store.keys;
    await redis.del(k.versions(`${repo}.git`), k.checksums(`${repo}.git`));
    for (const [b, [v, sum]] of Object.entries(state)) {
      await redis.hset(k.versions(`${repo}.git`), b, v);
      await redis.hset(k.checksums(`${repo}.git`), b, sum);
    }
  }

  it('fills an empty target, records it, and a second run is a no-op', async () => {
    const c = cluster();
    const repo = 'cu/direct-empty';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commits(work, 3, 'history');
    await git.run(['branch', 'side'], { cwd: work });
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    await git.run(['tag', 'light', 'HEAD~1'], { cwd: work });
    await mirror(git, work, c.backend('b1'), repo);
    const source = await diskRefs(c.backend('b1'), repo);
    expect(Object.keys(source)).toHaveLength(4);
    const sum = checksumOf(source);
    // githa's own view of the source's refs gives the same checksum.
    expect(refsChecksum((await client('b1').listRefs(`${repo}.git`))!)).toBe(sum);
    await seed(repo, { b1: [4, sum], b2: [1, EMPTY_CHECKSUM] });

    const req = { repo: `${repo}.git`, source: client('b1'), target: client('b2'), version: 4, checksum: sum };
    const out = await catchUp(copyDeps(store, log), req);
    expect(out).toMatchObject({ status: 'ok', commands: 4 });
    expect(out.status === 'ok' && out.bytes).toBeGreaterThan(0);
    expect(await diskRefs(c.backend('b2'), repo)).toEqual(source);
    expect(await fullRefs(c.backend('b2'), repo)).toBe(await fullRefs(c.backend('b1'), repo));
    await gitDir(c.backend('b2'), repo, ['fsck', '--no-dangling']);
    expect(await redis.hget(store.keys.versions(`${repo}.git`), 'b2')).toBe('4');
    expect(await redis.hget(store.keys.checksums(`${repo}.git`), 'b2')).toBe(sum);
    const entries = await redis.xrange(store.keys.log(`${repo}.git`), '-', '+');
    expect(entries).toHaveLength(1);
    expect(entries[0]![1]).toEqual(expect.arrayContaining(['event', 'catch-up', 'source', 'b1', 'backend', 'b2', 'version', '4']));

    // Again: nothing to copy, and nothing new to record.
    const again = await catchUp(copyDeps(store, log), req);
    expect(again).toEqual({ status: 'not-recorded', reason: 'current' });
    expect(await versions(repo)).toEqual({ b1: 4, b2: 4 });
    expect(await diskRefs(c.backend('b2'), repo)).toEqual(source);
    expect(await redis.xlen(store.keys.log(`${repo}.git`))).toBe(1);
    // The pair lock was released both times.
    expect(await redis.exists(store.keys.pairLock(`${repo}.git`, 'b2'))).toBe(0);

    // A target that already holds the refs but is recorded below: recorded, without any command.
    await redis.hset(store.keys.versions(`${repo}.git`), 'b2', 2);
    expect(await catchUp(copyDeps(store, log), req)).toEqual({ status: 'ok', commands: 0, bytes: 0 });
    expect(await versions(repo)).toEqual({ b1: 4, b2: 4 });
    expect(await diskRefs(c.backend('b2'), repo)).toEqual(source);

    // Another githa holding the pair lock: this one stays away.
    await redis.set(store.keys.pairLock(`${repo}.git`, 'b2'), 'someone-else', 'PX', 10_000);
    await redis.hset(store.keys.versions(`${repo}.git`), 'b2', 2);
    expect(await catchUp(copyDeps(store, log), req)).toEqual({ status: 'busy' });
    expect(await redis.get(store.keys.pairLock(`${repo}.git`, 'b2'))).toBe('someone-else');
    expect(await redis.hget(store.keys.versions(`${repo}.git`), 'b2')).toBe('2');
    await redis.del(store.keys.pairLock(`${repo}.git`, 'b2'));
  });

  it('turns a divergent target into the source: creates, fast-forwards, forces, deletes, moves an annotated tag', async () => {
    const c = cluster();
    const repo = 'cu/direct-divergent';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);

    // The target's (older, divergent) state.
    const old = await git.init('old');
    const root = await git.commit(old, { 'a.txt': 'a\n' }, 'root');
    await git.run(['branch', 'ff'], { cwd: old });
    await git.run(['branch', 'same'], { cwd: old });
    await git.run(['branch', 'extra'], { cwd: old });
    await git.run(['tag', '-a', 'moving', '-m', 'old position'], { cwd: old });
    await git.run(['tag', 'stale-tag'], { cwd: old });
    await git.run(['checkout', '--quiet', '-b', 'forced'], { cwd: old });
    const oldForced = await git.commit(old, { 'f.txt': 'old forced\n' }, 'old forced');
    await mirror(git, old, c.backend('b3'), repo);

    // The source's state: built from the same root (fetch the old state first).
    const now = await git.init('new');
    await git.run(['fetch', '--quiet', '--update-head-ok', old, 'refs/*:refs/*'], { cwd: now });
    await git.run(['checkout', '--quiet', '-f', 'ff'], { cwd: now });
    const ffTip = await git.commit(now, { 'b.txt': 'b\n' }, 'fast-forward');
    await git.run(['checkout', '--quiet', '-f', 'main'], { cwd: now });
    await git.run(['branch', '-D', 'extra'], { cwd: now });
    await git.run(['tag', '-d', 'stale-tag'], { cwd: now });
    await git.run(['tag', '-f', '-a', 'moving', '-m', 'new position', ffTip], { cwd: now });
    await git.run(['checkout', '--quiet', '--orphan', 'rewrite'], { cwd: now });
    const newForced = await git.commit(now, { 'g.txt': 'new forced\n' }, 'new forced');
    await git.run(['branch', '-f', 'forced', newForced], { cwd: now });
    await git.run(['checkout', '--quiet', '-f', 'main'], { cwd: now });
    await git.run(['branch', '-D', 'rewrite'], { cwd: now });
    await git.run(['branch', 'created', ffTip], { cwd: now });
    await mirror(git, now, c.backend('b1'), repo);

    const target = await diskRefs(c.backend('b3'), repo);
    const source = await diskRefs(c.backend('b1'), repo);
    expect(target['refs/heads/forced']).toBe(oldForced);
    expect(source).toMatchObject({ 'refs/heads/ff': ffTip, 'refs/heads/forced': newForced, 'refs/heads/same': root, 'refs/heads/created': ffTip });
    expect(source['refs/heads/extra']).toBeUndefined();
    expect(source['refs/tags/moving']).not.toBe(target['refs/tags/moving']);
    const sum = checksumOf(source);
    await seed(repo, { b1: [7, sum], b3: [3, checksumOf(target)] });

    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: client('b1'), target: client('b3'), version: 7, checksum: sum });
    // ff, forced, moving, created; deletes of extra and stale-tag. `main` and `same` are equal already.
    expect(out).toMatchObject({ status: 'ok', commands: 6 });
    expect(await diskRefs(c.backend('b3'), repo)).toEqual(source);
    expect(await fullRefs(c.backend('b3'), repo)).toBe(await fullRefs(c.backend('b1'), repo));
    await gitDir(c.backend('b3'), repo, ['fsck', '--no-dangling', '--connectivity-only']);
    expect(await versions(repo)).toEqual({ b1: 7, b3: 7 });
    expect(await redis.hget(store.keys.checksums(`${repo}.git`), 'b3')).toBe(sum);
  });

  it('deletes the extra refs of a target that has everything else (no pack is sent)', async () => {
    const c = cluster();
    const repo = 'cu/direct-delete-only';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commits(work, 2, 'x');
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    await mirror(git, work, c.backend('b1'), repo);
    await git.run(['branch', 'extra-1'], { cwd: work });
    await git.run(['branch', 'extra-2', 'HEAD~1'], { cwd: work });
    await git.run(['tag', 'extra-tag'], { cwd: work });
    await mirror(git, work, c.backend('b2'), repo);
    const source = await diskRefs(c.backend('b1'), repo);
    expect(Object.keys(await diskRefs(c.backend('b2'), repo))).toHaveLength(Object.keys(source).length + 3);
    const sum = checksumOf(source);
    await seed(repo, { b1: [2, sum], b2: [1, checksumOf(await diskRefs(c.backend('b2'), repo))] });

    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: client('b1'), target: client('b2'), version: 2, checksum: sum });
    expect(out).toEqual({ status: 'ok', commands: 3, bytes: 0 });
    expect(await diskRefs(c.backend('b2'), repo)).toEqual(source);
    expect(await versions(repo)).toEqual({ b1: 2, b2: 2 });
  });

  it('refuses to record when the source does not match its recorded checksum, or that version is no longer recorded', async () => {
    const c = cluster();
    const repo = 'cu/direct-mismatch';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commit(work, { 'a.txt': 'a\n' }, 'a');
    await mirror(git, work, c.backend('b1'), repo);
    const recorded = checksumOf(await diskRefs(c.backend('b1'), repo));
    // The source moved on after its version was recorded (e.g. a push githa did not see).
    await git.commit(work, { 'b.txt': 'b\n' }, 'b');
    await mirror(git, work, c.backend('b1'), repo);
    const actual = checksumOf(await diskRefs(c.backend('b1'), repo));
    expect(actual).not.toBe(recorded);
    await seed(repo, { b1: [3, recorded], b2: [1, EMPTY_CHECKSUM] });

    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: client('b1'), target: client('b2'), version: 3, checksum: recorded });
    expect(out.status).toBe('not-recorded');
    expect(out.status === 'not-recorded' && out.reason).toMatch(/b1 no longer matches the checksum to copy/);
    expect(await versions(repo)).toEqual({ b1: 3, b2: 1 });
    expect(await redis.hget(store.keys.checksums(`${repo}.git`), 'b2')).toBe(EMPTY_CHECKSUM);
    expect(await diskRefs(c.backend('b2'), repo)).toEqual({});
    expect(await redis.exists(store.keys.log(`${repo}.git`))).toBe(0);

    // The copy matches the source, but Redis no longer records version 3 with
    // that checksum (another write moved it): the copy is made, never recorded.
    const out2 = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: client('b1'), target: client('b2'), version: 3, checksum: actual });
    expect(out2).toEqual({ status: 'not-recorded', reason: 'moved' });
    expect(await versions(repo)).toEqual({ b1: 3, b2: 1 });
    expect(await redis.hget(store.keys.checksums(`${repo}.git`), 'b2')).toBe(EMPTY_CHECKSUM);
    expect(await redis.exists(store.keys.log(`${repo}.git`))).toBe(0);
  });

  it('copies to a target that borrows objects from an alternate (its receive-pack advertises ".have" lines)', async () => {
    const c = cluster();
    const repo = 'cu/direct-alternates';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const base = await git.commit(work, { 'a.txt': 'shared history\n' }, 'base');

    // On b2, a pool repository holds `base`; the target borrows its objects (as forks on many Git hosts do).
    const target = c.backend('b2');
    const pool = join(target.root, 'pool', 'shared.git');
    await execFileP('git', ['init', '--quiet', '--bare', pool]);
    await git.run(['push', '--quiet', pool, `${base}:refs/heads/pooled`], { cwd: work });
    await execFileP('sh', ['-c', 'printf "%s\\n" "$1/objects" > "$2/objects/info/alternates"', 'sh', pool, target.repoPath(repo)]);
    const adv = await client('b2').receivePackAdvertisement(`${repo}.git`);
    expect(adv!.refs).toContainEqual({ oid: base, name: '.have' });

    const head = await git.commit(work, { 'b.txt': 'only on the source\n' }, 'next');
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    await mirror(git, work, c.backend('b1'), repo);
    const source = await diskRefs(c.backend('b1'), repo);
    expect(source['refs/heads/main']).toBe(head);
    const sum = checksumOf(source);
    await seed(repo, { b1: [2, sum], b2: [1, EMPTY_CHECKSUM] });

    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: client('b1'), target: client('b2'), version: 2, checksum: sum });
    expect(out).toMatchObject({ status: 'ok', commands: 2 });
    expect(await diskRefs(target, repo)).toEqual(source);
    await gitDir(target, repo, ['fsck', '--no-dangling']);
    expect(await versions(repo)).toEqual({ b1: 2, b2: 2 });
  });

  it('relays a pack of several MB intact', async () => {
    const c = cluster();
    const repo = 'cu/direct-large';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const hashes: string[] = [];
    for (let i = 0; i < 3; i++) hashes.push(await writeRandomFile(join(work, `blob-${i}.bin`), 2 * 1024 * 1024));
    await git.commit(work, {}, 'six MB of random data');
    await git.run(['tag', '-a', 'big', '-m', 'big'], { cwd: work });
    await mirror(git, work, c.backend('b1'), repo);
    const source = await diskRefs(c.backend('b1'), repo);
    const sum = checksumOf(source);
    await seed(repo, { b1: [2, sum], b3: [1, EMPTY_CHECKSUM] });

    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: client('b1'), target: client('b3'), version: 2, checksum: sum });
    expect(out.status).toBe('ok');
    expect(out.status === 'ok' && out.bytes).toBeGreaterThan(6 * 1024 * 1024);
    expect(await diskRefs(c.backend('b3'), repo)).toEqual(source);
    await gitDir(c.backend('b3'), repo, ['fsck', '--full', '--strict', '--no-dangling']);
    for (let i = 0; i < 3; i++) {
      const { stdout } = await execFileP('sh', ['-c', 'git --git-dir "$1" cat-file blob "main:blob-$2.bin" | sha256sum', 'sh', c.backend('b3').repoPath(repo), String(i)]);
      expect(stdout.split(' ')[0]).toBe(hashes[i]);
    }
    expect(await versions(repo)).toEqual({ b1: 2, b3: 2 });
  });
});
