/**
 * githa's Git clients over stateful transports against real backends: sshd
 * running git-upload-pack / git-receive-pack (SshBackendClient) and
 * `git daemon --enable=receive-pack` (GitDaemonBackendClient), and the
 * catch-up relay (catchUp()) between them, recorded in a real Redis.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitDaemonBackendClient } from '../../src/backends/git-daemon.js';
import { SshBackendClient } from '../../src/backends/ssh.js';
import type { StreamGitClient } from '../../src/backends/stream-client.js';
import { catchUp, copyRepository } from '../../src/cluster/catch-up.js';
import { EMPTY_CHECKSUM, refsChecksum } from '../../src/cluster/checksum.js';
import { BackendUnavailableError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { PktLineDecoder, pktText } from '../../src/protocol/pkt-line.js';
import { connectRedis, redisReady, type RedisClient } from '../../src/state/redis.js';
import { copyDeps, testState } from '../support/copy-deps.js';
import type { StateParts } from '../../src/state/state.js';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient, writeRandomFile } from '../support/git.js';
import { gitDir, diskRefs, fullRefs, checksumOf } from '../support/backend-refs.js';
import { waitFor } from '../support/wait.js';

const execFileP = promisify(execFile);
const cluster = useCluster({ backends: 3 });
const log = createLogger('silent');
const TIMEOUT = 15_000;

// ---- helpers ----------------------------------------------------------------

function sshClient(b: DevBackend, extra: Partial<ConstructorParameters<typeof SshBackendClient>[0]> = {}): SshBackendClient {
  const c = cluster();
  return new SshBackendClient({
    id: b.id,
    url: b.sshUrl,
    privateKey: c.ssh.clientKeyPath,
    knownHosts: c.ssh.knownHostsPath,
    timeoutMs: TIMEOUT,
    ...extra,
  });
}

function gitClient(b: DevBackend): GitDaemonBackendClient {
  return new GitDaemonBackendClient({ id: b.id, url: b.gitUrl, timeoutMs: TIMEOUT });
}





/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function acceptedLogins(b: DevBackend): number {
  return (readFileSync(b.logs.ssh, 'utf8').match(/Accepted publickey/g) ?? []).length;
}

/** Pids of the processes whose parent is `pid` (from /proc). */
async function childrenOf(pid: number): Promise<number[]> {
  const { stdout } = await execFileP('ps', ['-o', 'pid=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

// ---- the clients on their own ------------------------------------------------

describe.each(['ssh', 'git'] as const)('%s client against a stock backend', (transport) => {
  let client: StreamGitClient;
  let main = '';
  let tag = '';

  beforeAll(async () => {
    const c = cluster();
    const b1 = c.backend('b1');
    client = transport === 'ssh' ? sshClient(b1) : gitClient(b1);
    await c.createRepository(`${transport}/full`);
    await c.createRepository(`${transport}/empty`);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    main = await git.commits(work, 2, 'history');
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    tag = await git.revParse(work, 'refs/tags/v1');
    await git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', `${transport}/full`)], { cwd: work });
  });

  afterAll(async () => {
    await client?.close();
  });

  it('lists the refs of a repository (protocol v2 ls-refs), of an empty one, and null for a missing one', async () => {
    const refs = await client.listRefs(`${transport}/full.git`);
    expect(refs).toEqual(
      expect.arrayContaining([
        { name: 'HEAD', oid: main },
        { name: 'refs/heads/main', oid: main },
        { name: 'refs/tags/v1', oid: tag },
      ]),
    );
    expect(refs).toHaveLength(3);
    expect(refsChecksum(refs!)).toBe(checksumOf(await diskRefs(cluster().backend('b1'), `${transport}/full`)));
    expect(await client.listRefs(`${transport}/empty.git`)).toEqual([]);
    expect(await client.listRefs(`${transport}/missing.git`)).toBeNull();
  });

  it("reads receive-pack's advertisement, and null for a missing repository", async () => {
    const adv = await client.receivePackAdvertisement(`${transport}/full.git`);
    expect(adv?.refs).toEqual([
      { name: 'refs/heads/main', oid: main },
      { name: 'refs/tags/v1', oid: tag },
    ]);
    expect(adv?.capabilities).toEqual(expect.arrayContaining(['report-status', 'delete-refs', 'atomic', 'ofs-delta']));
    const empty = await client.receivePackAdvertisement(`${transport}/empty.git`);
    expect(empty?.refs).toEqual([]);
    expect(empty?.capabilities).toContain('report-status');
    expect(await client.receivePackAdvertisement(`${transport}/missing.git`)).toBeNull();
  });

  it('passes the protocol on: v2 when asked, v0 otherwise', async () => {
    const first = async (protocol: string | undefined): Promise<string> => {
      const stream = await client.openService(`${transport}/full.git`, 'git-upload-pack', { protocol });
      const decoder = new PktLineDecoder();
      let text: string | undefined;
      stream.stdin.end(Buffer.from('0000')); // v2: end of session; v0: no wants
      for await (const chunk of stream.stdout) {
        decoder.write(chunk as Buffer);
        const pkt = decoder.next();
        if (pkt?.type === 'data') {
          text = pktText(pkt.payload);
          break; // tears the stream down
        }
      }
      await stream.exit;
      if (text === undefined) throw new Error('no packet');
      return text;
    };
    expect(await first('version=2')).toBe('version 2');
    expect(await first(undefined)).toMatch(new RegExp(`^${main} HEAD\0`));
  });

  it('fetches a pack (v2 fetch with done) as a stream', async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of client.fetchPack(`${transport}/full.git`, [main, tag], [])) chunks.push(chunk);
    const pack = Buffer.concat(chunks);
    expect(pack.subarray(0, 4).toString('latin1')).toBe('PACK');
    // 2 commits, 2 trees, 2 blobs (one file changed twice), 1 tag.
    expect(pack.readUInt32BE(8)).toBe(7);
  });
});

// ---- catch-up over SSH and git:// ---------------------------------------------

describe('catchUp() over SSH and git://', () => {
  let redis: RedisClient;
  let store: StateParts;
  const clients: StreamGitClient[] = [];

  beforeAll(async () => {
    redis = connectRedis(cluster().redis.url, { commandTimeoutMs: 5_000 });
    expect(await redisReady(redis, 5_000)).toBe(true);
    store = testState(redis);
  });

  afterAll(async () => {
    for (const client of clients) await client.close();
    redis?.disconnect();
  });

  function over(kind: 'ssh' | 'git', id: string): StreamGitClient {
    const b = cluster().backend(id);
    const client = kind === 'ssh' ? sshClient(b) : gitClient(b);
    clients.push(client);
    return client;
  }

  async function seed(repo: string, state: Record<string, [number, string]>): Promise<void> {
    const k = store.keys;
    await redis.del(k.versions(repo), k.checksums(repo));
    for (const [b, [v, sum]] of Object.entries(state)) {
      await redis.hset(k.versions(repo), b, v);
      await redis.hset(k.checksums(repo), b, sum);
    }
  }

  /** Catches `target` up from `source` (whose refs are `source` on disk, recorded at `version`); checks disk and Redis. */
  async function copyAndCheck(
    repo: string,
    source: { client: StreamGitClient; backend: DevBackend },
    target: { client: StreamGitClient; backend: DevBackend },
    version: number,
    expectCommands: number,
  ): Promise<number> {
    const refs = await diskRefs(source.backend, repo);
    const sum = checksumOf(refs);
    const targetSum = checksumOf(await diskRefs(target.backend, repo));
    await seed(`${repo}.git`, { [source.backend.id]: [version, sum], [target.backend.id]: [version - 1, targetSum] });
    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: source.client, target: target.client, version, checksum: sum });
    expect(out).toMatchObject({ status: 'ok', commands: expectCommands });
    expect(await diskRefs(target.backend, repo)).toEqual(refs);
    expect(await fullRefs(target.backend, repo)).toBe(await fullRefs(source.backend, repo));
    expect(await redis.hget(store.keys.versions(`${repo}.git`), target.backend.id)).toBe(String(version));
    expect(await redis.hget(store.keys.checksums(`${repo}.git`), target.backend.id)).toBe(sum);
    return out.status === 'ok' ? out.bytes : 0;
  }

  it('SSH to SSH: creates, updates and deletes refs (annotated tags included), then only deletes', async () => {
    const c = cluster();
    const [b1, b2] = [c.backend('b1'), c.backend('b2')];
    const repo = 'cu/ssh-ssh';
    await c.createRepository(repo);
    const source = { client: over('ssh', 'b1'), backend: b1 };
    const target = { client: over('ssh', 'b2'), backend: b2 };
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commits(work, 3, 'history');
    await git.run(['branch', 'side'], { cwd: work });
    await git.run(['branch', 'doomed'], { cwd: work });
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    await git.run(['tag', 'light', 'HEAD~1'], { cwd: work });
    const mirror = (): Promise<unknown> => git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', repo)], { cwd: work });
    await mirror();

    // Fill the empty target: 5 creations.
    expect(await copyAndCheck(repo, source, target, 3, 5)).toBeGreaterThan(0);
    await gitDir(b2, repo, ['fsck', '--no-dangling']);

    // Update main, delete a branch, add an annotated tag, move a lightweight one.
    await git.commits(work, 2, 'more');
    await git.run(['branch', '-D', 'doomed'], { cwd: work });
    await git.run(['tag', '-a', 'v2', '-m', 'v2'], { cwd: work });
    await git.run(['tag', '-f', 'light', 'HEAD'], { cwd: work });
    await mirror();
    await copyAndCheck(repo, source, target, 4, 4);
    await gitDir(b2, repo, ['fsck', '--no-dangling']);

    // Only deletions: no pack at all.
    await git.run(['branch', '-D', 'side'], { cwd: work });
    await git.run(['tag', '-d', 'v1'], { cwd: work });
    await mirror();
    expect(await copyAndCheck(repo, source, target, 5, 2)).toBe(0);
  });

  it('git:// to SSH, and SSH to git://', async () => {
    const c = cluster();
    const [b1, b2, b3] = [c.backend('b1'), c.backend('b2'), c.backend('b3')];
    const repo = 'cu/mixed';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commits(work, 2, 'one');
    await git.run(['tag', '-a', 'v1', '-m', 'v1'], { cwd: work });
    await git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', repo)], { cwd: work });

    // b1 (git://) → b2 (SSH)
    await copyAndCheck(repo, { client: over('git', 'b1'), backend: b1 }, { client: over('ssh', 'b2'), backend: b2 }, 2, 2);
    // b2 (SSH) → b3 (git://, receive-pack enabled)
    await copyAndCheck(repo, { client: over('ssh', 'b2'), backend: b2 }, { client: over('git', 'b3'), backend: b3 }, 2, 2);
    await gitDir(b3, repo, ['fsck', '--no-dangling']);

    // An update, git:// → git://.
    await git.commits(work, 1, 'two');
    await git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', repo)], { cwd: work });
    await copyAndCheck(repo, { client: over('git', 'b1'), backend: b1 }, { client: over('git', 'b3'), backend: b3 }, 3, 1);
  });

  it('relays a multi-MB pack without corrupting it', async () => {
    const c = cluster();
    const [b1, b3] = [c.backend('b1'), c.backend('b3')];
    const repo = 'cu/big';
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    for (let i = 0; i < 4; i++) await writeRandomFile(join(work, `blob-${i}.bin`), 2 * 1024 * 1024);
    await git.run(['add', '.'], { cwd: work });
    await git.run(['commit', '--quiet', '-m', 'big'], { cwd: work });
    await git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', repo)], { cwd: work });
    const bytes = await copyAndCheck(repo, { client: over('ssh', 'b1'), backend: b1 }, { client: over('ssh', 'b3'), backend: b3 }, 2, 1);
    expect(bytes).toBeGreaterThan(8 * 1024 * 1024);
    await gitDir(b3, repo, ['fsck', '--full', '--no-dangling']);
  });

  /** b1 with one commit on main; b2 with that plus branch `newer`: b2 moved ahead (a quorum copy of a later push). */
  async function aheadPair(repo: string): Promise<{ older: string; newer: string; newerRefs: Record<string, string> }> {
    const c = cluster();
    const [b1, b2] = [c.backend('b1'), c.backend('b2')];
    await c.createRepository(repo);
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await git.commits(work, 1, 'one');
    await git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', repo)], { cwd: work });
    const older = checksumOf(await diskRefs(b1, repo));
    await git.run(['branch', 'newer'], { cwd: work });
    await git.run(['push', '--quiet', '--mirror', '--', b2.url('ssh', repo)], { cwd: work });
    const newerRefs = await diskRefs(b2, repo);
    return { older, newer: checksumOf(newerRefs), newerRefs };
  }

  // The chaos run in CI on 2026-11-23: push 4's late quorum copy b2 → b3
  // waited on b2 (paused) while push 5 reached b3 and was acknowledged; the
  // copy then went on and turned b3's refs back to push 4 (its record was
  // refused, the refs were not): reads from b3, a leader, missed push 5.
  it('a catch-up planned from older state does not turn back a target that moved ahead meanwhile', async () => {
    const repo = 'cu/ahead';
    const { older, newer, newerRefs } = await aheadPair(repo);
    await seed(`${repo}.git`, { b1: [1, older], b2: [2, newer] });
    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: over('ssh', 'b1'), target: over('ssh', 'b2'), version: 1, checksum: older });
    expect(out).toEqual({ status: 'not-recorded', reason: 'current' });
    expect(await diskRefs(cluster().backend('b2'), repo)).toEqual(newerRefs);
    // The same for a write's quorum copy still running after the next push reached its target.
    const late = await copyRepository(store.pairs, { repo: `${repo}.git`, source: over('ssh', 'b1'), target: over('ssh', 'b2'), version: 2, checksum: older, hold: true });
    expect(late).toEqual({ status: 'current', code: 'current', reason: 'b2 is at version 2 already' });
    expect(await diskRefs(cluster().backend('b2'), repo)).toEqual(newerRefs);
    expect(await redis.exists(store.keys.pairLock(`${repo}.git`, 'b2'))).toBe(0);
    expect(await redis.hget(store.keys.versions(`${repo}.git`), 'b2')).toBe('2');
  });

  it('a copy not yet recorded keeps its pair lock (renewed past its lease) until released: a catch-up meanwhile is busy', async () => {
    const repo = 'cu/held';
    const { older, newer, newerRefs } = await aheadPair(repo);
    // b2 got the next push's quorum copy, not yet recorded: Redis still says b2 is stale.
    await seed(`${repo}.git`, { b1: [1, older], b2: [0, older] });
    const b1 = cluster().backend('b1');
    const held = await copyRepository(store.pairs, { repo: `${repo}.git`, source: over('ssh', 'b2'), target: over('ssh', 'b1'), checksum: newer, pairLockMs: 300, hold: true });
    expect(held.status).toBe('copied');
    expect(checksumOf(await diskRefs(b1, repo))).toBe(newer);
    await new Promise((r) => setTimeout(r, 1_000)); // > 3 leases: renewed, not expired
    // b1 holds refs Redis does not record yet: a catch-up planned from that older record must wait.
    const meanwhile = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: over('ssh', 'b2'), target: over('ssh', 'b1'), version: 1, checksum: older });
    expect(meanwhile).toEqual({ status: 'busy' });
    expect(checksumOf(await diskRefs(b1, repo))).toBe(newer);
    if (held.status === 'copied') await held.release();
    expect(await redis.exists(store.keys.pairLock(`${repo}.git`, 'b1'))).toBe(0);
    expect(await diskRefs(cluster().backend('b2'), repo)).toEqual(newerRefs);
  });

  // Issue 15 item 1: a copy is fenced. This githa stalls (event loop
  // blocked, Redis reply delayed) after taking the copy lock, past its lease;
  // meanwhile another githa takes the pair, records an acknowledged branch on
  // the target, and lets go. Before the fence, the stalled copy read the
  // target's advertisement afterwards, planned a delete of that branch with
  // its current id, and git's compare-and-swap let it through.
  it('a copy that stalled past its lease does not delete what another githa recorded on the target meanwhile', async () => {
    const repo = 'cu/fenced';
    await cluster().createRepository(repo);
    const git = GitClient.forCluster(cluster());
    const b1 = cluster().backend('b1');
    const b2 = cluster().backend('b2');
    const work = await git.init();
    await git.commits(work, 1, 'one');
    await git.run(['push', '--quiet', '--mirror', '--', b2.url('ssh', repo)], { cwd: work });
    const older = checksumOf(await diskRefs(b2, repo));
    await git.commits(work, 1, 'two');
    await git.run(['push', '--quiet', '--mirror', '--', b1.url('ssh', repo)], { cwd: work });
    const newer = checksumOf(await diskRefs(b1, repo));
    await seed(`${repo}.git`, { b1: [2, newer], b2: [1, older] });

    const source = over('ssh', 'b1');
    const stalled = Object.create(source) as StreamGitClient;
    let stalls = 0;
    stalled.listRefs = async (r, signal) => {
      if (stalls++ === 0) {
        // The lease runs out while this githa stands still: the other githa's turn.
        await redis.del(store.keys.pairLock(`${repo}.git`, 'b2'));
        await git.run(['push', '--quiet', '--', b2.url('ssh', repo), 'HEAD~1:refs/heads/acknowledged'], { cwd: work });
        const acked = checksumOf(await diskRefs(b2, repo));
        await redis.hset(store.keys.versions(`${repo}.git`), 'b2', 3);
        await redis.hset(store.keys.checksums(`${repo}.git`), 'b2', acked);
      }
      return source.listRefs(r, signal);
    };
    const out = await catchUp(copyDeps(store, log), { repo: `${repo}.git`, source: stalled, target: over('ssh', 'b2'), version: 2, checksum: newer }).catch((e: unknown) => e);
    expect(stalls).toBe(1);
    expect(out).toBeInstanceOf(Error);
    expect((out as Error).message).toMatch(/copy lock .* lost/);
    // The acknowledged branch and b2's recorded state are what the other githa left.
    const acknowledged = (await git.run(['rev-parse', 'HEAD~1'], { cwd: work })).stdout.trim();
    expect((await diskRefs(b2, repo))['refs/heads/acknowledged']).toBe(acknowledged);
    expect(await redis.hget(store.keys.versions(`${repo}.git`), 'b2')).toBe('3');
  });

  it('EMPTY_CHECKSUM is what an empty repository lists', async () => {
    const c = cluster();
    await c.createRepository('cu/blank');
    expect(refsChecksum((await over('ssh', 'b2').listRefs('cu/blank.git'))!)).toBe(EMPTY_CHECKSUM);
  });
});

// ---- the pooled SSH connection ------------------------------------------------

describe('SshBackendClient connection', () => {
  it('runs many requests one after another on one SSH connection; more at once open a few more', async () => {
    const c = cluster();
    const b2 = c.backend('b2');
    await c.createRepository('pool/one');
    const client = sshClient(b2, { maxChannels: 4, maxConnections: 2 });
    try {
      const before = acceptedLogins(b2);
      for (let i = 0; i < 25; i++) expect(await client.listRefs('pool/one.git')).toEqual([]);
      expect(client.connections).toBe(1);
      expect(acceptedLogins(b2) - before).toBe(1);
      // 12 at once: 4 channels per connection, 2 connections, the rest wait for a free channel.
      const answers = await Promise.all(Array.from({ length: 12 }, () => client.receivePackAdvertisement('pool/one.git')));
      expect(answers.every((a) => a?.refs.length === 0)).toBe(true);
      // The 5th request found every channel busy and started a second connection; on a loaded machine the 12 answers
      // may all come over the first before that SSH handshake ends, so the test waits for the connection to be made.
      await waitFor('a second SSH connection', () => client.connections === 2 || undefined, 10_000);
      expect(client.connections).toBe(2);
      expect(acceptedLogins(b2) - before).toBe(2);
    } finally {
      await client.close();
    }
  });

  it('frees the channel when the consumer of a fetch stops early', async () => {
    const c = cluster();
    const b2 = c.backend('b2');
    await c.createRepository('pool/early');
    const git = GitClient.forCluster(c);
    const work = await git.init();
    await writeRandomFile(join(work, 'big.bin'), 3 * 1024 * 1024);
    const head = await git.commit(work, {}, 'big');
    await git.run(['push', '--quiet', '--mirror', '--', b2.url('ssh', 'pool/early')], { cwd: work });
    // One channel only: a leaked one would make the next request wait and time out.
    const client = sshClient(b2, { maxChannels: 1, maxConnections: 1, timeoutMs: 5_000 });
    try {
      for await (const chunk of client.fetchPack('pool/early.git', [head], [])) {
        expect(chunk.length).toBeGreaterThan(0);
        break;
      }
      expect(await client.listRefs('pool/early.git')).toHaveLength(2);
    } finally {
      await client.close();
    }
  });

  it('reconnects after the backend’s sshd was killed and restarted', async () => {
    const c = cluster();
    const b3 = c.backend('b3');
    await c.createRepository('pool/restart');
    const client = sshClient(b3, { timeoutMs: 5_000 });
    try {
      expect(await client.listRefs('pool/restart.git')).toEqual([]);
      // sshd serves each connection in a child of its own session: kill those too.
      const sshdPid = Number(readFileSync(join(b3.root, '..', 'sshd.pid'), 'utf8').trim());
      const sessions = await childrenOf(sshdPid);
      await b3.stop('SIGKILL');
      for (const pid of sessions) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone with the process group
        }
      }
      await expect(client.listRefs('pool/restart.git')).rejects.toBeInstanceOf(BackendUnavailableError);
      await b3.start();
      expect(await client.listRefs('pool/restart.git')).toEqual([]);
      expect(client.connections).toBe(2);
    } finally {
      await client.close();
    }
  });

  it('accepts hashed known_hosts entries', async () => {
    const c = cluster();
    const b1 = c.backend('b1');
    const hashed = join(c.dir, 'ssh', 'known_hosts.hashed');
    writeFileSync(hashed, readFileSync(c.ssh.knownHostsPath));
    await execFileP('ssh-keygen', ['-q', '-H', '-f', hashed]);
    expect(readFileSync(hashed, 'utf8')).toMatch(/^\|1\|/);
    await c.createRepository('pool/hashed');
    const client = sshClient(b1, { knownHosts: hashed });
    try {
      expect(await client.listRefs('pool/hashed.git')).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('refuses a backend whose host key is not the one in known_hosts', async () => {
    const c = cluster();
    const [b1, b2] = [c.backend('b1'), c.backend('b2')];
    const wrong = join(c.dir, 'ssh', 'known_hosts.wrong');
    // b2's host key, claimed for b1's address.
    writeFileSync(wrong, `[127.0.0.1]:${b1.ports.ssh} ${b2.sshHostPublicKey.split(' ').slice(0, 2).join(' ')}\n`);
    const client = sshClient(b1, { knownHosts: wrong });
    try {
      const err = await client.listRefs('pool/any.git').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toMatch(new RegExp(`HOST KEY MISMATCH for \\[127\\.0\\.0\\.1\\]:${b1.ports.ssh}`));
      // Not a word of Git was sent: another backend may be tried.
      expect((err as BackendUnavailableError).bytesSent).toBe(false);
    } finally {
      await client.close();
    }
    const unknown = join(c.dir, 'ssh', 'known_hosts.other');
    writeFileSync(unknown, `[127.0.0.1]:${b2.ports.ssh} ${b2.sshHostPublicKey.split(' ').slice(0, 2).join(' ')}\n`);
    const client2 = sshClient(b1, { knownHosts: unknown });
    try {
      await expect(client2.listRefs('pool/any.git')).rejects.toThrow(/no host key for \[127\.0\.0\.1\]:\d+/);
    } finally {
      await client2.close();
    }
  });

  it('gives BackendUnavailableError after timeoutMs for a hung backend (SIGSTOP)', async () => {
    const c = cluster();
    const b3 = c.backend('b3');
    await c.createRepository('pool/hung');
    const ssh = sshClient(b3, { timeoutMs: 1_000 });
    const gitd = new GitDaemonBackendClient({ id: b3.id, url: b3.gitUrl, timeoutMs: 1_000 });
    b3.pause(); // the kernel still accepts connections; nothing answers
    try {
      for (const client of [ssh, gitd]) {
        const started = performance.now();
        const err = await client.listRefs('pool/hung.git').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect(performance.now() - started).toBeLessThan(3_000);
      }
    } finally {
      b3.resume();
      await ssh.close();
      await gitd.close();
    }
  });

  it('gives BackendUnavailableError quickly for an unreachable backend', async () => {
    const port = await closedPort();
    const c = cluster();
    const known = join(c.dir, 'ssh', 'known_hosts.closed');
    writeFileSync(known, `[127.0.0.1]:${port} ${c.backend('b1').sshHostPublicKey.split(' ').slice(0, 2).join(' ')}\n`);
    const ssh = new SshBackendClient({ id: 'gone', url: `ssh://root@127.0.0.1:${port}/srv`, privateKey: c.ssh.clientKeyPath, knownHosts: known, timeoutMs: TIMEOUT });
    const gitd = new GitDaemonBackendClient({ id: 'gone', url: `git://127.0.0.1:${port}`, timeoutMs: TIMEOUT });
    try {
      for (const client of [ssh, gitd]) {
        const started = performance.now();
        const err = await client.listRefs('x.git').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect((err as BackendUnavailableError).backendId).toBe('gone');
        expect((err as BackendUnavailableError).bytesSent).toBe(false);
        expect(performance.now() - started).toBeLessThan(2_000);
      }
    } finally {
      await ssh.close();
      await gitd.close();
    }
  });
});

