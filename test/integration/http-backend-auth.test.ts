/**
 * A backend behind its own Basic authentication, in passthrough mode (the
 * default `auth.http.mode`; docs/security.md): lighttpd's mod_auth in front of
 * the stock `git http-backend` (test/support/auth-backend.ts), githa using
 * service credentials (backends[].httpAuth) for its own requests only.
 *
 * - The backend's 401 reaches the client whole: its challenge, and a body as
 *   long as its `content-length` says (a copied length next to a shorter body
 *   kept git waiting ~65 s for bytes that never came).
 * - A push the backend refuses with 401 changes nothing: no version, no push
 *   log entry, no marker left; git sees the 401 and its challenge, and the
 *   same push with credentials is recorded.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAuthBackend } from '../support/auth-backend.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { rawGet } from '../support/raw-http.js';

const cluster = useCluster({ backends: 1 });
const SERVICE = { username: 'githa-svc', password: 'svc-secret' };
const USERS = { [SERVICE.username]: SERVICE.password, alice: 'alice-pw' };
const QUIET = { verify: { intervalMs: 0 } };

/** A credential-store helper holding one user's password for this githa. */
function credentials(dir: string, httpUrl: string, user: string, password: string): string {
  const file = join(dir, `credentials-${user}-${Math.random().toString(16).slice(2)}`);
  writeFileSync(file, `http://${user}:${encodeURIComponent(password)}@127.0.0.1:${new URL(httpUrl).port}\n`);
  return `credential.helper=store --file=${file}`;
}

describe('a backend behind Basic authentication (passthrough)', () => {
  it("relays the backend's 401 with its challenge and a body as long as its content-length; git fails at once without credentials", async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    await c.createRepository('private/app');
    const front = await startAuthBackend(c, b1, { protect: '^/git/private/', users: USERS, realm: 'private repos' });
    const githa = await startGitha(c, { endpoints: ['http'], singleCopy: true, backends: { b1: { http: front.httpUrl, httpAuth: SERVICE } }, config: QUIET });

    const answer = await rawGet(githa.httpUrl, '/private/app.git/info/refs?service=git-upload-pack');
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toMatch(/^Basic realm="private repos"/);
    expect(answer.headers['content-length']).toBe(String(answer.body.length));
    expect(answer.body.length).toBeGreaterThan(0);

    const git = GitClient.forCluster(c);
    const url = githa.url('private/app');
    const anon = await git.run(['ls-remote', url], { allowFailure: true, timeoutMs: 30_000 });
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/could not read Username|Authentication failed/);

    // With credentials git answers the challenge and goes on.
    const work = await git.workdir();
    await git.run(['-c', credentials(c.dir, githa.httpUrl, 'alice', 'alice-pw'), 'clone', url, join(work, 'clone')]);
    await git.commit(join(work, 'clone'), { 'a.txt': 'a\n' }, 'first');
    await git.run(['-c', credentials(c.dir, githa.httpUrl, 'alice', 'alice-pw'), 'push', 'origin', 'HEAD:refs/heads/main'], { cwd: join(work, 'clone') });
    const listed = await git.run(['-c', credentials(c.dir, githa.httpUrl, 'alice', 'alice-pw'), 'ls-remote', url]);
    expect(listed.stdout).toContain('refs/heads/main');
  });

  it('a push the backend refuses with 401 records no version, leaves no marker, and shows git the challenge', async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    await c.createRepository('guarded/app');
    // As git-http-backend(1) "EXAMPLES": reads are open, only the push itself needs credentials.
    const front = await startAuthBackend(c, b1, { protect: '/git-receive-pack$', users: USERS, realm: 'pushers' });
    const githa = await startGitha(c, { endpoints: ['http'], singleCopy: true, backends: { b1: { http: front.httpUrl, httpAuth: SERVICE } }, config: QUIET });
    const git = GitClient.forCluster(c);
    const url = githa.url('guarded/app');
    const work = join(await git.workdir(), 'clone');
    await git.run(['clone', url, work]);
    const key = (what: string): string => `githa:repo:{guarded/app.git}:${what}`;
    const versionsBefore = await c.redis.cli('HGETALL', key('versions'));
    const logBefore = await c.redis.cli('XLEN', key('log'));

    await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    const refused = await git.run(['push', 'origin', 'HEAD:refs/heads/main'], { cwd: work, allowFailure: true, traceCurl: true, timeoutMs: 60_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/<= Recv header: HTTP\/1\.1 401/);
    expect(refused.stderr).toMatch(/<= Recv header: WWW-Authenticate: Basic realm="pushers"/i);
    expect(refused.stderr).toMatch(/could not read Username|Authentication failed/);
    // Nothing changed: same versions, no push log entry, no marker (writes are not frozen).
    expect(await c.redis.cli('HGETALL', key('versions'))).toBe(versionsBefore);
    expect(await c.redis.cli('XLEN', key('log'))).toBe(logBefore);
    expect((await c.redis.cli('EXISTS', key('writing'))).trim()).toBe('0');
    expect(githa.logs()).not.toContain('"push committed"');

    // The same push with credentials is recorded, one version up.
    await git.run(['-c', credentials(c.dir, githa.httpUrl, 'alice', 'alice-pw'), 'push', 'origin', 'HEAD:refs/heads/main'], { cwd: work });
    const before = Number(/b1\n(\d+)/.exec(versionsBefore)?.[1]);
    expect(await c.redis.cli('HGET', key('versions'), 'b1')).toBe(String(before + 1));
    expect(githa.logs()).toContain('"push committed"');
  });
});
