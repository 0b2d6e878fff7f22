/**
 * The first request for a repository githa has never seen, behind a backend's
 * own Basic authentication, in passthrough mode without service credentials
 * (docs/security.md "Authentication"): githa's listing of it gets the
 * backend's 401, and the client gets that challenge, so git prompts, retries
 * with credentials, and githa's listing borrows them to adopt the repository.
 *
 * And cookies (docs/security.md "Cookies"): in passthrough the client's
 * Cookie goes to the backend and the backend's Set-Cookie comes back, on reads
 * and pushes alike; in mode githa neither does.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { bcrypt } from 'hash-wasm';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startAuthBackend } from '../support/auth-backend.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';

const cluster = useCluster({ backends: 1 });
const QUIET = { verify: { intervalMs: 0 } };

/** A GIT_ASKPASS program that appends each prompt to `log` and answers the user name or the password. */
function askpass(dir: string, user: string, password: string): { program: string; log: string } {
  const tag = randomBytes(4).toString('hex');
  const log = join(dir, `askpass-${tag}.log`);
  const program = join(dir, `askpass-${tag}.sh`);
  writeFileSync(log, '');
  writeFileSync(program, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${log}'\ncase "$1" in\n  Username*) echo '${user}' ;;\n  *) echo '${password}' ;;\nesac\n`);
  chmodSync(program, 0o755);
  return { program, log };
}

/** One GET through githa with the given headers: status, headers, body. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { ...headers, connection: 'close' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A tap in front of a real backend that sets a cookie on every answer
 * (`from=<request path's last part>`) and records the Cookie each request carried.
 */
async function cookieTap(target: string): Promise<{ httpUrl: string; cookies: (string | undefined)[] }> {
  const cookies: (string | undefined)[] = [];
  const base = new URL(target);
  const server = createServer((req: IncomingMessage, res) => {
    cookies.push(req.headers.cookie);
    const headers = { ...req.headers, host: base.host };
    const up = httpRequest({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers }, (answer) => {
      const last = (req.url ?? '').split('?')[0]!.split('/').pop();
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'set-cookie': [`from=${last}; Path=/`] });
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { httpUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}${base.pathname}`, cookies };
}

describe('a never-seen repository behind backend authentication (passthrough, no service credentials)', () => {
  it('puts the backend challenge to the first request: git prompts, ls-remote succeeds, and the repository is adopted', async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    await c.createRepository('private/first');
    const git = GitClient.forCluster(c);
    // A commit pushed to the backend directly: githa has never seen the repository.
    const work = join(await git.workdir(), 'seed');
    await git.run(['clone', `${b1.httpUrl}private/first.git`, work]);
    await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    await git.run(['push', 'origin', 'HEAD:refs/heads/main'], { cwd: work });
    const head = (await git.run(['rev-parse', 'HEAD'], { cwd: work })).stdout.trim();

    const front = await startAuthBackend(c, b1, { protect: '^/git/private/', users: { alice: 'alice-pw' }, realm: 'private repos' });
    const githa = await startGitha(c, { endpoints: ['http'], singleCopy: true, backends: { b1: { http: front.httpUrl } }, config: QUIET });
    const versions = 'githa:repo:{private/first.git}:versions';
    expect((await c.redis.cli('EXISTS', versions)).trim()).toBe('0');

    // Without credentials: the backend's own challenge, whole, with a length that matches its body.
    const anon = await get(`${githa.httpUrl}/private/first.git/info/refs?service=git-upload-pack`, {});
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Basic realm="private repos"/);
    expect(anon.headers['content-length']).toBe(String(anon.body.length));
    expect((await c.redis.cli('EXISTS', versions)).trim()).toBe('0');

    const ask = askpass(c.dir, 'alice', 'alice-pw');
    const listed = await git.run(['ls-remote', githa.url('private/first')], { env: { GIT_ASKPASS: ask.program }, timeoutMs: 60_000 });
    expect(readFileSync(ask.log, 'utf8')).toMatch(/^Username for 'http:\/\/127\.0\.0\.1:\d+': \nPassword for 'http:\/\/alice@127\.0\.0\.1:\d+': \n$/);
    expect(listed.stdout).toContain(`${head}\trefs/heads/main`);
    expect(await c.redis.cli('HGET', versions, 'b1')).toBe('1');
    expect(githa.logs()).toContain('"repository adopted"');
    // The lent credentials are never logged.
    expect(githa.logs()).not.toContain(Buffer.from('alice:alice-pw').toString('base64'));
  });
});

describe('cookies', () => {
  it("passthrough: the client's Cookie reaches the backend and the backend's Set-Cookie reaches the client, on reads and pushes", async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    await c.createRepository('cookies/app');
    const tap = await cookieTap(b1.httpUrl);
    const githa = await startGitha(c, { endpoints: ['http'], singleCopy: true, backends: { b1: { http: tap.httpUrl } }, config: QUIET });

    const answer = await get(`${githa.httpUrl}/cookies/app.git/info/refs?service=git-upload-pack`, { cookie: 'session=s1' });
    expect(answer.status).toBe(200);
    expect(answer.headers['set-cookie']).toEqual(['from=refs; Path=/']);
    expect(tap.cookies).toContain('session=s1');

    // git keeps the cookies it is given (http.cookieFile + http.saveCookies): the push's own answers set them too.
    const git = GitClient.forCluster(c);
    const jar = join(c.dir, `cookies-${randomBytes(4).toString('hex')}`);
    const work = join(await git.workdir(), 'clone');
    const withJar = ['-c', `http.cookieFile=${jar}`, '-c', 'http.saveCookies=true'];
    await git.run([...withJar, 'clone', githa.url('cookies/app'), work]);
    await git.commit(work, { 'a.txt': 'a\n' }, 'first');
    writeFileSync(jar, '');
    await git.run([...withJar, 'push', 'origin', 'HEAD:refs/heads/main'], { cwd: work });
    expect(readFileSync(jar, 'utf8')).toMatch(/\tfrom\tgit-receive-pack$/m);
  });

  it('mode githa: neither the Cookie nor the Set-Cookie crosses githa', async () => {
    const c = cluster();
    const b1 = c.backends[0]!;
    await c.createRepository('cookies/closed');
    const tap = await cookieTap(b1.httpUrl);
    const usersFile = join(c.dir, `githa-users-${randomBytes(4).toString('hex')}`);
    writeFileSync(usersFile, `alice:${await bcrypt({ password: 'alice-pw', salt: randomBytes(16), costFactor: 4, outputType: 'encoded' })}\n`);
    const githa = await startGitha(c, {
      endpoints: ['http'],
      singleCopy: true,
      backends: { b1: { http: tap.httpUrl } },
      config: { ...QUIET, auth: { http: { mode: 'githa', usersFile } } },
    });
    const answer = await get(`${githa.httpUrl}/cookies/closed.git/info/refs?service=git-upload-pack`, {
      cookie: 'session=s2',
      authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`,
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['set-cookie']).toBeUndefined();
    expect(tap.cookies.length).toBeGreaterThan(0);
    expect(tap.cookies.filter((v) => v !== undefined)).toEqual([]);
  });
});
