/**
 * Reads and writes through githa's smart-HTTP front end with the real git
 * client (protocol v0 and v2), checked against Redis (versions, checksums,
 * push log, write marker, freeze state) and against the backends' bare
 * repositories on disk (design: "Write path", "Read path").
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient, packetTraceVersion } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { gitDir, diskRefs, checksumOf } from '../support/backend-refs.js';
import { waitFor } from '../support/wait.js';

const execFileP = promisify(execFile);
const ZERO = '0'.repeat(40);
const EMPTY_CHECKSUM = createHash('sha256').digest('hex');

const cluster = useCluster({ backends: 3 });
let githa: GithaProcess;
let redis: Redis;

beforeAll(async () => {
  githa = await startGitha(cluster(), { keep: true, singleCopy: true });
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  redis?.disconnect();
  await githa?.stop();
});

// ---- helpers ----------------------------------------------------------------

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

/** `redis-cli HGETALL key` as an object (redis-cli prints field and value on alternate lines). */
async function hgetall(k: string): Promise<Record<string, string>> {
  const out = await cluster().redis.cli('HGETALL', k);
  if (out === '') return {};
  const lines = out.split('\n');
  expect(lines.length % 2).toBe(0);
  const obj: Record<string, string> = {};
  for (let i = 0; i < lines.length; i += 2) obj[lines[i]!] = lines[i + 1]!;
  return obj;
}

async function versions(repo: string): Promise<Record<string, number>> {
  return Object.fromEntries(Object.entries(await hgetall(key(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
}

async function exists(k: string): Promise<boolean> {
  return (await cluster().redis.cli('EXISTS', k)).trim() === '1';
}

type LogEntry = { id: string } & Record<string, string>;

async function pushLog(repo: string): Promise<LogEntry[]> {
  const entries = await redis.xrange(key(repo, 'log'), '-', '+');
  return entries.map(([id, fields]) => {
    const e: LogEntry = { id };
    for (let i = 0; i < fields.length; i += 2) e[fields[i]!] = fields[i + 1]!;
    return e;
  });
}



async function hasObject(backend: DevBackend, repo: string, oid: string): Promise<boolean> {
  try {
    await gitDir(backend, repo, ['cat-file', '-e', oid]);
    return true;
  } catch {
    return false;
  }
}


/** The backend at the highest version, asserting there is exactly one. */
function soleLeader(v: Record<string, number>): string {
  const max = Math.max(...Object.values(v));
  const leaders = Object.keys(v).filter((b) => v[b] === max);
  expect(leaders).toHaveLength(1);
  return leaders[0]!;
}

/**
 * After a push of `refLines` ("old new ref") through githa: `leader` moved from
 * `before[leader]` to max + 1, everybody else is where it was, the checksum is
 * that of the leader's refs on disk, the log's newest entry describes the push,
 * and the write marker is gone.
 */
async function expectCommitted(
  repo: string,
  before: Record<string, number>,
  refLines: string[],
): Promise<{ leader: string; version: number; after: Record<string, number> }> {
  const after = await versions(repo);
  const max = Math.max(...Object.values(before));
  const leader = soleLeader(after);
  expect(after[leader]).toBe(max + 1);
  for (const b of Object.keys(before)) if (b !== leader) expect(after[b], `${b} must not move`).toBe(before[b]);
  expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());

  const c = cluster();
  const checksums = await hgetall(key(repo, 'checksums'));
  expect(checksums[leader]).toBe(checksumOf(await diskRefs(c.backend(leader), repo)));

  const log = await pushLog(repo);
  const last = log[log.length - 1]!;
  expect(last).toMatchObject({ event: 'push', version: String(max + 1), backend: leader, user: 'anonymous', transport: 'http' });
  expect(Number(last.bytes)).toBeGreaterThan(0);
  expect(last.refs!.split('\n').sort()).toEqual([...refLines].sort());

  expect(await exists(key(repo, 'writing'))).toBe(false);
  return { leader, version: max + 1, after };
}

// ---- tests --------------------------------------------------------------------

describe('reads and writes through githa (smart HTTP)', () => {
  for (const version of [0, 2] as const) {
    it(`protocol v${version}: clone, push several refs and tags, fetch, pull, delete a branch, force push`, async () => {
      const c = cluster();
      const repo = `rw/proto-v${version}`;
      await c.createRepository(repo);
      const url = githa.url(repo);
      const git = GitClient.forCluster(c, { protocolVersion: version });

      // The protocol really negotiated through githa (first access also adopts the repository).
      expect(await git.negotiatedVersion(url)).toBe(version);
      const adopted = await versions(repo);
      expect(adopted).toEqual({ b1: 1, b2: 1, b3: 1 });

      // One push: two branches, a lightweight and an annotated tag.
      const work = await git.init();
      const first = await git.commit(work, { 'README.md': 'hello\n' }, 'first');
      const second = await git.commit(work, { 'src/a.txt': 'a\n' }, 'second');
      await git.run(['branch', 'topic', first], { cwd: work });
      await git.run(['tag', 'light'], { cwd: work });
      await git.run(['tag', '-a', 'v1.0', '-m', 'release 1.0', first], { cwd: work });
      const annotated = await git.revParse(work, 'refs/tags/v1.0');
      expect(annotated).not.toBe(first); // a tag object
      const push1 = await git.push(work, url, ['main', 'topic', 'refs/tags/light', 'refs/tags/v1.0']);
      expect(push1.stdout).toMatch(/^\*\trefs\/heads\/main:refs\/heads\/main\t\[new branch\]$/m);
      expect(push1.stdout).toMatch(/^\*\trefs\/tags\/v1\.0:refs\/tags\/v1\.0\t\[new tag\]$/m);
      const w1 = await expectCommitted(repo, adopted, [
        `${ZERO} ${second} refs/heads/main`,
        `${ZERO} ${first} refs/heads/topic`,
        `${ZERO} ${second} refs/tags/light`,
        `${ZERO} ${annotated} refs/tags/v1.0`,
      ]);
      const leader = c.backend(w1.leader);
      expect(await diskRefs(leader, repo)).toEqual({
        'refs/heads/main': second,
        'refs/heads/topic': first,
        'refs/tags/light': second,
        'refs/tags/v1.0': annotated,
      });
      for (const other of c.backends.filter((b) => b.id !== leader.id)) expect(await diskRefs(other, repo)).toEqual({});

      // Clone: the negotiated protocol is the one asked for, and every ref arrives.
      const cloneDir = (await git.workdir('clone')) + '/repo';
      const cloned = await git.run(['clone', '--', url, cloneDir], { tracePackets: true });
      expect(packetTraceVersion(cloned.stderr)).toBe(version);
      expect(await git.forEachRef(cloneDir)).toEqual({
        'refs/heads/main': second,
        'refs/remotes/origin/HEAD': second,
        'refs/remotes/origin/main': second,
        'refs/remotes/origin/topic': first,
        'refs/tags/light': second,
        'refs/tags/v1.0': annotated,
      });
      expect((await git.run(['cat-file', '-t', 'v1.0'], { cwd: cloneDir })).stdout.trim()).toBe('tag');

      // Push from the clone (fast-forward), then fetch and pull it elsewhere.
      const third = await git.commit(cloneDir, { 'src/b.txt': 'b\n' }, 'third');
      await git.push(cloneDir, 'origin', ['main']);
      const w2 = await expectCommitted(repo, w1.after, [`${second} ${third} refs/heads/main`]);
      expect(w2.leader).toBe(leader.id);

      const fetched = await git.run(['fetch', '--', url, 'refs/heads/main:refs/remotes/fetched/main'], { cwd: work, tracePackets: true });
      expect(packetTraceVersion(fetched.stderr)).toBe(version);
      expect(await git.revParse(work, 'refs/remotes/fetched/main')).toBe(third);
      await git.run(['remote', 'add', 'origin', url], { cwd: work });
      await git.run(['pull', '--ff-only', 'origin', 'main'], { cwd: work });
      expect(await git.revParse(work, 'HEAD')).toBe(third);
      expect((await git.run(['cat-file', '-p', 'HEAD:src/b.txt'], { cwd: work })).stdout).toBe('b\n');

      // Delete a branch and a tag in one push.
      await git.push(work, url, [':refs/heads/topic', ':refs/tags/light']);
      const w3 = await expectCommitted(repo, w2.after, [`${first} ${ZERO} refs/heads/topic`, `${second} ${ZERO} refs/tags/light`]);
      expect(await diskRefs(leader, repo)).toEqual({ 'refs/heads/main': third, 'refs/tags/v1.0': annotated });

      // Force push: main rewritten to a commit that does not contain `third`.
      await git.run(['reset', '--hard', second], { cwd: work });
      const rewritten = await git.commit(work, { 'src/c.txt': 'c\n' }, 'rewritten');
      const refused = await git.push(work, url, ['main'], [], { allowFailure: true });
      expect(refused.code).not.toBe(0);
      expect(await versions(repo)).toEqual(w3.after);
      await git.push(work, url, ['main'], ['--force']);
      const w4 = await expectCommitted(repo, w3.after, [`${third} ${rewritten} refs/heads/main`]);
      expect(w4.after[leader.id]).toBe(5);
      expect(await diskRefs(leader, repo)).toEqual({ 'refs/heads/main': rewritten, 'refs/tags/v1.0': annotated });
      // The others never received anything: they are still the empty version 1.
      for (const other of c.backends.filter((b) => b.id !== leader.id)) {
        expect(w4.after[other.id]).toBe(1);
        expect(await diskRefs(other, repo)).toEqual({});
      }

      // A fresh clone sees exactly the leader's state.
      const again = await git.clone(url);
      expect(await git.forEachRef(again)).toEqual({
        'refs/heads/main': rewritten,
        'refs/remotes/origin/HEAD': rewritten,
        'refs/remotes/origin/main': rewritten,
        'refs/tags/v1.0': annotated,
      });
      expect((await pushLog(repo)).map((e) => e.event)).toEqual(['adopt', 'push', 'push', 'push', 'push']);
    });
  }

  it('a read right after a push sees it, although the other backends are still stale', async () => {
    const c = cluster();
    const repo = 'rw/no-stale-read';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const base = await git.commit(work, { 'a.txt': 'a\n' }, 'base');
    await git.push(work, githa.url(repo), ['main']);
    const v1 = await versions(repo);
    const leader1 = soleLeader(v1);

    // A second githa (another stateless proxy) reads what the first one wrote.
    const other = await startGitha(c, { singleCopy: true });
    const head = await git.commit(work, { 'b.txt': 'b\n' }, 'head');
    await git.push(work, githa.url(repo), ['main']);
    const { leader, after } = await expectCommitted(repo, v1, [`${base} ${head} refs/heads/main`]);
    expect(leader).toBe(leader1);

    // On disk: only the leader has the commit; the others lack the object altogether.
    expect(await hasObject(c.backend(leader), repo, head)).toBe(true);
    for (const b of c.backends.filter((x) => x.id !== leader)) {
      expect(after[b.id]).toBe(1);
      expect(await hasObject(b, repo, head)).toBe(false);
      expect(await diskRefs(b, repo)).toEqual({});
    }

    const readers = [githa, other];
    const skip = readers.map((r) => r.logLines().length);
    for (let i = 0; i < 10; i++) {
      const through = readers[i % 2]!;
      const client = git.withProtocol(i % 4 < 2 ? 2 : 0);
      expect(await client.lsRemote(through.url(repo), ['refs/heads/main']), `ls-remote #${i}`).toEqual({ 'refs/heads/main': head });
    }
    for (let i = 0; i < 4; i++) {
      const through = readers[i % 2]!;
      const clone = await git.withProtocol(i % 2 === 0 ? 2 : 0).clone(through.url(repo));
      expect(await git.revParse(clone, 'HEAD'), `clone #${i}`).toBe(head);
    }
    // Reads never moved any version, and the others are still stale.
    expect(await versions(repo)).toEqual(after);
    for (const b of c.backends.filter((x) => x.id !== leader)) expect(await hasObject(b, repo, head)).toBe(false);
    // And every read was served by the leader.
    const served = readers.flatMap((r, i) => r.logLines().slice(skip[i])).filter((l) => l.msg === 'request' && l.repo === `${repo}.git` && l.backend);
    expect(served.length).toBeGreaterThanOrEqual(14);
    expect(new Set(served.map((l) => l.backend))).toEqual(new Set([leader]));
  });

  it('a push that changes nothing bumps no version', async () => {
    const c = cluster();
    const repo = 'rw/no-change';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const sha = await git.commit(work, { 'a.txt': 'a\n' }, 'a');
    await git.push(work, githa.url(repo), ['main']);
    const before = await versions(repo);
    const logBefore = await pushLog(repo);
    const checksumsBefore = await hgetall(key(repo, 'checksums'));
    const leader = soleLeader(before);

    // Everything up to date: git sends no command.
    const same = await git.run(['push', '--', githa.url(repo), 'main'], { cwd: work });
    expect(same.stderr).toContain('Everything up-to-date');
    expect(await versions(repo)).toEqual(before);

    // Commands reach the backend, which updates nothing: its pre-receive hook declines them all.
    for (const b of c.backends) {
      await execFileP('sh', ['-c', 'mkdir -p "$1/hooks" && printf "#!/bin/sh\\necho declined by test >&2\\nexit 1\\n" > "$1/hooks/pre-receive" && chmod +x "$1/hooks/pre-receive"', 'sh', b.repoPath(repo)]);
    }
    const next = await git.commit(work, { 'b.txt': 'b\n' }, 'b');
    const logMark = githa.logLines().length;
    const declined = await git.push(work, githa.url(repo), ['main', 'HEAD:refs/heads/other'], [], { allowFailure: true });
    expect(declined.code).not.toBe(0);
    expect(declined.stdout).toMatch(/^!\trefs\/heads\/main:refs\/heads\/main\t\[remote rejected\] \(pre-receive hook declined\)$/m);
    // githa took the write path (lock, marker) and saw that no ref changed.
    // The request's log line is written as the response ends: allow it a moment to arrive.
    const requestLines = () => githa.logLines().slice(logMark).filter((l) => l.msg === 'request' && l.service === 'git-receive-pack' && l.kind === 'rpc');
    const posts = await waitFor('the push request log line', () => (requestLines().length > 0 ? requestLines() : undefined));
    expect(posts.map((l) => l.outcome)).toEqual(['unchanged']);
    expect(await versions(repo)).toEqual(before);
    expect(await hgetall(key(repo, 'checksums'))).toEqual(checksumsBefore);
    expect(await pushLog(repo)).toEqual(logBefore);
    expect(await exists(key(repo, 'writing'))).toBe(false);
    expect(await diskRefs(c.backend(leader), repo)).toEqual({ 'refs/heads/main': sha });
    expect(next).not.toBe(sha);

    // And the repository still takes writes afterwards.
    for (const b of c.backends) await execFileP('rm', ['-f', `${b.repoPath(repo)}/hooks/pre-receive`]);
    await git.push(work, githa.url(repo), ['main']);
    await expectCommitted(repo, before, [`${sha} ${next} refs/heads/main`]);
  });

  it('adopts a repository it has never seen when all copies agree (empty or not)', async () => {
    const c = cluster();
    const git = GitClient.forCluster(c);

    const empty = 'rw/adopt-empty';
    await c.createRepository(empty);
    expect(await exists(key(empty, 'versions'))).toBe(false);
    expect(await git.lsRemote(githa.url(empty))).toEqual({});
    expect(await versions(empty)).toEqual({ b1: 1, b2: 1, b3: 1 });
    expect(await hgetall(key(empty, 'checksums'))).toEqual({ b1: EMPTY_CHECKSUM, b2: EMPTY_CHECKSUM, b3: EMPTY_CHECKSUM });
    expect((await pushLog(empty)).map((e) => [e.event, e.version])).toEqual([['adopt', '1']]);
    expect(await exists(key(empty, 'frozen'))).toBe(false);
    expect(await redis.zscore('githa:repos', `${empty}.git`)).not.toBeNull();

    // Same commits pushed straight to every backend before githa ever saw the repository.
    const same = 'rw/adopt-same';
    await c.createRepository(same);
    const work = await git.init();
    const sha = await git.commit(work, { 'a.txt': 'a\n' }, 'a');
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    for (const b of c.backends) await git.push(work, b.url('http', same), ['main', 'refs/tags/v1']);
    const refs = await diskRefs(c.backend('b1'), same);
    expect(refs['refs/heads/main']).toBe(sha);
    const clone = await git.clone(githa.url(same));
    expect(await git.revParse(clone, 'HEAD')).toBe(sha);
    expect(await versions(same)).toEqual({ b1: 1, b2: 1, b3: 1 });
    const sum = checksumOf(refs);
    expect(await hgetall(key(same, 'checksums'))).toEqual({ b1: sum, b2: sum, b3: sum });
  });

  it('freezes a repository whose copies differ as ambiguous, and refuses reads and writes naming the reason', async () => {
    const c = cluster();
    const repo = 'rw/ambiguous';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const sha = await git.commit(work, { 'a.txt': 'only on b2\n' }, 'a');
    await git.push(work, c.backend('b2').url('http', repo), ['main']);

    for (const version of [2, 0] as const) {
      const dir = (await git.workdir('clone')) + '/repo';
      const res = await git.withProtocol(version).run(['clone', '--', githa.url(repo), dir], { allowFailure: true });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(/remote: githa: .*ambiguous/);
      expect(res.stderr).toContain('503');
    }
    const frozen = await hgetall(key(repo, 'frozen'));
    expect(frozen.reason).toBe('ambiguous');
    expect(frozen.detail).toContain('b2=');
    expect(await exists(key(repo, 'versions'))).toBe(false);

    // A push is refused too, and nothing changes anywhere.
    const next = await git.commit(work, { 'b.txt': 'b\n' }, 'b');
    const pushed = await git.push(work, githa.url(repo), ['main'], [], { allowFailure: true });
    expect(pushed.code).not.toBe(0);
    expect(pushed.stdout + pushed.stderr).toContain('ambiguous');
    expect(await exists(key(repo, 'versions'))).toBe(false);
    expect(await diskRefs(c.backend('b2'), repo)).toEqual({ 'refs/heads/main': sha });
    expect(await diskRefs(c.backend('b1'), repo)).toEqual({});
    expect(await hasObject(c.backend('b2'), repo, next)).toBe(false);
  });

  it('answers 404 "not found" for a repository that exists on no backend', async () => {
    const git = GitClient.forCluster(cluster());
    const repo = 'rw/nowhere';
    const res = await git.run(['clone', '--', githa.url(repo), (await git.workdir('clone')) + '/x'], { allowFailure: true });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('not found');

    const answer = await fetch(`${githa.httpUrl}/${repo}.git/info/refs?service=git-upload-pack`);
    expect(answer.status).toBe(404);
    expect(await answer.text()).toMatch(/not found/);
    expect(await exists(key(repo, 'versions'))).toBe(false);
    expect(await exists(key(repo, 'frozen'))).toBe(false);
  });
});
