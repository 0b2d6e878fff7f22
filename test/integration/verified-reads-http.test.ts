/**
 * Verified reads over smart HTTP (docs/architecture.md "Verified copies"):
 * one backend's copy is changed on disk behind githa's back — wiped,
 * re-initialised, a ref rolled back, a divergent commit added — and every read
 * through githa (ls-remote, clone, fetch; protocol v0 and v2) still gets the
 * recorded refs: the copy's answer is checked before the client sees a byte
 * and the read goes to another leader. Redis records the copy as drifted and
 * `githa_read_retries_total` counts the retries. Repair is not awaited.
 */
import { rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGzip } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { githaCli } from '../cli/run.js';
import { checksumOf, diskRefs, gitDir } from '../support/backend-refs.js';
import { useCluster, type DevBackend, type DevCluster } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { repoKey, waitFor } from '../support/state.js';
import { encodePkts } from '../../src/protocol/pkt-line.js';

const cluster = useCluster({ backends: 3 });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(() => {
  redis?.disconnect();
});

type Fault = 'wiped' | 're-initialised' | 'rolled back' | 'divergent';

/** Changes b2's copy on disk as an operator's accident would. */
/** Changes b2's copy; answers the commit a divergent fault added (the repair must keep it). */
async function corrupt(b: DevBackend, repo: string, fault: Fault): Promise<string | undefined> {
  switch (fault) {
    case 'wiped':
      await rm(b.repoPath(repo), { recursive: true, force: true });
      return;
    case 're-initialised':
      await rm(b.repoPath(repo), { recursive: true, force: true });
      await b.createRepository(repo);
      return;
    case 'rolled back':
      await gitDir(b, repo, ['update-ref', 'refs/heads/main', 'refs/heads/main~1']);
      return;
    case 'divergent': {
      const tree = (await gitDir(b, repo, ['rev-parse', 'refs/heads/main^{tree}'])).trim();
      const commit = (await gitDir(b, repo, ['-c', 'user.name=Other', '-c', 'user.email=other@githa.invalid', 'commit-tree', tree, '-p', 'refs/heads/main', '-m', 'only on b2'])).trim();
      await gitDir(b, repo, ['update-ref', 'refs/heads/main', commit]);
      return commit;
    }
  }
  return undefined;
}

/** A listing without the refs a repair kept (refs/githa/kept/…: part of the record once kept, docs/architecture.md "Kept commits"). */
function withoutKept(refs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(refs).filter(([ref]) => !ref.startsWith('refs/githa/kept/')));
}

/** Pushes two commits on main and one on dev, and waits until every copy holds them and Redis records them alike. */
async function seed(c: DevCluster, githa: GithaProcess, git: GitClient, repo: string): Promise<Record<string, string>> {
  const work = await git.init('work');
  await git.commit(work, { 'README.md': 'one\n' }, 'first');
  await git.commit(work, { 'a.txt': 'two\n' }, 'second');
  await git.push(work, githa.url(repo), ['main', 'main:refs/heads/dev']);
  const good = await diskRefs(c.backend('b1'), repo);
  await waitFor('every copy current and recorded alike', async () => {
    const recorded = await redis.hgetall(repoKey(repo, 'checksums'));
    const versions = await redis.hgetall(repoKey(repo, 'versions'));
    for (const b of c.backends) {
      if (checksumOf(await diskRefs(b, repo)) !== checksumOf(good)) return false;
      if (recorded[b.id] !== checksumOf(good) || versions[b.id] !== versions.b1) return false;
    }
    return true;
  }, 30_000);
  return good;
}

async function retriesCounted(githa: GithaProcess): Promise<number> {
  const text = await (await fetch(`${githa.adminUrl}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^githa_read_retries_total\{reason="(?:missing|empty|contradicts|failed)"\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

const FAULTS: Fault[] = ['wiped', 're-initialised', 'rolled back', 'divergent'];

for (const version of [0, 2] as const) {
  describe(`protocol v${version}`, () => {
    for (const fault of FAULTS) {
      it(`a ${fault} copy is never served: every read gets the recorded refs, the copy is marked drifted`, async () => {
        const c = cluster();
        const repo = `verified-http/${fault.replace(/[^a-z]/g, '-')}-v${version}`;
        await c.createRepository(repo);
        // No verifier: what finds the copy here is the reads.
        const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } } });
        const git = GitClient.forCluster(c, { protocolVersion: version });
        const good = await seed(c, githa, git, repo);
        const main = good['refs/heads/main']!;
        const heads = Object.fromEntries(Object.entries(good).map(([ref, oid]) => [ref.replace('refs/heads/', 'refs/remotes/origin/'), oid]));

        const added = await corrupt(c.backend('b2'), repo, fault);
        expect(checksumOf(fault === 'wiped' ? {} : await diskRefs(c.backend('b2'), repo))).not.toBe(checksumOf(good));

        const fetched = await git.clone(githa.url(repo));
        for (let i = 0; i < 24; i++) {
          switch (i % 4) {
            case 0:
              expect(withoutKept(await git.lsRemote(githa.url(repo)))).toEqual({ HEAD: main, ...good });
              break;
            case 1:
              expect(await git.lsRemote(githa.url(repo), ['refs/heads/main'])).toEqual({ 'refs/heads/main': main });
              break;
            case 2: {
              const dir = await git.clone(githa.url(repo));
              const refs = await git.forEachRef(dir, 'refs/remotes/origin/');
              delete refs['refs/remotes/origin/HEAD'];
              expect(refs).toEqual(heads);
              expect(await git.revParse(dir, 'HEAD')).toBe(main);
              break;
            }
            case 3: {
              await git.run(['update-ref', 'refs/remotes/origin/main', 'refs/remotes/origin/main~1'], { cwd: fetched });
              await git.fetch(fetched, githa.url(repo), ['+refs/heads/*:refs/remotes/origin/*']);
              const refs = await git.forEachRef(fetched, 'refs/remotes/origin/');
              delete refs['refs/remotes/origin/HEAD'];
              expect(refs).toEqual(heads);
              break;
            }
          }
        }

        // b2 answered at least once (reads go round the leaders) and was found out: drifted (the push log's `drift` entry), never served.
        const log = await redis.xrange(repoKey(repo, 'log'), '-', '+');
        const drifts = log.map(([, f]) => Object.fromEntries(f.reduce<[string, string][]>((a, v, i) => (i % 2 ? a : [...a, [v, f[i + 1]!]]), []))).filter((e) => e.event === 'drift');
        expect(drifts.map((e) => e.backend)).toEqual(['b2']);
        if (fault === 'wiped') {
          // githa cannot create a repository on a stock server: b2 stays drifted as missing, with the command in the log.
          expect(await redis.hget(repoKey(repo, 'drift'), 'b2')).toMatch(/^missing \d+( missing)?$/);
        } else {
          // The repair refills b2 (keeping a divergent commit first): it holds the record again and leads.
          await waitFor('b2 repaired', async () => (await redis.hlen(repoKey(repo, 'drift'))) === 0 && checksumOf(await diskRefs(c.backend('b2'), repo)) === checksumOf(await diskRefs(c.backend('b1'), repo)), 20_000);
          if (added) {
            const kept = Object.entries(await diskRefs(c.backend('b1'), repo)).filter(([ref]) => ref.startsWith('refs/githa/kept/b2/'));
            expect(kept.map(([, oid]) => oid)).toEqual([added]);
          }
        }
        expect(await retriesCounted(githa)).toBeGreaterThan(0);
        const requests = githa.logLines().filter((l) => l.msg === 'request' || l.msg === 'request failed');
        expect(requests.length).toBeGreaterThanOrEqual(24);
        expect(requests.filter((l) => l.outcome !== 'ok' && l.service === 'git-upload-pack')).toEqual([]);
        // (Every read above got the recorded refs: b2's contradicting listing never reached a client; once repaired it serves again.)
      });
    }
  });
}

describe('the request log', () => {
  for (const held of [false, true]) {
    it(`never says ok for an upload-pack answer that is an ERR packet (request body ${held ? 'held and replayed' : 'streamed'})`, async () => {
      const c = cluster();
      const repo = `verified-http/err-outcome-${held ? 'held' : 'streamed'}`;
      await c.createRepository(repo);
      // Streamed: no request body is held, so the backend's ERR is relayed as is. Held: every leader is asked, then the client gets the ERR.
      const githa = await startGitha(c, { config: { verify: { intervalMs: 0 }, ...(held ? {} : { read: { maxReplayBodyBytes: 0 } }) } });
      const git = GitClient.forCluster(c);
      await seed(c, githa, git, repo);
      const bogus = 'f'.repeat(40);
      // A v2 fetch of an object no copy has: upload-pack answers "ERR upload-pack: not our ref".
      const body = encodePkts(['command=fetch\n', { type: 'delim' }, 'no-progress\n', `want ${bogus}\n`, 'done\n', { type: 'flush' }]);
      const res = await fetch(`${githa.url(repo)}/git-upload-pack`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-git-upload-pack-request', 'git-protocol': 'version=2' },
        body,
      });
      const text = Buffer.from(await res.arrayBuffer()).toString('latin1');
      expect(text).toMatch(/ERR .*not our ref/);
      const line = await waitFor('the request logged', () =>
        githa.logLines().find((l) => (l.msg === 'request' || l.msg === 'request failed') && l.method === 'POST' && l.service === 'git-upload-pack'),
      );
      expect(line.outcome).not.toBe('ok');
      if (held) {
        // Every leader failed alike: each was asked once, not once more after a reroute that moves no copy.
        expect(await retriesCounted(githa)).toBe(c.backends.length);
      }
    });
  }
});

/**
 * A web server in front of a backend that compresses its answers whenever the
 * request accepts gzip (nginx `gzip on; gzip_types *;`, Apache mod_deflate on
 * every type): git's own client sends `Accept-Encoding` with every request.
 */
async function gzipFront(backendUrl: string, only = /./): Promise<string> {
  const target = new URL(backendUrl);
  const server = createServer((req, res) => {
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const gzip = answer.statusCode === 200 && only.test(req.url ?? '') && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
      const headers = { ...answer.headers };
      if (gzip) {
        delete headers['content-length'];
        headers['content-encoding'] = 'gzip';
      }
      res.writeHead(answer.statusCode ?? 502, headers);
      (gzip ? answer.pipe(createGzip()) : answer).pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${target.pathname}`;
}

describe('a backend that compresses its answers', () => {
  for (const version of [0, 2] as const) {
    it(`is still checked (protocol v${version}): a rolled-back copy behind it is never served`, async () => {
      const c = cluster();
      const repo = `verified-http/gzip-front-v${version}`;
      await c.createRepository(repo);
      // Only its upload-pack answers are compressed here: what is shown is the read.
      const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } }, backends: { b2: { http: await gzipFront(c.backend('b2').httpUrl, /upload-pack/) } } });
      const git = GitClient.forCluster(c, { protocolVersion: version });
      const good = await seed(c, githa, git, repo);
      await corrupt(c.backend('b2'), repo, 'rolled back');
      // Reads go round the three leaders: b2 answers first at least once in three.
      for (let i = 0; i < 6; i++) expect(await git.lsRemote(githa.url(repo))).toEqual({ HEAD: good['refs/heads/main'], ...good });
      // b2 was found out (the push log's `drift` entry); its repair may have refilled it since.
      const log = await redis.xrange(repoKey(repo, 'log'), '-', '+');
      const drifted = log.filter(([, f]) => f.includes('drift')).map(([, f]) => f[f.indexOf('backend') + 1]);
      expect(drifted.length).toBeGreaterThan(0);
      expect(new Set(drifted)).toEqual(new Set(['b2']));
    });
  }

  it('takes a push: its report is read, the push committed, not left interrupted', async () => {
    const c = cluster();
    const repo = 'verified-http/gzip-front-push';
    await c.createRepository(repo);
    const fronts = Object.fromEntries(await Promise.all(c.backends.map(async (b) => [b.id, { http: await gzipFront(b.httpUrl) }] as const)));
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } }, backends: fronts });
    const good = await seed(c, githa, GitClient.forCluster(c), repo);
    expect(Object.keys(good)).toEqual(['refs/heads/dev', 'refs/heads/main']);
  });
});

/**
 * A backend that answers 404 to a user without access to a repository, as
 * hosting products do for a private one (passthrough authentication: the
 * backend decides), and serves everyone else.
 */
async function hidingFront(backendUrl: string, hiddenFrom: string): Promise<string> {
  const target = new URL(backendUrl);
  const server = createServer((req, res) => {
    const user = Buffer.from(String(req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':')[0];
    if (user === hiddenFrom) {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Repository not found\n');
      return;
    }
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${target.pathname}`;
}

describe('passthrough authentication', () => {
  it('a 404 a backend answers to the client\'s own credentials (no access) marks no copy: the repository stays readable', async () => {
    const c = cluster();
    const repo = 'verified-http/hidden-from-mallory';
    await c.createRepository(repo);
    const fronts = Object.fromEntries(await Promise.all(c.backends.map(async (b) => [b.id, { http: await hidingFront(b.httpUrl, 'mallory') }] as const)));
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } }, backends: fronts });
    const git = GitClient.forCluster(c);
    const good = await seed(c, githa, git, repo);
    const mallory = `Basic ${Buffer.from('mallory:guess').toString('base64')}`;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${githa.url(repo)}/info/refs?service=git-upload-pack`, { headers: { authorization: mallory } });
      await res.arrayBuffer();
      expect(res.status, `mallory's read ${i}`).toBe(404);
    }
    expect(await redis.hkeys(repoKey(repo, 'drift'))).toEqual([]);
    expect(await git.lsRemote(githa.url(repo))).toEqual({ HEAD: good['refs/heads/main'], ...good });
  });
});

describe('every copy changed alike (the record is what is stale: Redis restored or failed over, one change made on every host)', () => {
  it('reads fail closed, and the answer names the command that rebuilds the record from the copies, not a lossy demote', async () => {
    const c = cluster();
    const repo = 'verified-http/all-alike';
    await c.createRepository(repo);
    const githa = await startGitha(c, { config: { verify: { intervalMs: 0 } } });
    const git = GitClient.forCluster(c);
    await seed(c, githa, git, repo);
    for (const b of c.backends) await gitDir(b, repo, ['update-ref', 'refs/heads/extra', 'refs/heads/main']);
    const messages: string[] = [];
    for (let i = 0; i < 2; i++) {
      const read = await git.run(['ls-remote', githa.url(repo)], { allowFailure: true });
      expect(read.code, `read ${i}`).not.toBe(0);
      messages.push(read.stderr);
    }
    // The first read finds the copies out one by one; the next one meets a repository whose every leader is drifted.
    expect(messages[1]).toContain(`githa recover ${repo}.git`);
    expect(messages[1]).not.toContain('--demote');
    // The command named does what it says: the record is rebuilt from the copies, and reads are served again.
    const recovered = await githaCli(githa.configPath, ['recover', `${repo}.git`]);
    expect(recovered.code, recovered.stderr).toBe(0);
    const refs = await git.lsRemote(githa.url(repo));
    expect(refs['refs/heads/extra']).toBe(refs['refs/heads/main']);
  });
});
