/**
 * The transport side of a fan-out push (docs/architecture.md "A push
 * (receive-pack)", "SSH and git://"): one push sent to the target and to
 * ForwardHooks.copies at once, against real backends (lighttpd + http-backend,
 * sshd, git daemon). The cluster side (which copies, the marker) is not
 * under test here: a stub cluster's write() calls the front end's forward
 * with the copies named, and keeps the ForwardResult it gets.
 */
import { readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessPolicy } from '../../src/auth/access.js';
import { GitDaemonBackendClient } from '../../src/backends/git-daemon.js';
import { SshBackendClient } from '../../src/backends/ssh.js';
import type { StreamBackendClient } from '../../src/backends/types.js';
import type { Cluster } from '../../src/cluster/cluster.js';
import { NO_OBSERVER } from '../../src/cluster/observer.js';
import type { Backend, CopyForward, ForwardResult } from '../../src/cluster/types.js';
import { buildConfig } from '../../src/config/load.js';
import { createGitDaemonFrontend } from '../../src/frontends/git-daemon/server.js';
import { Forwarder } from '../../src/frontends/http/forward.js';
import { handleReceivePack } from '../../src/frontends/http/receive-pack.js';
import { useCluster, type DevCluster } from '../support/cluster.js';
import { GitClient, randomData } from '../support/git.js';

const REPO = 'team/app.git';
const MB = 1024 * 1024;

/** What the stub cluster does on a write: the target, the copies, and the results it was given. */
interface Plan {
  target: Backend;
  copies: Backend[];
  stallMs: number;
  results: ForwardResult[];
  /** What hooks.commands answers: whether the marker holds the commands (default true). */
  recorded?: boolean;
}

function stubCluster(plan: () => Plan): Cluster {
  return {
    config: { push: { minBytesPerSecond: 0, rateWindowMs: 0, maxTransferMs: 0 } },
    observer: NO_OBSERVER,
    write: async (_w: unknown, forward: (t: Backend, s: AbortSignal, h: unknown) => Promise<ForwardResult>) => {
      const p = plan();
      const result = await forward(p.target, new AbortController().signal, { commands: async () => p.recorded ?? true, copies: p.copies, stallMs: p.stallMs });
      p.results.push(result);
      return { kind: 'committed', version: 1, backend: p.target.id };
    },
  } as unknown as Cluster;
}

/** A logger whose lines are kept (the copy's drop is told at warn). */
function keptLog(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { log: pino({ level: 'warn' }, dest), lines };
}

async function holds(b: { repoPath(r: string): string }, git: GitClient, ref: string): Promise<string | undefined> {
  try {
    return (await git.run(['--git-dir', b.repoPath(REPO), 'rev-parse', '--verify', '--end-of-options', ref])).stdout.trim();
  } catch {
    return undefined;
  }
}

async function withHook(c: DevCluster, id: string, run: () => Promise<void>): Promise<void> {
  const hook = join(c.backend(id).repoPath(REPO), 'hooks', 'pre-receive');
  await writeFile(hook, '#!/bin/sh\necho "refused by the test hook" >&2\nexit 1\n');
  await chmod(hook, 0o755);
  try {
    await run();
  } finally {
    await rm(hook, { force: true });
  }
}

async function procBytes(field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`no ${field} in /proc/self/status`);
  return Number(m[1]) * 1024;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const okReport = (ref: string): Partial<CopyForward> => ({ ending: 'complete', report: { unpackOk: true, refs: [expect.objectContaining({ ref, ok: true })] } as never });

describe('fan-out push over HTTP', () => {
  const cluster = useCluster({ backends: 3, redis: false, repositories: [REPO] });
  let server: Server;
  let url: string;
  let plan: Plan;
  let logged: string[];
  let git: GitClient;
  const forwarder = new Forwarder({ timeoutMs: 60_000 });
  /** The client's request on the last push (its socket's bytesRead: what githa took in). */
  let lastReq: { socket: { bytesRead: number } } | undefined;
  const http = (id: string): Backend => ({ id, http: cluster().backend(id).httpUrl }) as unknown as Backend;

  beforeAll(async () => {
    git = GitClient.create({ baseDir: join(cluster().dir, 'fan-out-http') });
    const { log, lines } = keptLog();
    logged = lines;
    const stub = stubCluster(() => plan);
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname.endsWith('/info/refs')) {
        // The advertisement, straight from the target.
        forwarder.send(req, res, { baseUrl: plan.target.http!, backendId: plan.target.id, path: `team/app/info/refs${u.search}` }).then(
          (fwd) => {
            res.writeHead(fwd.res.statusCode ?? 502, { 'content-type': String(fwd.res.headers['content-type'] ?? '') });
            fwd.res.pipe(res);
          },
          () => res.destroy(),
        );
        return;
      }
      lastReq = req;
      handleReceivePack({ req, res, repo: REPO, user: 'tester', cluster: stub, forwarder, log, maxCommands: 1000 }).catch(() => res.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${REPO}`;
  });
  /** What githa took in of the push, once it has stopped taking any (10 polls in a row unchanged). */
  function stalled(): Promise<number> {
    let last = -1;
    let still = 0;
    return until('the push to stall', () => {
      const n = lastReq?.socket.bytesRead ?? -1;
      still = n === last && n > 0 ? still + 1 : 0;
      last = n;
      return still >= 10 ? n : undefined;
    });
  }

  afterAll(async () => {
    forwarder.close();
    await new Promise((r) => server?.close(r));
  });

  it('sends one push to the target and both copies: the client gets the target\'s report, every backend holds the commit, each copy\'s report is ok', async () => {
    plan = { target: http('b1'), copies: [http('b2'), http('b3')], stallMs: 5_000, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'a.txt': 'fan out\n' });
    const pushed = await git.push(work, url, ['HEAD:refs/heads/fan-http']);
    expect(pushed.stdout).toContain('refs/heads/fan-http');
    for (const id of ['b1', 'b2', 'b3']) expect(await holds(cluster().backend(id), git, 'refs/heads/fan-http')).toBe(sha);
    const result = plan.results[0]!;
    expect(result.ending).toBe('complete');
    expect(result.report?.refs).toEqual([expect.objectContaining({ ref: 'refs/heads/fan-http', ok: true })]);
    expect(Object.fromEntries(result.copies!)).toEqual({ b2: okReport('refs/heads/fan-http'), b3: okReport('refs/heads/fan-http') });
  });

  it('a copy whose pre-receive hook refuses reports ng while the target and the client succeed', async () => {
    plan = { target: http('b1'), copies: [http('b2'), http('b3')], stallMs: 5_000, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'b.txt': 'refused on b3\n' });
    await withHook(cluster(), 'b3', async () => {
      await git.push(work, url, ['HEAD:refs/heads/fan-ng']);
    });
    expect(await holds(cluster().backend('b1'), git, 'refs/heads/fan-ng')).toBe(sha);
    expect(await holds(cluster().backend('b2'), git, 'refs/heads/fan-ng')).toBe(sha);
    expect(await holds(cluster().backend('b3'), git, 'refs/heads/fan-ng')).toBeUndefined();
    const copies = plan.results[0]!.copies!;
    expect(copies.get('b2')).toEqual(okReport('refs/heads/fan-ng'));
    expect(copies.get('b3')?.ending).toBe('complete');
    expect(copies.get('b3')?.report?.refs).toEqual([expect.objectContaining({ ref: 'refs/heads/fan-ng', ok: false })]);
  });

  it('drops a copy whose web server is stopped (SIGSTOP) after stallMs, taking in no more of the push meanwhile; it never gets the commit', { timeout: 180_000 }, async () => {
    const SIZE = 48 * MB;
    const stallMs = 3_000;
    plan = { target: http('b1'), copies: [http('b2'), http('b3')], stallMs, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'big.bin': randomData(SIZE) });
    const b3 = cluster().backend('b3');
    b3.pause();
    lastReq = undefined;
    const before = logged.length;
    const push = git.push(work, url, ['HEAD:refs/heads/fan-stall'], [], { timeoutMs: 150_000 });
    // The push stops taking bytes once b3's buffers are full: githa reads no more than its slowest destination takes.
    const atStall = await stalled();
    await writeFile('/proc/self/clear_refs', '5');
    const baseline = await procBytes('VmHWM');
    await until('b3 dropped', () => logged.slice(before).some((l) => l.includes('fan-out copy dropped')) || undefined);
    const peak = await procBytes('VmHWM');
    const result = await push;
    expect(result.stdout).toContain('refs/heads/fan-stall');
    // Far short of the pack: githa holds what its destinations buffer, never the pack.
    expect(atStall).toBeLessThan(SIZE / 2);
    // 0.6: Node 24's heap grows in a second mode under a stall (docs/performance.md "Node 24 and memory under a stall").
    expect(peak - baseline).toBeLessThan(0.6 * SIZE);
    const copies = plan.results[0]!.copies!;
    expect(copies.get('b3')).toEqual({ ending: 'cut', reason: 'stalled' });
    expect(copies.get('b2')).toEqual(okReport('refs/heads/fan-stall'));
    expect(await holds(cluster().backend('b2'), git, 'refs/heads/fan-stall')).toBe(sha);
    b3.resume();
    // Once b3's server answers again it has dealt with the cut request: the ref is not there.
    await git.run(['ls-remote', b3.url('http', REPO)]);
    expect(await holds(b3, git, 'refs/heads/fan-stall')).toBeUndefined();
  });

  it('a copy whose web server dies mid-pack is cut; the target, the other copy and the client go on', { timeout: 120_000 }, async () => {
    // A stall limit far beyond the test: the copy is not dropped for its pace, it fails.
    plan = { target: http('b1'), copies: [http('b2'), http('b3')], stallMs: 600_000, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'big.bin': randomData(24 * MB) });
    const b3 = cluster().backend('b3');
    b3.pause();
    lastReq = undefined;
    const push = git.push(work, url, ['HEAD:refs/heads/fan-dies'], [], { timeoutMs: 100_000 });
    await stalled();
    // Mid-pack: b3 holds part of the body when its server is killed.
    await b3.stop('SIGKILL');
    const result = await push;
    expect(result.stdout).toContain('refs/heads/fan-dies');
    const copies = plan.results[0]!.copies!;
    expect(copies.get('b3')?.ending).toBe('cut');
    expect(copies.get('b2')).toEqual(okReport('refs/heads/fan-dies'));
    expect(await holds(cluster().backend('b1'), git, 'refs/heads/fan-dies')).toBe(sha);
    expect(await holds(b3, git, 'refs/heads/fan-dies')).toBeUndefined();
  });
});

describe('fan-out push over SSH and git:// backends (the git:// front end)', () => {
  const cluster = useCluster({ backends: 3, redis: false, repositories: [REPO] });
  let server: ReturnType<typeof createGitDaemonFrontend>;
  let url: string;
  let plan: Plan;
  let git: GitClient;
  const clients = new Map<string, StreamBackendClient[]>();
  const backend = (id: string): Backend => ({ id }) as unknown as Backend;

  beforeAll(async () => {
    const c = cluster();
    git = GitClient.create({ baseDir: join(c.dir, 'fan-out-stream') });
    // b1 and b2 over SSH, b3 over git:// (its git daemon's children stop with it, so it can be stalled).
    for (const id of ['b1', 'b2']) {
      clients.set(id, [new SshBackendClient({ id, url: c.backend(id).sshUrl, privateKey: c.ssh.clientKeyPath, knownHosts: c.ssh.knownHostsPath, timeoutMs: 30_000 })]);
    }
    clients.set('b3', [new GitDaemonBackendClient({ id: 'b3', url: c.backend('b3').gitUrl, timeoutMs: 30_000 })]);
    const config = buildConfig({ redis: { url: 'redis://127.0.0.1:1' }, backends: [{ id: 'b1', http: 'http://127.0.0.1:1/' }], gitDaemon: { allowPush: true } }, {});
    const deps = { cluster: stubCluster(() => plan), clients, log: pino({ level: 'silent' }), maxCommands: 1000, access: AccessPolicy.compile(undefined) };
    server = createGitDaemonFrontend(config, deps, deps.log);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `git://127.0.0.1:${(server.address() as AddressInfo).port}/${REPO}`;
  });
  afterAll(async () => {
    for (const [, cs] of clients) for (const client of cs) await client.close();
    await new Promise((r) => server?.close(r));
  });

  it('sends one push to the target (SSH) and both copies (SSH, git://): every backend holds the commit, each copy\'s report is ok', async () => {
    plan = { target: backend('b1'), copies: [backend('b2'), backend('b3')], stallMs: 5_000, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'a.txt': 'fan out over ssh\n' });
    const pushed = await git.push(work, url, ['HEAD:refs/heads/fan-ssh']);
    expect(pushed.stdout).toContain('refs/heads/fan-ssh');
    for (const id of ['b1', 'b2', 'b3']) expect(await holds(cluster().backend(id), git, 'refs/heads/fan-ssh')).toBe(sha);
    const result = plan.results[0]!;
    expect(result.ending).toBe('complete');
    expect(Object.fromEntries(result.copies!)).toEqual({ b2: okReport('refs/heads/fan-ssh'), b3: okReport('refs/heads/fan-ssh') });
  });

  it('a push whose commands the marker could not record goes to the target only: every copy is cut before the pack', async () => {
    plan = { target: backend('b1'), copies: [backend('b2'), backend('b3')], stallMs: 5_000, results: [], recorded: false };
    const work = await git.init();
    const sha = await git.commit(work, { 'u.txt': 'commands not recorded\n' });
    await git.push(work, url, ['HEAD:refs/heads/fan-unrecorded']);
    expect(await holds(cluster().backend('b1'), git, 'refs/heads/fan-unrecorded')).toBe(sha);
    for (const id of ['b2', 'b3']) {
      expect(await holds(cluster().backend(id), git, 'refs/heads/fan-unrecorded')).toBeUndefined();
      expect(plan.results[0]!.copies!.get(id)?.ending).toBe('cut');
    }
  });

  it('a copy whose pre-receive hook refuses reports ng while the target and the client succeed', async () => {
    plan = { target: backend('b1'), copies: [backend('b2')], stallMs: 5_000, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'b.txt': 'refused on b2\n' });
    await withHook(cluster(), 'b2', async () => {
      await git.push(work, url, ['HEAD:refs/heads/fan-ssh-ng']);
    });
    expect(await holds(cluster().backend('b1'), git, 'refs/heads/fan-ssh-ng')).toBe(sha);
    expect(await holds(cluster().backend('b2'), git, 'refs/heads/fan-ssh-ng')).toBeUndefined();
    const b2 = plan.results[0]!.copies!.get('b2');
    expect(b2?.ending).toBe('complete');
    expect(b2?.report?.refs).toEqual([expect.objectContaining({ ref: 'refs/heads/fan-ssh-ng', ok: false })]);
  });

  it('drops a copy whose git daemon is stopped (SIGSTOP) after stallMs; the push goes on and the copy never gets the commit', { timeout: 120_000 }, async () => {
    plan = { target: backend('b1'), copies: [backend('b2'), backend('b3')], stallMs: 500, results: [] };
    const work = await git.init();
    const sha = await git.commit(work, { 'big.bin': randomData(24 * MB) });
    const b3 = cluster().backend('b3');
    b3.pause();
    await git.push(work, url, ['HEAD:refs/heads/fan-ssh-stall'], [], { timeoutMs: 100_000 });
    const copies = plan.results[0]!.copies!;
    expect(copies.get('b3')).toEqual({ ending: 'cut', reason: 'stalled' });
    expect(copies.get('b2')).toEqual(okReport('refs/heads/fan-ssh-stall'));
    expect(await holds(cluster().backend('b1'), git, 'refs/heads/fan-ssh-stall')).toBe(sha);
    b3.resume();
    await git.run(['ls-remote', b3.url('git', REPO)]);
    expect(await holds(b3, git, 'refs/heads/fan-ssh-stall')).toBeUndefined();
  });
});
