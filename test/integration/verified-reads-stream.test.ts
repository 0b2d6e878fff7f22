/**
 * Verified reads over SSH and git:// (docs/architecture.md "Verified copies",
 * "SSH and git:// reads"): a copy changed behind githa's back is never served.
 * Against real sshd and git daemon backends, real git clients (protocol v0
 * and v2) and a real Redis, one backend's copy (b2) is wiped, re-initialised,
 * rolled back by one ref, or given a divergent commit; then every read through
 * githa (ls-remote, clone, fetch) succeeds with the recorded refs, and the
 * copy is recorded as drifted in Redis.
 *
 * b2 is met deterministically: githa orders the leaders round robin
 * (src/cluster/routing.ts planRead), so one of any three consecutive reads of
 * a repository goes to b2 first while it still leads.
 */
import { rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { EMPTY_CHECKSUM } from '../../src/cluster/checksum.js';
import { encodePkts } from '../../src/protocol/pkt-line.js';
import { useCluster, type DevBackend, type DevCluster } from '../support/cluster.js';
import { checksumOf, diskRefs, gitDir, refOnDisk } from '../support/backend-refs.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { maxOf } from '../support/state.js';
import { waitFor } from '../support/wait.js';

const BACKENDS = ['b1', 'b2', 'b3'];
const READS = 12;

const cluster = useCluster({ backends: 3 });
let githa: GithaProcess;
let redis: Redis;

beforeAll(async () => {
  redis = new Redis(cluster().redis.url, { maxRetriesPerRequest: 1 });
  // No verifier: the reads themselves must find the changed copy.
  githa = await startGitha(cluster(), { ssh: true, git: true, keep: true, config: { verify: { intervalMs: 0 } } });
});

afterAll(async () => {
  await githa?.stop();
  redis?.disconnect();
});

const key = (repo: string, what: string): string => `githa:repo:{${repo}.git}:${what}`;

/** Waits until every backend holds `sha` on main, at the highest version, with its recorded checksum. */
async function allCurrent(c: DevCluster, repo: string, sha: string): Promise<void> {
  await waitFor(`every copy of ${repo} current`, async () => {
    const versions = Object.fromEntries(Object.entries(await redis.hgetall(key(repo, 'versions'))).map(([b, v]) => [b, Number(v)]));
    const checksums = await redis.hgetall(key(repo, 'checksums'));
    for (const id of BACKENDS) {
      const b = c.backend(id);
      if ((await refOnDisk(b, repo, 'refs/heads/main')) !== sha) return false;
      if (versions[id] !== maxOf(versions) || checksums[id] !== checksumOf(await diskRefs(b, repo))) return false;
    }
    return true;
  }, 20_000);
}

type Scenario = 'wiped' | 're-initialised' | 'rolled back' | 'divergent';

/** Changes b2's copy behind githa's back; answers the commit a divergent change added (the repair must keep it). */
async function breakCopy(b2: DevBackend, repo: string, scenario: Scenario, first: string): Promise<string | undefined> {
  switch (scenario) {
    case 'wiped':
      rmSync(b2.repoPath(repo), { recursive: true, force: true });
      return;
    case 're-initialised':
      rmSync(b2.repoPath(repo), { recursive: true, force: true });
      await b2.createRepository(repo);
      return;
    case 'rolled back':
      await gitDir(b2, repo, ['update-ref', 'refs/heads/main', first]);
      return;
    case 'divergent': {
      const tree = (await gitDir(b2, repo, ['rev-parse', 'refs/heads/main^{tree}'])).trim();
      const ident = ['-c', 'user.name=Elsewhere', '-c', 'user.email=elsewhere@githa.invalid'];
      const commit = (await gitDir(b2, repo, [...ident, 'commit-tree', tree, '-p', 'refs/heads/main', '-m', 'only on b2'])).trim();
      await gitDir(b2, repo, ['update-ref', 'refs/heads/main', commit]);
      return commit;
    }
  }
  return undefined;
}

/** A listing without the refs a repair kept (refs/githa/kept/…: part of the record once kept, docs/architecture.md "Kept commits"). */
function withoutKept(refs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(refs).filter(([ref]) => !ref.startsWith('refs/githa/kept/')));
}

const heads = (refs: Record<string, string>, prefix: string): Record<string, string> =>
  Object.fromEntries(Object.entries(refs).filter(([name]) => name.startsWith(prefix) && !name.endsWith('/HEAD')).map(([name, oid]) => [`refs/heads/${name.slice(prefix.length)}`, oid]));

describe.each(['ssh', 'git'] as const)('upload-pack over %s', (transport) => {
  describe.each([0, 2] as const)('protocol v%i', (version) => {
    it.each(['wiped', 're-initialised', 'rolled back', 'divergent'] as const)('a %s copy is never served, and is recorded as drifted', async (scenario) => {
      const c = cluster();
      const repo = `verified/${transport}-v${version}-${scenario.replace(/\W+/g, '-')}`;
      await c.createRepository(repo);
      const git = GitClient.forCluster(c, { protocolVersion: version, knownHostsPath: githa.knownHostsPath });
      const work = await git.init();
      const first = await git.commit(work, { 'a.txt': 'first\n' }, 'first');
      await git.run(['branch', 'side'], { cwd: work });
      const second = await git.commit(work, { 'a.txt': 'second\n' }, 'second');
      await git.push(work, githa.url(repo), ['main', 'side']);
      await allCurrent(c, repo, second);
      const recorded = await diskRefs(c.backend('b1'), repo);
      expect(recorded).toEqual({ 'refs/heads/main': second, 'refs/heads/side': first });
      const recordedB2 = (await redis.hgetall(key(repo, 'checksums'))).b2;
      expect(recordedB2).toBe(checksumOf(recorded));

      const b2 = c.backend('b2');
      const added = await breakCopy(b2, repo, scenario, first);

      const url = transport === 'ssh' ? githa.sshUrl(repo) : githa.gitUrl(repo);
      const fetcher = await git.init('fetcher');
      for (let i = 0; i < READS; i++) {
        const what = `read ${i} (${['ls-remote', 'clone', 'fetch'][i % 3]})`;
        if (i % 3 === 0) {
          const refs = withoutKept(await git.lsRemote(url));
          expect(refs, what).toEqual({ HEAD: second, ...recorded });
        } else if (i % 3 === 1) {
          const clone = await git.clone(url);
          expect(heads(await git.forEachRef(clone, 'refs/remotes/origin/'), 'refs/remotes/origin/'), what).toEqual(recorded);
          expect(await git.revParse(clone, 'HEAD'), what).toBe(second);
        } else {
          await git.fetch(fetcher, url, ['+refs/heads/*:refs/remotes/r/*']);
          expect(heads(await git.forEachRef(fetcher, 'refs/remotes/r/'), 'refs/remotes/r/'), what).toEqual(recorded);
        }
      }

      // The copy that contradicted its record was found by a read (the push log's `drift` entry) and led no more.
      const log = await redis.xrange(key(repo, 'log'), '-', '+');
      const drifts = log.map(([, f]) => Object.fromEntries(f.reduce<[string, string][]>((a, v, i) => (i % 2 ? a : [...a, [v, f[i + 1]!]]), []))).filter((e) => e.event === 'drift');
      expect(drifts.map((e) => e.backend)).toEqual(['b2']);
      if (scenario === 'wiped') expect(drifts[0]!.checksum).toBe('missing');
      else if (scenario === 're-initialised') expect(drifts[0]!.checksum).toBe(EMPTY_CHECKSUM);
      if (scenario === 'wiped') {
        // githa cannot create a repository on a stock server: b2 stays drifted as missing.
        expect(await redis.hget(key(repo, 'drift'), 'b2')).toMatch(/^missing \d+( missing)?$/);
      } else {
        // The repair refills b2 (keeping a divergent commit first): it holds the record again.
        await waitFor('b2 repaired', async () => (await redis.hlen(key(repo, 'drift'))) === 0 && checksumOf(await diskRefs(b2, repo)) === checksumOf(await diskRefs(c.backend('b1'), repo)), 20_000);
        if (added) {
          const kept = Object.entries(await diskRefs(c.backend('b1'), repo)).filter(([ref]) => ref.startsWith('refs/githa/kept/b2/'));
          expect(kept.map(([, oid]) => oid)).toEqual([added]);
        }
      }
    });
  });
});

describe('a git:// client that sends a v2 command without its end', () => {
  it('is not held past read.maxReplayBodyBytes: its bytes go on to the backend, which answers them', async () => {
    const c = cluster();
    const repo = 'verified/unended-command';
    await c.createRepository(repo);
    const socket = connect(githa.gitPort!, '127.0.0.1');
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let got = Buffer.alloc(0);
    const advertised = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.includes('0000')) resolve();
      }),
    );
    socket.write(encodePkts([`git-upload-pack /${repo}.git\0host=127.0.0.1\0\0version=2\0`]));
    await advertised;
    expect(got.toString('latin1')).toContain('version 2');
    // An unknown command and 2 MiB (twice the default read.maxReplayBodyBytes) of packets, never a flush:
    // githa holds at most read.maxReplayBodyBytes of it, then passes it on, and upload-pack refuses the command and ends.
    const filler = 'x'.repeat(65_000);
    socket.write(encodePkts(['command=no-such-command\n', ...Array.from({ length: 32 }, () => filler)]));
    let timer: NodeJS.Timeout | undefined;
    const held = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('githa still holds the client\'s unended command')), 20_000);
    });
    try {
      await Promise.race([closed, held]);
    } finally {
      clearTimeout(timer);
      socket.destroy();
    }
  });
});

describe.each(['ssh', 'git'] as const)('a v2 fetch of exact objects over %s (no ls-refs first: a partial clone\'s lazy fetch, `git fetch <sha>`)', (transport) => {
  it('is answered by a leader that holds them, not by a re-initialised copy', async () => {
    const c = cluster();
    const repo = `verified/${transport}-fetch-by-oid`;
    await c.createRepository(repo);
    const git = GitClient.forCluster(c, { protocolVersion: 2, knownHostsPath: githa.knownHostsPath });
    const work = await git.init();
    await git.commit(work, { 'a.txt': 'first\n' }, 'first');
    const second = await git.commit(work, { 'a.txt': 'second\n' }, 'second');
    await git.push(work, githa.url(repo), ['main']);
    await allCurrent(c, repo, second);
    await breakCopy(c.backend('b2'), repo, 're-initialised', second);

    const url = transport === 'ssh' ? githa.sshUrl(repo) : githa.gitUrl(repo);
    // Reads go round the three leaders: b2 is asked first once in three.
    for (let i = 0; i < 3; i++) {
      const dir = await git.init(`by-oid-${i}`);
      await git.fetch(dir, url, [second], ['--no-tags']);
      expect(await git.revParse(dir, 'FETCH_HEAD'), `fetch ${i}`).toBe(second);
    }
    // An object no copy has: every leader answers alike, and the client gets that answer.
    const bogus = await git.fetch(await git.init('bogus'), url, ['f'.repeat(40)], ['--no-tags'], { allowFailure: true });
    expect(bogus.code).not.toBe(0);
    expect(bogus.stderr).toMatch(/not our ref/);
  });
});

/**
 * A git daemon in front of b2's that drops every connection for `repo`
 * without a byte, as git daemon does past its --max-connections ("Too many
 * children, dropping connection"), and relays every other one.
 */
async function droppingDaemon(realGitUrl: string, repo: string): Promise<string> {
  const real = new URL(realGitUrl);
  const server = createServer((client) => {
    client.on('error', () => {});
    client.once('data', (first: Buffer) => {
      if (first.toString('latin1').includes(repo)) {
        client.destroy();
        return;
      }
      const up = connect(Number(real.port), real.hostname, () => {
        up.write(first);
        client.pipe(up).pipe(client);
      });
      up.on('error', () => client.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `git://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('a git daemon that drops a connection without a byte (past its --max-connections)', () => {
  it('is not taken for a missing copy: the read goes to another leader, and no copy is marked drifted', async () => {
    const c = cluster();
    const repo = 'verified/dropped-connections';
    await c.createRepository(repo);
    const own = await startGitha(c, { git: true, config: { verify: { intervalMs: 0 } }, backends: { b2: { git: await droppingDaemon(c.backend('b2').gitUrl, repo) } } });
    const git = GitClient.forCluster(c, { protocolVersion: 0 });
    const work = await git.init();
    const sha = await git.commit(work, { 'a.txt': 'one\n' }, 'one');
    await git.push(work, own.url(repo), ['main']);
    await allCurrent(c, repo, sha);
    // Reads go round the three leaders: b2 is asked first once in three.
    for (let i = 0; i < 3; i++) expect(await git.lsRemote(own.gitUrl(repo)), `read ${i}`).toEqual({ HEAD: sha, 'refs/heads/main': sha });
    expect(await redis.hkeys(key(repo, 'drift'))).toEqual([]);
  });
});
