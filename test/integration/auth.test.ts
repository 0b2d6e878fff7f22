/**
 * Authentication and authorization (docs/security.md) with the real git, the
 * real OpenSSH client, real backends and a real redis-server:
 *
 * - HTTP `auth.http.mode: githa`: git gets a 401 with a challenge, asks its
 *   credential helper, retries; a wrong password is an authentication failure;
 *   the users file is re-read when it changes; backends see githa's service
 *   credentials and the verified user, never the client's Authorization.
 * - A read-only user clones but its push is refused with a clear message,
 *   before Redis or any backend is touched (HTTP and SSH).
 * - A user without read access gets the answer of a missing repository, byte
 *   for byte apart from the name (HTTP, SSH, git://).
 * - An unknown SSH key is refused; passthrough mode (the default) is unchanged.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { bcrypt } from 'hash-wasm';
import { describe, expect, it, onTestFinished } from 'vitest';
import { generateKey } from '../../src/demo/ssh.js';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { raw as rawRequest, type RawResponse } from '../support/untouched.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/wait.js';

/** One raw request (test/support/untouched.ts), headers before the body. */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<RawResponse> {
  return rawRequest(base, method, path, body, headers);
}

function pkt(s: string): Buffer {
  return Buffer.concat([Buffer.from((Buffer.byteLength(s) + 4).toString(16).padStart(4, '0')), Buffer.from(s)]);
}
const FLUSH = Buffer.from('0000');
const ZERO = '0'.repeat(40);

/** The whole answer of githa's git:// front end to one request line. */
function gitDaemonAnswer(port: number, request: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const parts: Buffer[] = [];
    socket.setTimeout(20_000, () => socket.destroy(new Error('git:// answer timed out')));
    socket.on('connect', () => socket.write(pkt(request)));
    socket.on('data', (c: Buffer) => parts.push(c));
    socket.on('end', () => resolve(Buffer.concat(parts)));
    socket.on('error', reject);
  });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The real OpenSSH client, one exec, stdin from /dev/null. */
function ssh(githa: GithaProcess, keyPath: string, command: string): Promise<Run> {
  const args = ['-n', '-F', '/dev/null', '-i', keyPath, '-p', String(githa.sshPort), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
  args.push('-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${githa.knownHostsPath}`, '-o', 'GlobalKnownHostsFile=/dev/null', 'git@127.0.0.1', command);
  return new Promise((resolve) => {
    execFile('ssh', args, { timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** No verifier sweep at start, no background copies: what reaches a backend came from the requests under test. */
const QUIET = { verify: { intervalMs: 0 }, replication: { background: false } };

const bcryptHash = async (password: string): Promise<string> => bcrypt({ password, salt: randomBytes(16), costFactor: 4, outputType: 'encoded' });

describe('authentication and authorization', () => {
  const cluster = useCluster({ backends: 2, repositories: ['auth/app', 'auth/ssh', 'secret/app'] });

  /** Repository-scoped state (shared backend health excluded: the checker rewrites it all the time). */
  async function redisState(c: DevCluster): Promise<Record<string, string>> {
    const keys = (await c.redis.cli('KEYS', '*')).split('\n').filter((k) => k.length > 0 && !k.startsWith('githa:backend:')).sort();
    if (keys.length === 0) return {};
    const digests = (await c.redis.cli('DEBUG', 'DIGEST-VALUE', ...keys)).split('\n');
    return Object.fromEntries(keys.map((k, i) => [k, digests[i]!]));
  }

  /**
   * lighttpd writes its access log lazily: a unique request to every backend,
   * waited for in each log, marks a point in it (as in http-hostile.test.ts).
   */
  async function sentinel(c: DevCluster): Promise<string> {
    const mark = `sentinel-${randomBytes(6).toString('hex')}`;
    for (const b of c.backends) expect((await raw(`http://127.0.0.1:${b.ports.http}`, 'GET', `/${mark}`)).status).toBe(404);
    await waitFor(`the access log line of ${mark} on every backend`, () => c.backends.every((b) => readFileSync(b.logs.http, 'utf8').includes(mark)), 15_000, { intervalMs: 20 });
    return mark;
  }

  /** Per backend: requests in the HTTP access log after `mark` (health probes aside), SSH logins, git:// requests. */
  function backendActivity(c: DevCluster, mark: string): string[] {
    return c.backends.map((b) => {
      const http = readFileSync(b.logs.http, 'utf8').split('\n');
      const since = http.slice(http.findIndex((l) => l.includes(mark)) + 1).filter((l) => / "(GET|POST) /.test(l) && !l.includes('/githa-health-probe.git/') && !l.includes('sentinel-'));
      // The health checker only opens TCP connections to sshd and git daemon: logins and requests are real traffic.
      const ssh = readFileSync(b.logs.ssh, 'utf8').split('\n').filter((l) => l.includes('Accepted publickey'));
      const git = readFileSync(b.logs.git, 'utf8').split('\n').filter((l) => /Request |Extended attribute/.test(l));
      return [...since, '--', ...ssh, '--', ...git].join('\n');
    });
  }

  /** Runs `requests`; Redis's repository state must be as before, and no backend may have seen a request. */
  async function untouched(githa: GithaProcess, requests: () => Promise<void>): Promise<void> {
    const c = cluster();
    expect((await fetch(`${githa.adminUrl}/readyz`)).status).toBe(200);
    const first = await sentinel(c);
    const logs = backendActivity(c, first);
    const before = await redisState(c);
    await requests();
    await sentinel(c);
    expect(await redisState(c)).toEqual(before);
    expect(backendActivity(c, first)).toEqual(logs);
  }

  const ACCESS = {
    default: 'none',
    rules: [
      { repos: 'auth/**', groups: ['devs'], access: 'write' },
      { repos: ['auth/*'], users: ['carol', 'ro'], access: 'read' },
    ],
  };

  it('mode githa: 401 challenge, credential helper, wrong password, users file re-read, read-only push refused', async () => {
    const c = cluster();
    const usersFile = join(c.dir, 'githa-users');
    writeFileSync(usersFile, `alice:${await bcryptHash('alice-pw')}:devs\ncarol:${await bcryptHash('carol-pw')}\ndave:${await bcryptHash('dave-pw')}\n`);
    // A tap between githa and backend b1 records the headers each request carries (the backend itself stays real).
    const seen: IncomingHttpHeaders[] = [];
    const b1 = c.backends[0]!;
    const tap = createServer((req, res) => {
      seen.push(req.headers);
      const up = httpRequest({ host: '127.0.0.1', port: b1.ports.http, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => tap.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => tap.close(() => r())));
    const tapUrl = `http://127.0.0.1:${(tap.address() as AddressInfo).port}/git/`;
    const githa = await startGitha(c, {
      endpoints: ['http'],
      backends: { b1: { http: tapUrl, httpAuth: { username: 'githa-svc', password: 'svc-secret' } } },
      config: { ...QUIET, auth: { http: { mode: 'githa', usersFile, realm: 'githa test', userHeader: 'X-Remote-User' } }, access: ACCESS },
    });
    const git = GitClient.forCluster(c);
    const url = githa.url('auth/app');
    const store = (user: string, password: string): string => {
      const file = join(c.dir, `credentials-${user}-${randomBytes(3).toString('hex')}`);
      writeFileSync(file, `http://${user}:${encodeURIComponent(password)}@127.0.0.1:${new URL(githa.httpUrl).port}\n`);
      return `store --file=${file}`;
    };

    // Without credentials: a 401 with a Basic challenge, and git cannot go on without a helper.
    const anon = await raw(githa.httpUrl, 'GET', '/auth/app.git/info/refs?service=git-upload-pack');
    expect(anon.status).toBe(401);
    expect(anon.headers['www-authenticate']).toBe('Basic realm="githa test", charset="UTF-8"');
    const noHelper = await git.run(['ls-remote', url], { allowFailure: true });
    expect(noHelper.code).not.toBe(0);
    expect(noHelper.stderr).toMatch(/could not read Username|Authentication failed/);

    // The credential helper flow: a 401 first, then the same request with the helper's credentials.
    const cloned = await git.run(['-c', `credential.helper=${store('alice', 'alice-pw')}`, 'clone', url, join(c.dir, 'alice-clone')], { traceCurl: true });
    const statuses = [...cloned.stderr.matchAll(/<= Recv header: HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses.slice(0, 2)).toEqual(['401', '200']);
    expect(cloned.stderr).toMatch(/=> Send header: Authorization: Basic <redacted>/);
    const work = join(c.dir, 'alice-clone');
    await git.commit(work, { 'a.txt': 'by alice\n' }, 'alice');
    await git.run(['-c', `credential.helper=${store('alice', 'alice-pw')}`, 'push', 'origin', 'HEAD:refs/heads/alice'], { cwd: work });
    const log = await c.redis.cli('XREVRANGE', 'githa:repo:{auth/app.git}:log', '+', '-', 'COUNT', '1');
    expect(log).toMatch(/\nuser\nalice\n/);

    // Backends never saw alice's password: service credentials and the verified name instead.
    const svc = `Basic ${Buffer.from('githa-svc:svc-secret').toString('base64')}`;
    expect(seen.length).toBeGreaterThan(0);
    for (const h of seen) expect(h.authorization).toBe(svc);
    const relayed = seen.filter((h) => h['x-remote-user'] !== undefined);
    expect(relayed.length).toBeGreaterThan(0);
    for (const h of relayed) expect(h['x-remote-user']).toBe('alice');

    // A wrong password: git reports an authentication failure.
    const wrong = await git.run(['-c', `credential.helper=${store('alice', 'nope')}`, 'ls-remote', url], { allowFailure: true });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/Authentication failed/);

    // The users file is re-read when it changes: the old password stops working, the new one works.
    writeFileSync(usersFile, `alice:${await bcryptHash('new-pw')}:devs\ncarol:${await bcryptHash('carol-pw')}\n# changed\n`);
    expect((await git.run(['-c', `credential.helper=${store('alice', 'alice-pw')}`, 'ls-remote', url], { allowFailure: true })).code).not.toBe(0);
    const fresh = await git.run(['-c', `credential.helper=${store('alice', 'new-pw')}`, 'ls-remote', url]);
    expect(fresh.stdout).toContain('refs/heads/alice');

    // carol may read: she clones; her push is refused at info/refs with a clear message, touching neither Redis nor a backend.
    const carol = store('carol', 'carol-pw');
    const carolClone = join(c.dir, 'carol-clone');
    await git.run(['-c', `credential.helper=${carol}`, 'clone', url, carolClone]);
    expect(await git.revParse(carolClone, 'refs/remotes/origin/alice')).toBe(await git.revParse(work, 'HEAD'));
    await git.commit(carolClone, { 'c.txt': 'by carol\n' }, 'carol');
    let push: Awaited<ReturnType<GitClient['run']>> | undefined;
    await untouched(githa, async () => {
      push = await git.run(['-c', `credential.helper=${carol}`, 'push', 'origin', 'HEAD:refs/heads/carol'], { cwd: carolClone, allowFailure: true });
      // A crafted POST straight to git-receive-pack is refused the same way.
      const direct = await raw(githa.httpUrl, 'POST', '/auth/app.git/git-receive-pack', { authorization: `Basic ${Buffer.from('carol:carol-pw').toString('base64')}`, 'content-type': 'application/x-git-receive-pack-request' }, Buffer.concat([pkt(`${ZERO} ${'1'.repeat(40)} refs/heads/x\0report-status\n`), FLUSH]));
      expect(direct.status).toBe(403);
    });
    expect(push!.code).not.toBe(0);
    expect(push!.stderr).toContain('remote: githa: carol has read-only access to auth/app.git; pushing needs write access');
    expect(push!.stderr).toMatch(/The requested URL returned error: 403/);
    expect(githa.proc.exitCode).toBeNull();
  });

  it('no read access is answered exactly as a missing repository, on HTTP, SSH and git://', async () => {
    const c = cluster();
    const usersFile = join(c.dir, 'githa-users-2');
    writeFileSync(usersFile, `carol:${await bcryptHash('carol-pw')}\n`);
    const noneKey = join(c.dir, `none-key-${randomBytes(3).toString('hex')}`);
    const nonePub = await generateKey(noneKey, 'nobody@test');
    const githa = await startGitha(c, {
      ssh: true,
      git: true,
      authorizedKeys: `environment="GITHA_USER=nobody" ${nonePub}\n`,
      config: {
        ...QUIET,
        auth: { http: { mode: 'githa', usersFile } },
        // Anonymous (git://) may read public/**; carol may read auth/*: neither may read secret/*.
        access: { default: 'none', rules: [{ repos: 'auth/*', users: ['carol'], access: 'read' }, { repos: 'public/**', users: ['anonymous'], access: 'read' }] },
      },
    });
    const carol = { authorization: `Basic ${Buffer.from('carol:carol-pw').toString('base64')}` };
    const same = (a: Buffer | string, b: Buffer | string, from: string, to: string): void => {
      expect(a.toString().replaceAll(from, to)).toBe(b.toString());
      expect(a.toString()).toContain(from);
    };
    const existing = 'secret/app.git';
    // Same length as `existing`, so even the git:// pkt-line length prefix must match.
    const missing = 'secret/xyz.git';
    const requests: Array<[string, string, Buffer | undefined, Record<string, string>]> = [
      ['GET', '/info/refs?service=git-upload-pack', undefined, {}],
      ['GET', '/info/refs?service=git-receive-pack', undefined, {}],
      ['POST', '/git-upload-pack', Buffer.concat([pkt('command=ls-refs\n'), FLUSH]), { 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' }],
      ['POST', '/git-receive-pack', Buffer.concat([pkt(`${ZERO} ${'1'.repeat(40)} refs/heads/x\0report-status\n`), FLUSH]), { 'content-type': 'application/x-git-receive-pack-request' }],
    ];
    const services = ['git-upload-pack', 'git-receive-pack', 'git-upload-archive'];
    const gitLine = (repo: string): string => `git-upload-pack /${repo}\0host=127.0.0.1\0`;
    // Asked of githa with rules about a repository that exists, and of githa without rules about one that does not.
    async function answers(to: GithaProcess, repo: string, headers: Record<string, string>): Promise<{ http: RawResponse[]; ssh: Run[]; git: Buffer }> {
      const http: RawResponse[] = [];
      for (const [method, suffix, body, h] of requests) http.push(await raw(to.httpUrl, method, `/${repo}${suffix}`, { ...headers, ...h }, body));
      const sshRuns: Run[] = [];
      for (const service of services) sshRuns.push(await ssh(to, noneKey, `${service} '${repo}'`));
      return { http, ssh: sshRuns, git: await gitDaemonAnswer(to.gitPort!, gitLine(repo)) };
    }
    let denied: Awaited<ReturnType<typeof answers>> | undefined;
    await untouched(githa, async () => {
      denied = await answers(githa, existing, carol);
    });
    // What githa answers for a missing repository (without access rules: as before they existed).
    const openGitha = await startGitha(c, { ssh: true, git: true, authorizedKeys: `environment="GITHA_USER=nobody" ${nonePub}\n` });
    const absent = await answers(openGitha, missing, {});
    expect(absent.http[0]!.status).toBe(404);
    expect(absent.git.toString()).toContain(`ERR githa: repository ${missing} not found`);
    for (const [i, a] of absent.http.entries()) {
      const d = denied!.http[i]!;
      expect(d.status, requests[i]![1]).toBe(a.status);
      expect(d.headers['content-type'], requests[i]![1]).toBe(a.headers['content-type']);
      same(d.body, a.body, existing, missing);
    }
    for (const [i, a] of absent.ssh.entries()) {
      const d = denied!.ssh[i]!;
      expect(d.code, services[i]).toBe(a.code);
      same(d.stderr, a.stderr, existing, missing);
      expect(d.stdout).toBe(a.stdout);
    }
    same(denied!.git, absent.git, existing, missing);
    // And the answer to a missing repository is the same with rules as without.
    const stillMissing = await raw(githa.httpUrl, 'GET', `/${missing}/info/refs?service=git-upload-pack`, carol);
    expect(stillMissing.status).toBe(404);
    expect(stillMissing.body.toString()).toBe(`githa: repository ${missing} not found\n`);
  });

  it('SSH: a read-only key clones, its push is refused clearly without touching Redis or a backend; unknown keys are refused', async () => {
    const c = cluster();
    const roKey = join(c.dir, `ro-key-${randomBytes(3).toString('hex')}`);
    const roPub = await generateKey(roKey, 'ro@test');
    const unknownKey = join(c.dir, `unknown-key-${randomBytes(3).toString('hex')}`);
    await generateKey(unknownKey, 'stranger@test');
    const githa = await startGitha(c, {
      ssh: true,
      authorizedKeys: `environment="GITHA_USER=tester" ${c.ssh.clientPublicKey.trim()}\nenvironment="GITHA_USER=ro" ${roPub}\n`,
      config: { ...QUIET, auth: { groups: { devs: ['tester'] } }, access: ACCESS },
    });
    const git = GitClient.forCluster(c, { knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    const sha = await git.commit(work, { 'w.txt': 'by tester\n' }, 'tester');
    await git.push(work, githa.sshUrl('auth/ssh'), ['main']);

    const ro = GitClient.create({ baseDir: join(c.dir, 'clients'), ssh: { keyPath: roKey, knownHostsPath: githa.knownHostsPath } });
    const clone = await ro.clone(githa.sshUrl('auth/ssh'));
    expect(await ro.revParse(clone, 'HEAD')).toBe(sha);
    await ro.commit(clone, { 'r.txt': 'by ro\n' }, 'ro');
    let push: Awaited<ReturnType<GitClient['run']>> | undefined;
    await untouched(githa, async () => {
      push = await ro.run(['push', 'origin', 'HEAD:refs/heads/ro'], { cwd: clone, allowFailure: true });
    });
    expect(push!.code).not.toBe(0);
    expect(push!.stderr).toContain('githa: ro has read-only access to auth/ssh.git; pushing needs write access');
    expect(githa.logLines().some((l) => l.msg === 'access denied' && l.user === 'ro')).toBe(true);

    const stranger = await ssh(githa, unknownKey, "git-upload-pack 'auth/ssh.git'");
    expect(stranger.code).toBe(255);
    expect(stranger.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  it('SSH: a key whose comment is root@laptop is not the user root of the access rules; GITHA_USER is', async () => {
    const c = cluster();
    const laptop = join(c.dir, `laptop-key-${randomBytes(3).toString('hex')}`);
    const laptopPub = await generateKey(laptop, 'root@laptop');
    const githa = await startGitha(c, {
      ssh: true,
      authorizedKeys: `${laptopPub}\n`,
      config: { ...QUIET, auth: { groups: { admins: ['root'] } }, access: { default: 'none', rules: [{ repos: 'secret/**', groups: ['admins'], access: 'write' }] } },
    });
    // Not root: the key is its fingerprint, who may read nothing; the answer of a missing repository.
    const asComment = await ssh(githa, laptop, "git-upload-pack 'secret/app.git'");
    expect(asComment.code).not.toBe(0);
    expect(asComment.stderr).toContain('githa: repository secret/app.git not found');
    expect(githa.logLines().some((l) => l.msg === 'authorized keys' && String(l.message).includes('the comment names root'))).toBe(true);
    // The same key with GITHA_USER=root is root (the file is re-read when it changes).
    const keysPath = (JSON.parse(readFileSync(githa.configPath, 'utf8')) as { ssh: { authorizedKeys: string } }).ssh.authorizedKeys;
    writeFileSync(keysPath, `environment="GITHA_USER=root" ${laptopPub}\n# granted\n`);
    const asOption = await ssh(githa, laptop, "git-upload-pack 'secret/app.git'");
    expect(asOption.stderr).not.toContain("not found");
    // root reads: the advertisement (then upload-pack meets ssh -n's end of input).
    expect(asOption.stdout).toMatch(/^[0-9a-f]{4}/);
  });

  it('passthrough (the default) is unchanged: credentials go to the backend, and access rules see HTTP as anonymous', async () => {
    const c = cluster();
    // No auth, no access section: everything as before, credentials included.
    const plain = await startGitha(c, { endpoints: ['http'] });
    // The backends ask for no credentials, so git would send none: send them anyway, as to a backend that wants them.
    const git = GitClient.forCluster(c, { env: { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from('alice:anything').toString('base64')}` } });
    const clone = await git.clone(plain.url('auth/app'));
    await git.commit(clone, { 'p.txt': 'passthrough\n' }, 'passthrough');
    await git.push(clone, 'origin', ['HEAD:refs/heads/passthrough']);
    expect(await c.redis.cli('XREVRANGE', 'githa:repo:{auth/app.git}:log', '+', '-', 'COUNT', '1')).toMatch(/\nuser\nalice\n/);

    // With rules, an unverified name grants nothing: alice is anonymous here, who may read only.
    const ruled = await startGitha(c, { endpoints: ['http'], config: { access: { rules: [{ repos: 'auth/**', users: ['anonymous'], access: 'read' }] } } });
    const again = await git.clone(ruled.url('auth/app'));
    await git.commit(again, { 'q.txt': 'refused\n' }, 'refused');
    const refused = await git.run(['push', 'origin', 'HEAD:refs/heads/refused'], { cwd: again, allowFailure: true });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('remote: githa: anonymous has read-only access to auth/app.git');
    expect((await raw(ruled.httpUrl, 'GET', '/secret/app.git/info/refs?service=git-upload-pack')).status).toBe(404);
  });
});
