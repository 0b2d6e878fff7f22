/**
 * Backend health checks against real servers (design: "Failure modes";
 * docs/config.md `health.*`, docs/redis.md `githa:backend:<id>`):
 *
 * - each transport's probe (HTTP ref advertisement, SSH greeting, git://
 *   connect) passes on a live backend and fails with BackendUnavailableError
 *   on a stopped one; an HTTP 5xx or a silent server is a failure, a 404 is not;
 * - a githa process marks a stopped backend down in Redis and in its log,
 *   keeps serving reads from the others, and marks it up once it is back;
 * - a hung (SIGSTOPped) backend goes down through probe timeouts;
 * - a githa that starts while another shares a backend as down starts with it
 *   down; a stopped githa writes nothing more;
 * - shared-health writes survive a Redis outage (one warn, one info).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GitDaemonBackendClient } from '../../src/backends/git-daemon.js';
import { HttpBackendClient } from '../../src/backends/http.js';
import { SshBackendClient } from '../../src/backends/ssh.js';
import type { BackendClient } from '../../src/backends/types.js';
import { BackendUnavailableError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { BackendHealthStore } from '../../src/state/backend-health.js';
import { Keys } from '../../src/state/keys.js';
import { connectRedis } from '../../src/state/redis.js';
import { useCluster, type DevBackend } from '../support/cluster.js';
import { GitClient } from '../support/git.js';
import { startGitha, type GithaProcess } from '../support/githa.js';
import { waitFor } from '../support/state.js';

/** Fast checks, so the test sees transitions within a few seconds. */
const FAST = { intervalMs: 200, timeoutMs: 500, failuresToDown: 2, successesToUp: 2, ttlMs: 3_000 };


/** Listens on a free loopback port; the server and its connections are closed when the test finishes. */
function listen(server: HttpServer | TcpServer): Promise<number> {
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
  });
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  );
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe('backend health checks', () => {
  const cluster = useCluster({ backends: 3 });

  async function shared(id: string): Promise<Record<string, string>> {
    const out = await cluster().redis.cli('HGETALL', `githa:backend:${id}`);
    const lines = out.split('\n');
    const map: Record<string, string> = {};
    for (let i = 0; i + 1 < lines.length; i += 2) map[lines[i]!] = lines[i + 1]!;
    return map;
  }

  async function sharedIs(id: string, health: 'up' | 'down', by?: string): Promise<Record<string, string> | undefined> {
    const h = await shared(id);
    return h.health === health && (by === undefined || h['health.by'] === by) ? h : undefined;
  }

  function transitions(githa: GithaProcess, backend: string): string[] {
    return githa
      .logLines()
      .filter((l) => l.backend === backend && (l.msg === 'backend down' || l.msg === 'backend up'))
      .map((l) => String(l.msg));
  }

  function clients(b: DevBackend, timeoutMs = 5_000): BackendClient[] {
    const c = cluster();
    const list = [
      new HttpBackendClient({ id: b.id, baseUrl: b.httpUrl, timeoutMs }),
      new SshBackendClient({ id: b.id, url: b.sshUrl, privateKey: c.ssh.clientKeyPath, knownHosts: c.ssh.knownHostsPath, timeoutMs }),
      new GitDaemonBackendClient({ id: b.id, url: b.gitUrl, timeoutMs }),
    ];
    onTestFinished(() => Promise.all(list.map((x) => x.close())).then(() => undefined));
    return list;
  }

  describe('probes', () => {
    it('pass on a live backend on every transport, and fail clearly on a stopped one', async () => {
      const b2 = cluster().backend('b2');
      const list = clients(b2);
      for (const client of list) await expect(client.probe(AbortSignal.timeout(5_000))).resolves.toBeUndefined();

      await b2.stop('SIGKILL');
      for (const client of list) {
        const err = await client.probe(AbortSignal.timeout(5_000)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect((err as BackendUnavailableError).backendId).toBe('b2');
        expect((err as Error).message).toMatch(/^backend b2: (HTTP|SSH|git:\/\/) probe failed: .*ECONNREFUSED/);
      }

      await b2.start();
      for (const client of list) await expect(client.probe(AbortSignal.timeout(5_000))).resolves.toBeUndefined();
    });

    it('HTTP: a 5xx answer is a failure, a 404 or 401 is a live server, credentials are sent', async () => {
      let status = 503;
      const seen: Array<{ url: string | undefined; auth: string | undefined }> = [];
      const server = createHttpServer((req, res) => {
        seen.push({ url: req.url, auth: req.headers.authorization });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end('x'.repeat(10_000));
      });
      const port = await listen(server);
      const client = new HttpBackendClient({ id: 'fake', baseUrl: `http://127.0.0.1:${port}/git/`, auth: { username: 'svc', password: 's3cret' }, timeoutMs: 5_000 });
      onTestFinished(() => client.close());

      const err = await client.probe(AbortSignal.timeout(2_000)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect((err as Error).message).toBe('backend fake: HTTP probe answered 503');
      expect((err as Error).message).not.toContain('s3cret');
      for (const s of [404, 401, 200]) {
        status = s;
        await expect(client.probe(AbortSignal.timeout(2_000))).resolves.toBeUndefined();
      }
      status = 500;
      await expect(client.probe(AbortSignal.timeout(2_000))).rejects.toThrow(/answered 500/);
      // A live server gets the GET, then the chunked POST (411 check): 1 + 3 × 2 + 1.
      expect(seen.length).toBe(8);
      expect(new Set(seen.map((s) => s.url))).toEqual(
        new Set(['/git/githa-health-probe.git/info/refs?service=git-upload-pack', '/git/githa-health-probe.git/git-upload-pack']),
      );
      expect(new Set(seen.map((s) => s.auth))).toEqual(new Set([`Basic ${Buffer.from('svc:s3cret').toString('base64')}`]));
    });

    it('a server that accepts but never answers fails within the probe time limit', async () => {
      const silent = createTcpServer(() => {});
      const port = await listen(silent);
      const probes: BackendClient[] = [
        new HttpBackendClient({ id: 'mute', baseUrl: `http://127.0.0.1:${port}/`, timeoutMs: 30_000 }),
        new SshBackendClient({ id: 'mute', url: `ssh://git@127.0.0.1:${port}/srv`, privateKey: Buffer.from(''), knownHosts: '/nonexistent', timeoutMs: 30_000 }),
      ];
      onTestFinished(() => Promise.all(probes.map((p) => p.close())).then(() => undefined));
      for (const p of probes) {
        const started = Date.now();
        const err = await p.probe(AbortSignal.timeout(300)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BackendUnavailableError);
        expect((err as Error).message).toMatch(/probe failed: timed out/);
        expect(Date.now() - started).toBeLessThan(2_000);
      }
    });

    it('SSH: a server that greets with something other than SSH-2.0 fails', async () => {
      const server = createTcpServer((s) => {
        s.on('error', () => {});
        s.end('SSH-1.5-ancient\r\n');
      });
      const port = await listen(server);
      const ssh = new SshBackendClient({ id: 'old', url: `ssh://git@127.0.0.1:${port}/srv`, privateKey: Buffer.from(''), knownHosts: '/nonexistent', timeoutMs: 2_000 });
      onTestFinished(() => ssh.close());
      await expect(ssh.probe()).rejects.toThrow(/backend old: SSH probe failed: unexpected greeting "SSH-1\.5-ancient"/);
    });
  });

  describe('a githa process', () => {
    it('marks a stopped backend down in Redis and its log, keeps serving reads, and marks it up once it is back', async () => {
      const repo = 'health/stop-start';
      await cluster().createRepository(repo);
      const git = GitClient.forCluster(cluster());
      const work = await git.init('seed');
      const sha = await git.commit(work, { 'README.md': 'health\n' }, 'seed');
      for (const b of cluster().backends) await git.push(work, b.url('http', repo), ['main']);

      const githa = await startGitha(cluster(), { proxyId: 'health-1', config: { health: FAST } });
      for (const id of ['b1', 'b2', 'b3']) {
        const h = await waitFor(`${id} shared as up`, () => sharedIs(id, 'up', 'health-1'));
        expect(Number(h['health.expires']) - Number(h['health.at'])).toBe(FAST.ttlMs);
        expect(h['health.detail']).toBe('');
      }
      await git.lsRemote(githa.url(repo));

      await cluster().backend('b2').stop('SIGKILL');
      const stoppedAt = Date.now();
      const down = await waitFor('b2 shared as down', () => sharedIs('b2', 'down', 'health-1'), 5_000);
      expect(Date.now() - stoppedAt).toBeLessThan(5_000);
      expect(down['health.detail']).toMatch(/HTTP probe failed/);
      expect(down['health.detail']).toMatch(/SSH probe failed/);
      expect(Number(down['health.expires'])).toBeGreaterThan(Date.now());
      await waitFor('the down transition in the log', () => (transitions(githa, 'b2').includes('backend down') ? true : undefined));
      const logged = githa.logLines().find((l) => l.msg === 'backend down' && l.backend === 'b2')!;
      expect(logged.level).toBe(40);
      expect((await shared('b1')).health).toBe('up');

      // Reads go on from b1 and b3, and none is tried on b2.
      const seen = githa.logLines().length;
      for (let i = 0; i < 4; i++) {
        const clone = await git.clone(githa.url(repo));
        expect(await git.forEachRef(clone, 'refs/remotes/origin/main')).toEqual({ 'refs/remotes/origin/main': sha });
      }
      const served = githa
        .logLines()
        .slice(seen)
        .filter((l) => l.msg === 'request' && l.repo === `${repo}.git`);
      expect(served.length).toBeGreaterThanOrEqual(8);
      expect(served.filter((l) => l.backend === 'b2' || l.status !== 200)).toEqual([]);

      await cluster().backend('b2').start();
      await waitFor('b2 shared as up again', () => sharedIs('b2', 'up', 'health-1'), 5_000);
      expect(transitions(githa, 'b2')).toEqual(['backend down', 'backend up']);
      expect(transitions(githa, 'b1')).toEqual([]);
    });

    it('marks a hung (SIGSTOPped) backend down through probe timeouts', async () => {
      const githa = await startGitha(cluster(), { proxyId: 'health-2', config: { health: FAST } });
      await waitFor('b3 shared as up', () => sharedIs('b3', 'up', 'health-2'));
      cluster().backend('b3').pause();
      const down = await waitFor('b3 shared as down', () => sharedIs('b3', 'down', 'health-2'), 5_000);
      expect(down['health.detail']).toMatch(/timed out/);
      cluster().backend('b3').resume();
      await waitFor('b3 shared as up again', () => sharedIs('b3', 'up', 'health-2'), 5_000);
      expect(transitions(githa, 'b3')).toEqual(['backend down', 'backend up']);
    });

    it('starts with a backend down that another githa shares as down, and writes nothing once stopped', async () => {
      const first = await startGitha(cluster(), { proxyId: 'health-3', config: { health: FAST } });
      await cluster().backend('b1').stop('SIGKILL');
      await waitFor('b1 shared as down', () => sharedIs('b1', 'down', 'health-3'), 5_000);

      // This githa's own probes would need 1000 failures: only the shared result can make b1 down at once.
      const second = await startGitha(cluster(), { proxyId: 'health-4', config: { health: { ...FAST, failuresToDown: 1000 } } });
      const seeded = second.logLines().find((l) => l.msg === 'backend starts down: another githa sees it down');
      expect(seeded).toMatchObject({ backend: 'b1', by: 'health-3' });
      await waitFor('health-4 shares b1 as down', () => sharedIs('b1', 'down', 'health-4'), 5_000);

      // A stopped githa (SIGTERM: a clean close) leaves nothing running that writes: close() stops the checker and
      // the process exits by itself (code 0, not the harness's SIGKILL after 5 s), so no probe or timer outlives it;
      // and a probe cut short by the close wrote nothing (the last word on b1 is a real probe's failure).
      await second.stop();
      await first.stop();
      for (const g of [second, first]) {
        expect(g.proc.exitCode, g.configPath).toBe(0);
        expect(g.logLines().map((l) => l.msg)).toContain('stopping');
      }
      const last = await shared('b1');
      expect(last).toMatchObject({ health: 'down', 'health.by': expect.stringMatching(/^health-[34]$/) });
      expect(last['health.detail']).toMatch(/probe failed/);
      expect(last['health.detail']).not.toMatch(/abort/i);
    });
  });

  it('shared health writes survive a Redis outage, with one warn and one info', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const redis = connectRedis(cluster().redis.url, { commandTimeoutMs: 300 });
    onTestFinished(() => redis.disconnect());
    const store = new BackendHealthStore(redis, new Keys('githa:'), { proxyId: 'store-test', ttlMs: 10_000, log: createLogger('info', sink) });
    await waitFor('redis ready', () => (redis.status === 'ready' ? true : undefined));
    expect(await store.write('bx', false, 'refused')).toBe(true);
    expect(await store.readFresh(['bx', 'by'])).toEqual(
      new Map([['bx', { id: 'bx', up: false, at: expect.any(Number), by: 'store-test', detail: 'refused', expires: expect.any(Number) }]]),
    );

    cluster().redis.pause();
    try {
      expect(await store.write('bx', true)).toBe(false);
      expect(await store.write('bx', true)).toBe(false);
      expect((await store.readFresh(['bx'])).size).toBe(0);
    } finally {
      cluster().redis.resume();
    }
    await waitFor('a write after the outage', async () => ((await store.write('bx', true)) ? true : undefined));
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      [40, 'cannot share backend health in Redis; probing goes on'],
      [30, 'sharing backend health in Redis again'],
    ]);
    expect((await shared('bx')).health).toBe('up');
    await cluster().redis.cli('DEL', 'githa:backend:bx');
  });
});
