/**
 * Wait progress on an HTTP push in passthrough mode (docs/architecture.md
 * "What the Git user sees while githa waits"; docs/security.md
 * "Authentication"), behind a backend that asks for credentials only on the
 * push itself — git-http-backend(1) "EXAMPLES", Apache's
 * `<LocationMatch "^/git/.*\/git-receive-pack$"> Require valid-user`, here
 * lighttpd's mod_auth (test/support/auth-backend.ts).
 *
 * git's first POST carries no credentials (the advertisement needed none),
 * and git answers the backend's 401 with credentials only when that 401 is
 * the HTTP status. githa's first progress line sends the 200, after which a
 * 401 could only be an in-band refusal: so a push without credentials waiting
 * for the write lock shows no progress, gets the 401, and lands on git's
 * retry; a push that carries credentials shows its wait as any other.
 *
 * The write lock is held by a key another githa would hold, and released once
 * git shows a credentialed push's wait (test/integration/wait-progress.test.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAuthBackend } from '../support/auth-backend.js';
import { useCluster } from '../support/cluster.js';
import { gitRunning } from '../support/git-running.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

const cluster = useCluster({ backends: 1 });
const ALICE = { username: 'alice', password: 'alice-pw' };
const LOCK_WAIT = (repo: string): string => `remote: githa: waiting for another push to ${repo}.git (`;
const LOCK_WAIT_DONE = (repo: string): RegExp => new RegExp(`githa: waiting for another push to ${repo}\\.git \\(\\d+ s\\), done\\.`);

/** git's stderr without its curl trace lines (GIT_TRACE_CURL), for a failure's message. */
const untraced = (stderr: string): string => stderr.split('\n').filter((l) => !/ http\.c:\d+ /.test(l)).join('\n');

/** A backend that asks for alice's credentials on the URLs matching `protect`, and githa in passthrough mode before it. */
async function setUp(repo: string, protect: string): Promise<{ url: string; git: GitClient; helper: string[]; holdLock: () => Promise<void>; freeLock: () => Promise<void>; logLines: () => Array<Record<string, unknown>> }> {
  const c = cluster();
  await c.createRepository(repo);
  const front = await startAuthBackend(c, c.backends[0]!, { protect, users: { [ALICE.username]: ALICE.password }, realm: 'pushers' });
  // Passthrough (the default auth.http.mode) and no service credentials: the client's Authorization decides.
  const githa = await startGitha(c, {
    endpoints: ['http'],
    singleCopy: true,
    backends: { b1: { http: front.httpUrl } },
    config: { verify: { intervalMs: 0 }, locks: { waitMs: 60_000 }, health: { intervalMs: 60_000 } },
  });
  // alice's password in a credential helper: git asks it once a request was challenged.
  const store = join(c.dir, `credentials-progress-${Math.random().toString(16).slice(2)}`);
  writeFileSync(store, `http://${ALICE.username}:${ALICE.password}@127.0.0.1:${new URL(githa.httpUrl).port}\n`);
  const lockKey = `githa:lock:{${repo}.git}`;
  return {
    url: githa.url(repo),
    git: GitClient.forCluster(c),
    helper: ['-c', `credential.helper=store --file=${store}`],
    holdLock: async () => {
      expect(await c.redis.cli('SET', lockKey, 'other-githa', 'PX', '120000', 'NX')).toBe('OK');
    },
    freeLock: async () => {
      await c.redis.cli('DEL', lockKey);
    },
    logLines: () => githa.logLines(),
  };
}

describe('HTTP push progress in passthrough mode', () => {
  it('behind a backend that authenticates only the push: a push without credentials waiting for the lock shows no progress, so git answers the 401 and it lands; one sending credentials upfront shows its wait', async () => {
    const repo = 'guarded/progress';
    const { url, git, helper, holdLock, freeLock, logLines } = await setUp(repo, '/git-receive-pack$');
    // Push B's credentials: sent with every request, its first POST included (as CI systems pass a token).
    const upfront = ['-c', `http.extraHeader=Authorization: Basic ${Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64')}`];

    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.run([...helper, 'push', '--porcelain', '--', url, 'main'], { cwd: work });
    await git.run(['checkout', '-q', '-b', 'a'], { cwd: work });
    const a = await git.commit(work, { 'a.txt': 'a\n' }, 'a');
    await git.run(['checkout', '-q', '-b', 'b', first], { cwd: work });
    const b = await git.commit(work, { 'b.txt': 'b\n' }, 'b');

    await holdLock();
    const listsRead = (): number => logLines().filter((l) => l.msg === 'push command list read' && String(l.repo).startsWith(repo)).length;
    const before = listsRead();
    // A: no credentials on its first POST (the advertisement needed none). The curl trace shows the statuses git saw.
    const pushA = gitRunning(git, [...helper, 'push', '--porcelain', '--progress', '--', url, 'a'], work, { GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' });
    await waitFor(
      'githa to read push A',
      () => {
        pushA.stderr(); // stops waiting if git ended early
        return listsRead() === before + 1;
      },
      30_000,
      { detail: () => untraced(pushA.text()) },
    );
    // B, started once githa read A (A's few Redis reads before its lock wait are queued before B's advertisement is
    // even served): when git shows B's wait, A has waited longer than the first report's delay too.
    const pushB = gitRunning(git, [...upfront, 'push', '--porcelain', '--progress', '--', url, 'b'], work);
    await waitFor('git to show push B waiting for the lock', () => pushB.stderr().includes(LOCK_WAIT(repo)), 30_000, { detail: pushB.stderr });
    await freeLock();

    expect(await pushB.exit, pushB.text()).toBe(0);
    expect(pushB.text()).toMatch(LOCK_WAIT_DONE(repo));
    // A got the backend's 401 as the HTTP status (not a 200 and a refusal in-band), answered it, and landed.
    expect(await pushA.exit, untraced(pushA.text())).toBe(0);
    expect(pushA.text()).toMatch(/<= Recv header: HTTP\/1\.1 401/);
    expect(pushA.text()).not.toContain('githa: backend b1 answered HTTP 401');

    const remote = (await git.run(['ls-remote', url])).stdout;
    expect(remote).toContain(`${a}\trefs/heads/a\n`);
    expect(remote).toContain(`${b}\trefs/heads/b\n`);
    expect(remote).toContain(`${first}\trefs/heads/main\n`);
  }, 120_000);

  it('behind a backend that authenticates the whole repository: git sends its credentials with the POST, and sees the wait', async () => {
    const repo = 'private/progress';
    const { url, git, helper, holdLock, freeLock } = await setUp(repo, '^/git/private/');
    const work = await git.init();
    await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.run([...helper, 'push', '--porcelain', '--', url, 'main'], { cwd: work });
    const next = await git.commit(work, { 'a.txt': 'two\n' }, 'two');

    await holdLock();
    // The advertisement is challenged, git answers from its helper, and sends the same credentials with its POST.
    const push = gitRunning(git, [...helper, 'push', '--porcelain', '--progress', '--', url, 'main'], work);
    await waitFor('git to show the lock wait', () => push.stderr().includes(LOCK_WAIT(repo)), 30_000, { detail: push.stderr });
    await freeLock();
    expect(await push.exit, push.text()).toBe(0);
    expect(push.text()).toMatch(LOCK_WAIT_DONE(repo));
    expect((await git.run([...helper, 'ls-remote', url, 'refs/heads/main'])).stdout).toBe(`${next}\trefs/heads/main\n`);
  }, 120_000);
});
