/**
 * The dev cluster itself: every endpoint of every backend is a working stock
 * Git server (push, clone, fetch; protocol v0 and v2), servers can be killed,
 * restarted, paused and resumed, redis answers, and nothing outlives the
 * cluster (stop(), or the watchdog when the parent process dies).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { PortServer, DevClusterStartError, canConnect, exchange } from '../../src/demo/process.js';
import { startTestCluster, useCluster, type DevBackend, type DevCluster, type EndpointKind } from '../support/cluster.js';
import { GitClient, packetTraceVersion, randomData, sha256 } from '../support/git.js';
import { waitFor } from '../support/wait.js';

const REPO = 'harness/repo';
const KINDS: EndpointKind[] = ['http', 'ssh', 'git'];

const cluster = useCluster({ backends: 2, repositories: [REPO] });

function allPorts(c: DevCluster): number[] {
  return [c.redis.port, ...c.backends.flatMap((b) => [b.ports.http, b.ports.ssh, b.ports.git])];
}

async function noneAccept(ports: number[]): Promise<boolean> {
  const results = await Promise.all(ports.map((port) => canConnect(port, 500)));
  return results.every((ok) => !ok);
}

function pktLine(payload: string): string {
  return (Buffer.byteLength(payload) + 4).toString(16).padStart(4, '0') + payload;
}

/** First bytes each server sends for a minimal request, or null if it does not answer in time. */
function probeBackend(backend: DevBackend, timeoutMs: number): Promise<(string | null)[]> {
  return Promise.all([
    exchange(backend.ports.http, `GET /git/${REPO}.git/info/refs?service=git-upload-pack HTTP/1.0\r\n\r\n`, timeoutMs),
    exchange(backend.ports.ssh, null, timeoutMs),
    exchange(backend.ports.git, pktLine(`git-upload-pack /${REPO}.git\0host=127.0.0.1\0`), timeoutMs),
  ]);
}

describe('every endpoint of every backend is a stock Git server', () => {
  for (const backendIndex of [0, 1]) {
    for (const kind of KINDS) {
      for (const version of [0, 2] as const) {
        it(`b${backendIndex + 1} ${kind} protocol v${version}: push a branch, clone it, fetch an update`, async () => {
          const c = cluster();
          const backend = c.backends[backendIndex]!;
          const other = c.backends[1 - backendIndex]!;
          const git = GitClient.forCluster(c, { protocolVersion: version });
          const url = backend.url(kind, REPO);
          const branch = `${backend.id}-${kind}-v${version}`;
          const ref = `refs/heads/${branch}`;

          expect(await git.negotiatedVersion(url)).toBe(version);

          const work = await git.init();
          const first = await git.commits(work, 2, branch);
          await git.push(work, url, [`HEAD:${ref}`]);
          expect(await git.lsRemote(url, [ref])).toEqual({ [ref]: first });
          // It landed in this backend's directory only (backends are independent).
          const onDisk = await git.run(['--git-dir', backend.repoPath(REPO), 'rev-parse', '--verify', ref]);
          expect(onDisk.stdout.trim()).toBe(first);
          expect(await git.lsRemote(other.url(kind, REPO), [ref])).toEqual({});

          const clone = await git.clone(url, ['--branch', branch, '--single-branch']);
          expect(await git.forEachRef(clone, 'refs/heads/')).toEqual({ [ref]: first });
          expect(await git.run(['log', '--format=%s', '-n', '3'], { cwd: clone })).toMatchObject({
            stdout: `${branch} 2\n${branch} 1\n`,
          });

          const second = await git.commits(work, 1, `${branch}-update`);
          await git.push(work, url, [`HEAD:${ref}`]);
          const fetched = await git.fetch(clone, 'origin', [], [], { tracePackets: true });
          expect(packetTraceVersion(fetched.stderr)).toBe(version);
          expect(await git.forEachRef(clone, 'refs/remotes/origin/')).toEqual({ [`refs/remotes/origin/${branch}`]: second });
          expect(await git.lsRemote(url, [ref])).toEqual({ [ref]: second });
        });
      }
    }
  }

  it('accepts a chunked push of a 3 MiB incompressible file over HTTP', async () => {
    const c = cluster();
    const backend = c.backends[0]!;
    const git = GitClient.forCluster(c);
    const url = backend.url('http', REPO);
    const data = randomData(3 * 1024 * 1024);
    const work = await git.init();
    const sha = await git.commit(work, { 'big.bin': data }, 'big file');
    // git sends request bodies larger than http.postBuffer (default 1 MiB) chunked.
    const pushed = await git.push(work, url, ['HEAD:refs/heads/big'], [], { traceCurl: true });
    expect(pushed.stderr).toMatch(/=> Send header: Transfer-Encoding: chunked/);
    expect(await git.lsRemote(url, ['refs/heads/big'])).toEqual({ 'refs/heads/big': sha });

    const clone = await git.clone(backend.url('http', REPO), ['--branch', 'big', '--single-branch']);
    expect(sha256(readFileSync(join(clone, 'big.bin')))).toBe(sha256(data));
  });
});

describe('server control', () => {
  it('a backend killed with SIGKILL restarts on the same ports and serves again', async () => {
    const c = cluster();
    const backend = c.backends[1]!;
    const git = GitClient.forCluster(c);
    const work = await git.init();
    const sha = await git.commits(work, 1, 'restart');
    await git.push(work, backend.url('git', REPO), ['HEAD:refs/heads/restart']);

    const ports = { ...backend.ports };
    await backend.stop('SIGKILL');
    expect(backend.state).toBe('stopped');
    expect(await noneAccept(Object.values(ports))).toBe(true);
    const failed = await git.run(['ls-remote', backend.url('http', REPO)], { allowFailure: true });
    expect(failed.code).not.toBe(0);

    await backend.start();
    expect(backend.state).toBe('running');
    expect(backend.ports).toEqual(ports);
    for (const kind of KINDS) {
      const clone = await git.clone(backend.url(kind, REPO), ['--branch', 'restart', '--single-branch']);
      expect(await git.forEachRef(clone, 'refs/heads/')).toEqual({ 'refs/heads/restart': sha });
    }

    // An orderly stop (SIGTERM) and start work too.
    await backend.stop();
    expect(await noneAccept(Object.values(ports))).toBe(true);
    await backend.start();
    expect(await git.lsRemote(backend.url('ssh', REPO), ['refs/heads/restart'])).toEqual({ 'refs/heads/restart': sha });
  });

  it('pause() leaves connections unanswered until resume()', async () => {
    const c = cluster();
    const backend = c.backends[0]!;
    const git = GitClient.forCluster(c);

    const before = await probeBackend(backend, 2000);
    expect(before[0]).toMatch(/^HTTP\/1\.[01] 200/);
    expect(before[1]).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(before[2]).toMatch(/^[0-9a-f]{4}/);

    backend.pause();
    expect(backend.state).toBe('paused');
    // The kernel still accepts the connections, but nobody answers.
    expect(await probeBackend(backend, 500)).toEqual([null, null, null]);
    const hung = await git.run(['ls-remote', backend.url('git', REPO)], { allowFailure: true, timeoutMs: 500 });
    expect(hung.code).toBeNull();

    backend.resume();
    expect(backend.state).toBe('running');
    for (const kind of KINDS) {
      await expect(git.lsRemote(backend.url(kind, REPO))).resolves.toBeTypeOf('object');
    }
  });

  it('redis answers PING through ioredis and redis-cli, and restarts on the same port', async () => {
    const c = cluster();
    const client = new Redis(c.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    try {
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      await client.set('githa:harness', 'yes');
    } finally {
      client.disconnect();
    }
    expect(await c.redis.cli('PING')).toBe('PONG');
    expect(await c.redis.cli('GET', 'githa:harness')).toBe('yes');

    const port = c.redis.port;
    await c.redis.stop('SIGKILL');
    expect(await canConnect(port)).toBe(false);
    await c.redis.start();
    expect(c.redis.port).toBe(port);
    expect(await c.redis.cli('PING')).toBe('PONG');
    // No RDB, no AOF: a restarted redis is empty.
    expect(await c.redis.cli('GET', 'githa:harness')).toBe('');
  });

  it('keeps redis data across a restart with redisAof', async () => {
    const c = await startTestCluster({ backends: 0, redisAof: true });
    expect(await c.redis.cli('SET', 'githa:aof', 'kept')).toBe('OK');
    await c.redis.stop();
    await c.redis.start();
    expect(await c.redis.cli('GET', 'githa:aof')).toBe('kept');
  });
});

describe('lifecycle', () => {
  // Speed is measured by `npm run bench` (docs/performance.md), not asserted by tests.
  it('starts a 3-backend cluster; stop() closes every port and removes the directory', async () => {
    const c = await startTestCluster({ backends: 3 });

    const ports = allPorts(c);
    expect(new Set(ports).size).toBe(10);
    expect((await Promise.all(ports.map((port) => canConnect(port)))).every(Boolean)).toBe(true);
    expect(readFileSync(c.ssh.knownHostsPath, 'utf8').trim().split('\n')).toHaveLength(3);

    await c.stop();
    await c.stop(); // idempotent
    expect(await noneAccept(ports)).toBe(true);
    expect(existsSync(c.dir)).toBe(false);
  });

  it('the watchdog kills the servers and removes the directory when the parent process dies', async () => {
    const parent = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const c = await startTestCluster({ backends: 1, parentPid: parent.pid });
      const ports = allPorts(c);
      expect(await noneAccept(ports)).toBe(false);
      parent.kill('SIGKILL');
      await waitFor('the servers to die', () => noneAccept(ports), 5000);
      await waitFor('the directory to be removed', () => !existsSync(c.dir), 5000);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('the watchdog kills the servers after the maximum lifetime', async () => {
    const c = await startTestCluster({ backends: 1, redis: false, maxLifetimeMs: 2000 });
    const ports = Object.values(c.backends[0]!.ports);
    await waitFor('the servers to die', () => noneAccept(ports), 5000);
    expect(() => c.redis).toThrow(/redis: false/);
  });

  it('a server that fails to start reports the tail of its log', async () => {
    const c = await startTestCluster({ backends: 0, redis: false });
    const server = new PortServer({
      name: 'broken',
      logFile: join(c.dir, 'broken.log'),
      build: () => ({ command: 'sh', args: ['-c', 'echo "fatal: the sky is falling" >&2; exit 3'] }),
    });
    const error: unknown = await server.start().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(DevClusterStartError);
    expect((error as Error).message).toMatch(/broken failed to start.*exited with code 3[\s\S]*fatal: the sky is falling/);
  });
});
