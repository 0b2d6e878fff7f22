/**
 * Issue 21 item 7 (docs/architecture.md "What the Git user sees while githa
 * waits"): while a push waits for the repository's write lock or for its
 * quorum copies, real git shows it ("remote: githa: …" on side-band 2, or
 * SSH's stderr before the advertisement), and the push then lands with the
 * same refs. A client that did not ask for side-band gets no progress line.
 * The waits are held deterministically: the write lock by a key another githa
 * would hold, the quorum copy by b2's copy lock; each is released once git
 * has shown the wait.
 */
import { request } from 'node:http';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { gitRunning } from '../support/git-running.js';
import { GitClient, writeRandomFile } from '../support/git.js';
import { join } from 'node:path';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

/**
 * Basic credentials sent with every HTTP request (the backends here do not check them). githa's default HTTP auth is
 * passthrough, where a push that carries no credentials shows no wait: its backend may still answer 401
 * (test/integration/http-passthrough-progress.test.ts).
 */
const CREDENTIALS = ['-c', `http.extraHeader=Authorization: Basic ${Buffer.from('pusher:secret').toString('base64')}`];

function pkt(payload: string): Buffer {
  return Buffer.from(`${(payload.length + 4).toString(16).padStart(4, '0')}${payload}`, 'latin1');
}

/** An empty pack (gitformat-pack): the header for zero objects and its SHA-1. */
function emptyPack(): Buffer {
  const header = Buffer.from('PACK\0\0\0\x02\0\0\0\0', 'latin1');
  return Buffer.concat([header, createHash('sha1').update(header).digest()]);
}

describe('what the Git user sees while githa waits', () => {
  const cluster = useCluster({ backends: 2 });

  /** githa with writeQuorum 2 and only b1 writable: every push goes to b1 and is copied to b2 before it is acknowledged. */
  async function start(locks: { waitMs: number } = { waitMs: 60_000 }): Promise<GithaProcess> {
    return startGitha(cluster(), {
      ssh: true,
      git: { allowPush: true },
      backends: { b2: { writable: false } },
      config: {
        replication: { writeQuorum: 2 },
        verify: { intervalMs: 0 },
        locks,
        // No backend marked down by a slow probe on a busy machine while a test holds a wait.
        health: { intervalMs: 60_000 },
      },
    });
  }

  async function seeded(githa: GithaProcess, repo: string): Promise<{ git: GitClient; work: string; first: string }> {
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster(), { knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.push(work, githa.url(repo), ['main']);
    return { git, work, first };
  }

  const holdLock = async (repo: string): Promise<void> => {
    expect(await cluster().redis.cli('SET', `githa:lock:{${repo}.git}`, 'other-githa', 'PX', '120000', 'NX')).toBe('OK');
  };
  const freeLock = async (repo: string): Promise<void> => {
    await cluster().redis.cli('DEL', `githa:lock:{${repo}.git}`);
  };
  const remoteMain = async (git: GitClient, githa: GithaProcess, repo: string): Promise<string> =>
    (await git.run(['ls-remote', githa.url(repo), 'refs/heads/main'])).stdout.split(/\s/)[0] ?? '';

  it.each([
    ['http', (g: GithaProcess, r: string) => g.url(r), 'remote: githa: waiting for another push to '],
    // Before the advertisement no protocol byte can carry it: SSH's stderr, which git's ssh shows as it is.
    ['ssh', (g: GithaProcess, r: string) => g.sshUrl(r), 'githa: waiting for another push to '],
  ] as const)('a push over %s that waits for the write lock says so, then lands', async (transport, url, shown) => {
    const githa = await start();
    const repo = `wait/lock-${transport}`;
    const { git, work } = await seeded(githa, repo);
    const next = await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    await holdLock(repo);
    const push = gitRunning(git, [...CREDENTIALS, 'push', '--porcelain', '--progress', '--', url(githa, repo), 'main'], work);
    await waitFor('git to show the lock wait', () => push.stderr().includes(`${shown}${repo}.git (`), 30_000, { detail: push.stderr });
    await freeLock(repo);
    expect(await push.exit).toBe(0);
    expect(push.text()).toMatch(new RegExp(`githa: waiting for another push to ${repo}\\.git \\(\\d+ s\\), done\\.`));
    expect(await remoteMain(git, githa, repo)).toBe(next);
  }, 90_000);

  it('a large HTTP push (a chunked body still uploading) that waits for the lock gets its 200 and progress early, then lands', async () => {
    const githa = await start();
    const repo = 'wait/large';
    const { git, work } = await seeded(githa, repo);
    // Over http.postBuffer (1 MiB): git probes first, then streams the pack chunked while githa holds it back for the lock.
    await writeRandomFile(join(work, 'big.bin'), 8 * 1024 * 1024);
    await git.run(['add', 'big.bin'], { cwd: work });
    await git.run(['commit', '-q', '-m', 'big'], { cwd: work });
    const next = await git.revParse(work, 'HEAD');
    await holdLock(repo);
    const push = gitRunning(git, [...CREDENTIALS, 'push', '--porcelain', '--progress', '--', githa.url(repo), 'main'], work);
    await waitFor('git to show the lock wait', () => push.stderr().includes(`remote: githa: waiting for another push to ${repo}.git (`), 30_000, { detail: push.stderr });
    await freeLock(repo);
    expect(await push.exit, push.text()).toBe(0);
    expect(await remoteMain(git, githa, repo)).toBe(next);
  }, 120_000);

  it.each([
    ['http', (g: GithaProcess, r: string) => g.url(r)],
    ['ssh', (g: GithaProcess, r: string) => g.sshUrl(r)],
    ['git', (g: GithaProcess, r: string) => g.gitUrl(r)],
  ] as const)('a push over %s that waits for its quorum copy shows it on side-band 2, then lands on both copies', async (transport, url) => {
    const githa = await start();
    const repo = `wait/copies-${transport}`;
    const { git, work } = await seeded(githa, repo);
    const next = await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    // Another githa copying into b2 right now: the quorum copy waits for its copy lock.
    const pairLock = `githa:sync:{${repo}.git}:b2`;
    expect(await cluster().redis.cli('SET', pairLock, 'other-githa', 'PX', '120000', 'NX')).toBe('OK');
    const push = gitRunning(git, [...CREDENTIALS, 'push', '--porcelain', '--progress', '--', url(githa, repo), 'main'], work);
    await waitFor('git to show the quorum copy', () => push.stderr().includes(`remote: githa: copying ${repo}.git to 1 backend (`), 30_000, { detail: push.stderr });
    await cluster().redis.cli('DEL', pairLock);
    expect(await push.exit).toBe(0);
    expect(push.text()).toMatch(new RegExp(`remote: githa: copying ${repo}\\.git to 1 backend \\(\\d+ s\\), done\\.`));
    expect(await remoteMain(git, githa, repo)).toBe(next);
    // Acknowledged on its write quorum: b2 records the version b1 does.
    const versions = await cluster().redis.cli('HGETALL', `githa:repo:{${repo}.git}:versions`);
    const [, v1, , v2] = versions.trim().split(/\s+/);
    expect(v2).toBe(v1);
  }, 90_000);

  it('answers a lock wait that runs out after its progress lines in-band: the 200 is sent, the refusal is a report', async () => {
    const githa = await start({ waitMs: 2_500 });
    const repo = 'wait/busy';
    const { git, work, first } = await seeded(githa, repo);
    await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    await holdLock(repo);
    const push = gitRunning(git, [...CREDENTIALS, 'push', '--porcelain', '--progress', '--', githa.url(repo), 'main'], work);
    expect(await push.exit).toBe(1);
    const stderr = push.text();
    expect(stderr).toContain(`remote: githa: waiting for another push to ${repo}.git (`);
    expect(stderr).toContain(`remote: githa: repository ${repo}.git is busy`);
    // No HTTP error after the status line: git read a report rejecting the ref with githa's reason.
    expect(stderr).not.toMatch(/RPC failed|HTTP \d{3}|unexpected disconnect/);
    await freeLock(repo);
    expect(await remoteMain(git, githa, repo)).toBe(first);
  }, 90_000);

  it('tells an SSH read that waits for a push to be recorded on stderr; an HTTP read waits silently', async () => {
    const githa = await start();
    const repo = 'wait/read';
    const { git, work } = await seeded(githa, repo);
    const next = await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    const pairLock = `githa:sync:{${repo}.git}:b2`;
    expect(await cluster().redis.cli('SET', pairLock, 'other-githa', 'PX', '120000', 'NX')).toBe('OK');
    const push = gitRunning(git, [...CREDENTIALS, 'push', '--porcelain', '--progress', '--', githa.url(repo), 'main'], work);
    await waitFor('the push to wait for its quorum copy', () => push.stderr().includes(`remote: githa: copying ${repo}.git to 1 backend (`), 30_000, { detail: push.stderr });
    // Both copies are named in the push's marker: no leader may serve a read until the push is recorded.
    const sshRead = gitRunning(git, ['ls-remote', githa.sshUrl(repo), 'refs/heads/main'], work);
    const httpRead = gitRunning(git, ['ls-remote', githa.url(repo), 'refs/heads/main'], work);
    await waitFor('the SSH read to show its wait', () => sshRead.stderr().includes(`githa: waiting for a push to ${repo}.git to be recorded (`), 30_000, { detail: sshRead.stderr });
    await cluster().redis.cli('DEL', pairLock);
    expect(await push.exit).toBe(0);
    expect(await sshRead.exit).toBe(0);
    expect(await httpRead.exit).toBe(0);
    expect(sshRead.text()).toMatch(/to be recorded \(\d+ s\), done\./);
    expect(httpRead.text()).not.toContain('githa:');
    expect(await remoteMain(git, githa, repo)).toBe(next);
  }, 90_000);

  it('sends no progress line to a client that did not ask for side-band, or asked for quiet, however long it waits', async () => {
    const githa = await start();
    const repo = 'wait/plain';
    const { git, work, first } = await seeded(githa, repo);
    await git.commit(work, { 'a.txt': 'two\n' }, 'two');
    await holdLock(repo);
    // Raw receive-pack requests: a new ref at an existing commit, an empty pack.
    const rawPush = (ref: string, caps: string): Promise<Buffer> => {
      const body = Buffer.concat([pkt(`${'0'.repeat(40)} ${first} ${ref}\0${caps}\n`), Buffer.from('0000'), emptyPack()]);
      const url = new URL(`${githa.url(repo)}/git-receive-pack`);
      return new Promise<Buffer>((resolve, reject) => {
        const req = request(url, { method: 'POST', headers: { 'content-type': 'application/x-git-receive-pack-request', 'content-length': body.length } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve(Buffer.concat(parts)));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    };
    const listsRead = (): number => githa.logLines().filter((l) => l.msg === 'push command list read' && String(l.repo).startsWith(repo)).length;
    const before = listsRead();
    const plain = rawPush('refs/heads/plain', 'report-status');
    const quiet = rawPush('refs/heads/quiet', 'report-status side-band-64k quiet');
    // Awaited below; a test that fails first must not leave them unhandled when githa stops.
    for (const p of [plain, quiet]) p.catch(() => {});
    await waitFor('githa to read both raw pushes', () => listsRead() === before + 2);
    // A side-band push queued behind them shows its wait: by then both have waited longer than the first report's delay.
    const push = gitRunning(git, [...CREDENTIALS, 'push', '--porcelain', '--progress', '--', githa.url(repo), 'main'], work);
    await waitFor('the side-band push to show its wait', () => push.stderr().includes(`remote: githa: waiting for another push to ${repo}.git (`), 30_000, { detail: push.stderr });
    await freeLock(repo);
    expect((await plain).toString('latin1')).toBe(Buffer.concat([pkt('unpack ok\n'), pkt('ok refs/heads/plain\n'), Buffer.from('0000')]).toString('latin1'));
    const quietAnswer = (await quiet).toString('latin1');
    expect(quietAnswer).toContain('ok refs/heads/quiet\n');
    expect(quietAnswer).not.toContain('githa:');
    expect(await push.exit).toBe(0);
  }, 90_000);
});
