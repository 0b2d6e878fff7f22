/**
 * githa in front of Apache (issue 17 acceptance): Debian's apache2 with
 * mod_cgi and mod_auth_basic running the stock `git http-backend`
 * (src/demo/apache.ts), as well as lighttpd in the same cluster.
 *
 * - clone, push and fetch through githa with protocol v2 and v0;
 * - Apache's v0-only location (Git-Protocol not passed on) used by v0 and v2
 *   clients, and its redirecting location followed by githa's own client;
 * - a repository behind Basic auth: the 401 reaches git whole (a body as long
 *   as its content-length), clone and push with credentials work;
 * - catch-up between an Apache backend and a lighttpd backend, both ways.
 * - the harness restarts an Apache backend killed with SIGKILL on its port.
 *
 * Apache has no equivalent of lighttpd's server.stream-request-body = 2, so
 * the 411 case stays in http-backend-compat.test.ts (lighttpd only).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HttpBackendClient } from '../../src/backends/http.js';
import { diskRefs } from '../support/backend-refs.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { rawGet } from '../support/raw-http.js';

const SERVICE = { username: 'githa-svc', password: 'svc-secret' };
const USERS = { [SERVICE.username]: SERVICE.password, alice: 'alice-pw' };
// b1 and b2 under Apache, b3 under lighttpd.
const cluster = useCluster({ backends: 3, webServer: { b1: 'apache', b2: 'apache' }, httpUsers: USERS });
const QUIET = { verify: { intervalMs: 0 } };

/** `-c credential.helper=…` answering alice's credentials (git's "!" shell helper). */
const ALICE = ['-c', `credential.helper=!f() { echo username=alice; echo password=${USERS.alice}; }; f`];

describe('Apache backends through githa', () => {
  it('clone, push and fetch with protocol v2 and v0', async () => {
    const c = cluster();
    const [b1, b2] = c.backends;
    expect([b1!.webServer, b2!.webServer, c.backend('b3').webServer]).toEqual(['apache', 'apache', 'lighttpd']);
    const repo = 'apache/app';
    await c.createRepository(repo);
    const githa = await startGitha(c, { only: ['b1', 'b2'], endpoints: ['http'], config: QUIET });
    const git = GitClient.forCluster(c);
    expect(await git.negotiatedVersion(githa.url(repo))).toBe(2);

    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, githa.url(repo), ['HEAD:refs/heads/main'], [], { protocolVersion: 2 });
    expect((await diskRefs(b1!, repo))['refs/heads/main']).toBe(first);
    expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(first);

    const v0clone = await git.clone(githa.url(repo), [], { protocolVersion: 0 });
    expect(await git.revParse(v0clone, 'HEAD')).toBe(first);
    const second = await git.commit(v0clone, { 'b.txt': 'b\n' }, 'second');
    await git.push(v0clone, githa.url(repo), ['HEAD:refs/heads/main'], [], { protocolVersion: 0 });
    expect((await diskRefs(b1!, repo))['refs/heads/main']).toBe(second);
    expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(second);

    await git.fetch(work, githa.url(repo), ['refs/heads/main:refs/remotes/v2/main'], [], { protocolVersion: 2 });
    expect(await git.revParse(work, 'refs/remotes/v2/main')).toBe(second);
    await git.fetch(v0clone, githa.url(repo), ['refs/heads/main:refs/remotes/v0/main'], [], { protocolVersion: 0 });
    expect(await git.revParse(v0clone, 'refs/remotes/v0/main')).toBe(second);

    // Apache served them: its access log has the pushes, and v2 requests with their header.
    const log = readFileSync(b1!.logs.http, 'utf8');
    expect(log).toMatch(new RegExp(`"POST /git/${repo}(\\.git)?/git-receive-pack HTTP/1\\.1" 200`));
    expect(log).toMatch(/git-upload-pack HTTP\/1\.1" 200 \d+ "version=2"/);
  });

  it("Apache's v0-only location serves v0 and v2 clients, and copies are made through it", async () => {
    const c = cluster();
    const [b1, b2] = c.backends;
    const repo = 'apache/v0';
    await c.createRepository(repo);
    const githa = await startGitha(c, { only: ['b1', 'b2'], endpoints: ['http'], backends: { b1: { http: b1!.httpUrlAt('v0') }, b2: { http: b2!.httpUrlAt('v0') } }, config: QUIET });
    const git = GitClient.forCluster(c);
    expect(await git.negotiatedVersion(githa.url(repo))).toBe(0);

    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, githa.url(repo), ['HEAD:refs/heads/main'], [], { protocolVersion: 0 });
    expect((await diskRefs(b1!, repo))['refs/heads/main']).toBe(first);
    expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(first);

    const v2clone = await git.clone(githa.url(repo), [], { protocolVersion: 2 });
    expect(await git.revParse(v2clone, 'HEAD')).toBe(first);
    const second = await git.commit(v2clone, { 'b.txt': 'b\n' }, 'second');
    await git.push(v2clone, githa.url(repo), ['HEAD:refs/heads/main'], [], { protocolVersion: 2 });
    expect((await diskRefs(b1!, repo))['refs/heads/main']).toBe(second);
    expect((await diskRefs(b2!, repo))['refs/heads/main']).toBe(second);
    const v0clone = await git.clone(githa.url(repo), [], { protocolVersion: 0 });
    expect(await git.revParse(v0clone, 'HEAD')).toBe(second);

    // The header never reached http-backend at that location.
    expect(readFileSync(b1!.logs.http, 'utf8')).toMatch(new RegExp(`"GET /git-v0/${repo}(\\.git)?/info/refs\\?service=git-upload-pack HTTP/1\\.1" 200 \\d+ "-"`));
  });

  it("githa's own client follows Apache's redirect (301 with the query kept)", async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    const repo = 'apache/moved';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const head = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, b1.url('http', repo), ['HEAD:refs/heads/main']);
    const moved = new HttpBackendClient({ id: 'b1', baseUrl: b1.httpUrlAt('moved'), timeoutMs: 20_000 });
    try {
      expect(await moved.listRefs(repo)).toEqual([
        { name: 'HEAD', oid: head },
        { name: 'refs/heads/main', oid: head },
      ]);
    } finally {
      await moved.close();
    }
    expect(readFileSync(b1.logs.http, 'utf8')).toMatch(new RegExp(`"GET /git-moved/${repo}(\\.git)?/info/refs\\?service=git-upload-pack HTTP/1\\.1" 301`));
  });

  it('a repository behind Basic auth: the 401 reaches git whole; clone and push with credentials', async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    const repo = 'private/app';
    await c.createRepository(repo);
    const githa = await startGitha(c, { only: ['b1'], endpoints: ['http'], singleCopy: true, backends: { b1: { http: b1.httpUrlAt('auth'), httpAuth: SERVICE } }, config: QUIET });

    // Directly and through githa: the same 401, with a body as long as its header says.
    const direct = await rawGet(b1.httpUrlAt('auth'), `/git-auth/${repo}.git/info/refs?service=git-upload-pack`);
    const answer = await rawGet(githa.httpUrl, `/${repo}.git/info/refs?service=git-upload-pack`);
    expect(direct.status).toBe(401);
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe(direct.headers['www-authenticate']);
    expect(answer.headers['www-authenticate']).toBe('Basic realm="git"');
    expect(answer.body.length).toBeGreaterThan(0);
    expect(answer.headers['content-length']).toBe(String(answer.body.length));

    const git = GitClient.forCluster(c);
    const url = githa.url(repo);
    const anon = await git.run(['ls-remote', url], { allowFailure: true, timeoutMs: 30_000 });
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/could not read Username|Authentication failed/);

    const clone = join(await git.workdir(), 'clone');
    await git.run([...ALICE, 'clone', url, clone]);
    const head = await git.commit(clone, { 'a.txt': 'a\n' }, 'first');
    await git.run([...ALICE, 'push', 'origin', 'HEAD:refs/heads/main'], { cwd: clone });
    expect((await diskRefs(b1, repo))['refs/heads/main']).toBe(head);
    const listed = await git.run([...ALICE, 'ls-remote', url]);
    expect(listed.stdout).toContain(`${head}\trefs/heads/main`);
    expect(readFileSync(b1.logs.http, 'utf8')).toMatch(new RegExp(`"POST /git-auth/${repo}(\\.git)?/git-receive-pack HTTP/1\\.1" 200`));
  });
});

describe('an Apache backend under the harness', () => {
  it('restarts on the same port after SIGKILL (stale pid file) and serves again', async () => {
    const c = cluster();
    const b2 = c.backend('b2');
    const repo = 'apache/restart';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const port = b2.ports.http;
    await b2.stop('SIGKILL');
    expect(b2.state).toBe('stopped');
    await b2.start();
    expect(b2.ports.http).toBe(port);
    const work = await git.init();
    const head = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, b2.url('http', repo), ['HEAD:refs/heads/main']);
    expect(await git.lsRemote(b2.url('http', repo), ['refs/heads/main'])).toEqual({ 'refs/heads/main': head });
  });

  it("has no 'nochunk' location (Apache always reads chunked bodies)", () => {
    expect(() => cluster().backend('b1').httpUrlAt('nochunk')).toThrow(/b1 \(apache\) has no 'nochunk' location/);
  });
});

describe('a mixed cluster: Apache and lighttpd', () => {
  it('catches a lighttpd backend up from an Apache one, and an Apache backend up from a lighttpd one', async () => {
    const c = cluster();
    const apache = c.backend('b1');
    const lighttpd = c.backend('b3');
    const repo = 'mixed/app';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const common = { only: ['b1', 'b3'], endpoints: ['http' as const], singleCopy: true, config: QUIET };

    // A push that can only land on the Apache backend, then a read preferring the lighttpd one.
    const toApache = await startGitha(c, { ...common, backends: { b3: { writable: false } } });
    const work = await git.init();
    const first = await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.push(work, toApache.url(repo), ['HEAD:refs/heads/main']);
    expect((await diskRefs(apache, repo))['refs/heads/main']).toBe(first);
    expect(await diskRefs(lighttpd, repo)).toEqual({});
    const east = await startGitha(c, { ...common, zone: 'east', backends: { b3: { zone: 'east' } } });
    expect(await git.lsRemote(east.url(repo), ['refs/heads/main'])).toEqual({ 'refs/heads/main': first });
    expect(await diskRefs(lighttpd, repo)).toEqual(await diskRefs(apache, repo));
    expect(east.logLines().filter((l) => l.msg === 'catch-up')).toMatchObject([{ source: 'b1', target: 'b3', status: 'OK' }]);

    // The other way: a push that lands on lighttpd only, then a read preferring Apache (its CGI receives the pack).
    const toLighttpd = await startGitha(c, { ...common, backends: { b1: { writable: false } } });
    const second = await git.commit(work, { 'b.txt': 'b\n' }, 'second');
    await git.push(work, toLighttpd.url(repo), ['HEAD:refs/heads/main']);
    expect((await diskRefs(lighttpd, repo))['refs/heads/main']).toBe(second);
    expect((await diskRefs(apache, repo))['refs/heads/main']).toBe(first);
    const west = await startGitha(c, { ...common, zone: 'west', backends: { b1: { zone: 'west' } } });
    expect(await git.lsRemote(west.url(repo), ['refs/heads/main'])).toEqual({ 'refs/heads/main': second });
    expect(await diskRefs(apache, repo)).toEqual(await diskRefs(lighttpd, repo));
    expect(west.logLines().filter((l) => l.msg === 'catch-up')).toMatchObject([{ source: 'b3', target: 'b1', status: 'OK' }]);
  });
});
