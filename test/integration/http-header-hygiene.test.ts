/**
 * What a client's request may carry to a backend (issue 19 items 7 and 9, HTTP):
 *
 * - Identity and forwarding headers (`X_Remote_User`, `Remote-User`,
 *   `X-Forwarded-For`, `Forwarded`, headers named in `Connection`, the
 *   configured auth.http.userHeader in any spelling) never reach the backend's
 *   CGI environment; githa's own X-Forwarded-For (the real client address) and,
 *   in mode githa, the verified user do. Seen where it matters: a pre-receive
 *   hook in each backend's repository records the `HTTP_*` variables that
 *   lighttpd gave `git http-backend` (a hook inherits them), for a real `git
 *   push` through githa.
 * - A GET listing that declares a body, an upload-pack body with broken
 *   pkt-lines, and `service=git-upload-archive` are refused with a clear 4xx,
 *   touching no backend and not Redis (test/support/untouched.ts).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bcrypt } from 'hash-wasm';
import { describe, expect, it } from 'vitest';
import type { DevCluster } from '../../src/demo/cluster.js';
import { useCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha } from '../support/githa.js';
import { exchange, raw, untouched } from '../support/untouched.js';

const QUIET = { verify: { intervalMs: 0 } };

/** Headers a client may try to pass itself off with; none may reach a backend. */
const FORGED = [
  'X_Remote_User: root',
  'Remote-User: root',
  'X-Forwarded-User: root',
  'X-Forwarded-For: 203.0.113.9',
  'X-Forwarded-Host: evil.example',
  'X-Forwarded-Proto: https',
  'Forwarded: for=203.0.113.9;proto=https',
  'X-Real-IP: 203.0.113.9',
  'X.Auth.Name: root',
  'Connection: X-Hop-Secret',
  'X-Hop-Secret: root',
];

/** CGI variables that carry nothing of the client's: each is absent or githa's own. */
const NOT_FROM_CLIENT = ['HTTP_REMOTE_USER', 'HTTP_X_FORWARDED_USER', 'HTTP_FORWARDED', 'HTTP_X_REAL_IP', 'HTTP_X_AUTH_NAME', 'HTTP_X_HOP_SECRET'];

/** A pre-receive hook in every backend's copy of `repo` appends the HTTP_* variables it was run with to `<dir>/env-<id>.log`. */
function recordEnvironments(c: DevCluster, repo: string): () => Array<Record<string, string>> {
  const files = c.backends.map((b) => join(c.dir, `env-${b.id}-${randomBytes(3).toString('hex')}.log`));
  c.backends.forEach((b, i) => {
    const hook = join(b.repoPath(repo), 'hooks', 'pre-receive');
    writeFileSync(hook, `#!/bin/sh\ncat >/dev/null\n{ env | grep '^HTTP_'; echo '--'; } >> '${files[i]!}'\nexit 0\n`);
    chmodSync(hook, 0o755);
  });
  return () =>
    files
      .filter((f) => existsSync(f))
      .flatMap((f) => readFileSync(f, 'utf8').split('--\n'))
      .filter((block) => block.trim() !== '')
      .map((block) => Object.fromEntries(block.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
}

/** `git push` with `headers` on every request (http.extraHeader); the environment the push's hook saw, found by a marker header. */
async function pushWith(c: DevCluster, url: string, headers: string[], recorded: () => Array<Record<string, string>>): Promise<Record<string, string>> {
  const marker = randomBytes(6).toString('hex');
  const all = [...headers, `X-Test-Marker: ${marker}`];
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(all.length) };
  all.forEach((h, i) => {
    env[`GIT_CONFIG_KEY_${i}`] = 'http.extraHeader';
    env[`GIT_CONFIG_VALUE_${i}`] = h;
  });
  const git = GitClient.forCluster(c, { env });
  const work = await git.workdir();
  await git.run(['clone', url, work]);
  await git.commit(work, { [`${marker}.txt`]: 'x\n' }, `push ${marker}`);
  await git.run(['push', 'origin', `HEAD:refs/heads/b-${marker}`], { cwd: work });
  const seen = recorded().filter((e) => e.HTTP_X_TEST_MARKER === marker);
  expect(seen, `the client's push ran a backend hook: ${JSON.stringify(recorded())}`).toHaveLength(1);
  return seen[0]!;
}

describe('headers a backend sees, and requests githa refuses before a backend does', () => {
  const cluster = useCluster({ backends: 2 });

  it('passthrough: no identity or forwarding header of the client reaches git http-backend; githa sets X-Forwarded-For', async () => {
    const c = cluster();
    const repo = 'hdr/pass';
    await c.createRepository(repo);
    const recorded = recordEnvironments(c, repo);
    const githa = await startGitha(c, { endpoints: ['http'], config: { ...QUIET, auth: { http: { userHeader: 'X-Auth-Name' } } } });
    const env = await pushWith(c, githa.url(repo), FORGED, recorded);
    for (const name of NOT_FROM_CLIENT) expect(env[name], name).toBeUndefined();
    // The client's address as githa's socket saw it, not what the client claimed.
    expect(env.HTTP_X_FORWARDED_FOR).toBe('127.0.0.1');
    expect(env.HTTP_X_FORWARDED_PROTO).toBe('http');
    expect(env.HTTP_X_FORWARDED_HOST).not.toBe('evil.example');
    // Passthrough verifies nobody: no user header at all.
    expect(env.HTTP_X_REMOTE_USER).toBeUndefined();
  });

  it('mode githa: the backend sees the verified user, never a forged one in another spelling', async () => {
    const c = cluster();
    const repo = 'hdr/githa';
    await c.createRepository(repo);
    const recorded = recordEnvironments(c, repo);
    const usersFile = join(c.dir, `githa-users-${randomBytes(3).toString('hex')}`);
    writeFileSync(usersFile, `alice:${await bcrypt({ password: 'alice-pw', salt: randomBytes(16), costFactor: 4, outputType: 'encoded' })}\n`);
    const githa = await startGitha(c, { endpoints: ['http'], config: { ...QUIET, auth: { http: { mode: 'githa', usersFile, userHeader: 'X-Remote-User' } } } });
    const alice = `Authorization: Basic ${Buffer.from('alice:alice-pw').toString('base64')}`;
    const env = await pushWith(c, githa.url(repo), [alice, 'X-Remote-User: root', ...FORGED], recorded);
    expect(env.HTTP_X_REMOTE_USER).toBe('alice');
    // X.Auth.Name is no configured header here: it passes, as any header githa has no meaning for.
    for (const name of NOT_FROM_CLIENT.filter((n) => n !== 'HTTP_X_AUTH_NAME')) expect(env[name], name).toBeUndefined();
    expect(env.HTTP_X_FORWARDED_FOR).toBe('127.0.0.1');

    // Anonymous upload-archive over HTTP: a clear refusal, not "check backends[].httpAuth", and nothing touched.
    await untouched(c, githa, async () => {
      for (const path of [`/${repo}.git/info/refs?service=git-upload-archive`]) {
        const r = await raw(githa.httpUrl, 'GET', path);
        expect(r.status, r.body.toString()).toBe(400);
        expect(r.body.toString()).toMatch(/git-upload-archive is not served over HTTP/);
        expect(r.body.toString()).not.toMatch(/httpAuth/);
      }
      const post = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-upload-archive`, Buffer.from('0000'), { 'content-type': 'application/x-git-upload-archive-request' });
      expect(post.status, post.body.toString()).toBe(400);
      expect(post.body.toString()).toMatch(/git-upload-archive is not served over HTTP/);
    });
  });

  it('refuses a GET listing with a body and an upload-pack body with broken pkt-lines, touching no backend', async () => {
    const c = cluster();
    const repo = 'hdr/frame';
    await c.createRepository(repo);
    const githa = await startGitha(c, { endpoints: ['http'], config: { ...QUIET, replication: { background: false } } });
    const git = GitClient.forCluster(c);
    // githa knows the repository, so a request that reached routing would have something to read.
    const refs = await git.lsRemote(githa.url(repo));
    const port = Number(new URL(githa.httpUrl).port);
    const listing = `/${repo}.git/info/refs?service=git-upload-pack`;
    const valid = Buffer.from('0014command=ls-refs\n', 'latin1');
    await untouched(c, githa, async () => {
      const lengthed = await raw(githa.httpUrl, 'GET', listing, Buffer.from('hello'));
      expect(lengthed.status, lengthed.body.toString()).toBe(400);
      expect(lengthed.body.toString()).toMatch(/githa: a GET request must not have a body/);
      const chunked = await exchange(port, Buffer.from(`GET ${listing} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 'latin1'));
      expect(chunked.data.toString('latin1')).toMatch(/^HTTP\/1\.1 400 [^]*githa: a GET request must not have a body/);
      for (const broken of ['ffff', 'zzzz', '0003']) {
        const body = Buffer.concat([valid, Buffer.from(`${broken}${'x'.repeat(16)}`, 'latin1')]);
        const r = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-upload-pack`, body, { 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' });
        expect(r.status, `${broken}: ${r.body.toString()}`).toBe(400);
        expect(r.body.toString(), broken).toMatch(/githa: (invalid pkt-line|pkt-line length)/);
      }
      // A body that stops inside a packet.
      const cut = await raw(githa.httpUrl, 'POST', `/${repo}.git/git-upload-pack`, Buffer.concat([valid, Buffer.from('0032want', 'latin1')]), { 'content-type': 'application/x-git-upload-pack-request' });
      expect(cut.status, cut.body.toString()).toBe(400);
      expect(cut.body.toString()).toMatch(/truncated pkt-line/);
    });
    // githa still serves.
    expect(await git.lsRemote(githa.url(repo))).toEqual(refs);
  });
});
