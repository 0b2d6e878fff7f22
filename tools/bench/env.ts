/**
 * The benchmark's world: a dev cluster (redis-server and three stock backends,
 * each lighttpd + git http-backend, sshd, git daemon), four githa child
 * processes, the real git client, and the accounting of the servers' CPU.
 *
 * githas:
 *   a, b  writeQuorum 1 (F1, F2, F3 q=1, F4 with both, F6, F7)
 *   c     writeQuorum 2, fan-out writes on (F3 q=2)
 *   r     the default writeQuorum (a majority, 2 of 3), no background
 *         replication, talking to Redis through the round-trip counter
 *         (redis-counter.ts), used for nothing else
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { startDevCluster, type DevBackend, type DevCluster } from '../../src/demo/cluster.js';
import { generateKey, knownHostsLine } from '../../src/demo/ssh.js';
import { startGithaChild, type GithaChild } from './githa-process.js';
import { descendantsOf, findPids, settledCpu, treeCpu } from './procstat.js';
import { RedisRoundTripCounter } from './redis-counter.js';
import type { FigureRow } from './stats.js';

const execFileP = promisify(execFile);

export interface BenchOptions {
  quick: boolean;
  /** Figures to run ('F1', 'F1s', 'F2', … 'RT'); empty: all. */
  only: Set<string>;
  /** Interleaved A/B pairs per figure (F1, F1s, F3, F5). */
  runs: number;
  /** Packed size of the big repository, MB. */
  sizeMb: number;
  /** Keep the cluster's directory (logs, configs) after the run. */
  keep: boolean;
  /** Profile the githa processes (node --cpu-prof) into this directory. */
  cpuProfDir?: string | undefined;
  cacheDir: string;
  out: (line: string) => void;
}

/** What a figure module returns: its table rows and its raw data for bench/results.json. */
export interface FigureOutput {
  rows: FigureRow[];
  data: Record<string, unknown>;
}

export interface BenchEnv {
  cluster: DevCluster;
  githa: { a: GithaChild; b: GithaChild; c: GithaChild; r: GithaChild };
  counter: RedisRoundTripCounter;
  /** Scratch directory for clones and work trees. */
  work: string;
  /** Runs git with the bench environment; resolves with stdout. */
  git(args: string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<string>;
  /** Wall milliseconds of one git command. */
  timeGit(args: string[], opts?: { cwd?: string; timeoutMs?: number }): Promise<number>;
  /** The backends' listening server processes of one kind (lighttpd, or sshd). */
  serverPids(kind: 'http' | 'ssh'): number[];
  /**
   * Starts counting the CPU of every backend's server of one kind (their
   * whole process trees, procstat.ts); the returned function resolves with
   * the CPU seconds spent since, once the requests' processes are gone.
   */
  serverCpu(kind: 'http' | 'ssh'): () => Promise<number>;
  backend(i: number): DevBackend;
  /** The floor proxies (floor-proxy.ts) in front of backend b1's web server: a TCP relay and a minimal HTTP proxy. */
  floor: FloorProxies;
  stop(): Promise<void>;
}

export interface FloorProxies {
  readonly pid: number;
  /** b1's URL of `repo` through the TCP relay, or through the minimal HTTP proxy. */
  url(kind: 'tcp' | 'http' | 'undici', repo: string): string;
}

/** Starts floor-proxy.js as a child process in front of `backend`'s web server. */
async function startFloor(cluster: DevCluster, backend: DevBackend): Promise<FloorProxies> {
  const proc = spawn(process.execPath, [join(import.meta.dirname, 'floor-proxy.js'), String(backend.ports.http)], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  cluster.track(proc.pid!);
  const ports = await new Promise<{ tcp: number; http: number; undici: number }>((resolve, reject) => {
    let text = '';
    proc.stdout!.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      if (text.includes('\n')) resolve(JSON.parse(text.slice(0, text.indexOf('\n'))) as { tcp: number; http: number; undici: number });
    });
    proc.once('exit', (code) => reject(new Error(`floor-proxy exited (${code}) before listening`)));
  });
  return {
    pid: proc.pid!,
    url: (kind, repo) => backend.url('http', repo).replace(`:${backend.ports.http}/`, `:${ports[kind]}/`),
  };
}

export async function startBenchEnv(opts: BenchOptions): Promise<BenchEnv> {
  const cluster = await startDevCluster({ backends: 3, keepDir: opts.keep, maxLifetimeMs: 2 * 60 * 60 * 1000 });
  const stops: Array<() => Promise<void>> = [];
  try {
    const hostKey = join(cluster.dir, 'githa_host_ed25519_key');
    const hostPub = await generateKey(hostKey, 'githa-bench');
    const authorizedKeys = join(cluster.dir, 'githa_authorized_keys');
    writeFileSync(authorizedKeys, `environment="GITHA_USER=bench" ${cluster.ssh.clientPublicKey}\n`);
    const counter = new RedisRoundTripCounter({ host: '127.0.0.1', port: cluster.redis.port });
    const counterPort = await counter.start();
    stops.push(() => counter.stop());
    const common = { cluster, hostKey, authorizedKeys, cpuProfDir: opts.cpuProfDir };
    // writeQuorum 1 keeps F1/F2/F4/F6/F7 about the proxy, not about copying; F3 measures quorum 2 on its own githa.
    const q1 = { replication: { writeQuorum: 1 } };
    const [a, b, c, r] = await Promise.all([
      startGithaChild({ ...common, name: 'a', config: q1 }),
      startGithaChild({ ...common, name: 'b', config: q1 }),
      startGithaChild({ ...common, name: 'c', config: { replication: { writeQuorum: 2, fanOut: true } } }),
      // No background replicator in r: its copies would share the request path's connection and keys.
      startGithaChild({ ...common, name: 'r', redisUrl: `redis://127.0.0.1:${counterPort}`, config: { replication: { background: false } } }),
    ]);
    for (const g of [a!, b!, c!, r!]) stops.unshift(() => g.stop());
    const floor = await startFloor(cluster, cluster.backends[0]!);
    stops.unshift(async () => {
      process.kill(floor.pid, 'SIGTERM');
    });

    const work = join(cluster.dir, 'bench-work');
    const home = join(work, 'home');
    mkdirSync(home, { recursive: true });
    // Every githa shares one host key: one known_hosts line per githa port, plus the backends'.
    const knownHosts = join(work, 'known_hosts');
    writeFileSync(
      knownHosts,
      `${readFileSync(cluster.ssh.knownHostsPath, 'utf8').trimEnd()}\n${[a!, b!, c!, r!].map((g) => knownHostsLine(g.sshPort, hostPub)).join('\n')}\n`,
    );
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      LANG: 'C.UTF-8',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_SSH_COMMAND: `ssh -F /dev/null -i ${cluster.ssh.clientKeyPath} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
      GIT_AUTHOR_NAME: 'bench',
      GIT_AUTHOR_EMAIL: 'bench@githa.invalid',
      GIT_COMMITTER_NAME: 'bench',
      GIT_COMMITTER_EMAIL: 'bench@githa.invalid',
    };
    const git = async (args: string[], o: { cwd?: string; timeoutMs?: number } = {}): Promise<string> => {
      const { stdout } = await execFileP('git', args, { env, cwd: o.cwd, timeout: o.timeoutMs ?? 10 * 60_000, maxBuffer: 1 << 28, killSignal: 'SIGKILL' });
      return stdout;
    };
    const configFile = (b: DevBackend, file: string): string => join(dirname(b.root), file);
    const serverPids = (kind: 'http' | 'ssh'): number[] =>
      cluster.backends.flatMap((b) => {
        const pids = findPids(configFile(b, kind === 'http' ? 'lighttpd.conf' : 'sshd_config'));
        // The listener: the one whose parent is not one of them (children may keep the command line).
        return pids.filter((p) => !pids.some((q) => descendantsOf(q).includes(p)));
      });
    return {
      cluster,
      githa: { a: a!, b: b!, c: c!, r: r! },
      counter,
      work,
      git,
      async timeGit(args, o) {
        const t0 = performance.now();
        await git(args, o);
        return performance.now() - t0;
      },
      serverPids,
      serverCpu(kind) {
        const pids = serverPids(kind);
        const baseline = pids.map((p) => descendantsOf(p).length);
        const before = pids.reduce((sum, p) => sum + treeCpu(p), 0);
        return async () => (await settledCpu(pids, baseline)) - before;
      },
      backend: (i) => cluster.backends[i]!,
      floor,
      async stop() {
        // Best-effort teardown: one failed stop must not keep the others or the cluster running.
        for (const s of stops) await s().catch(() => {});
        await cluster.stop();
      },
    };
  } catch (err) {
    // Best-effort teardown; the error rethrown below is the one worth reporting.
    for (const s of stops) await s().catch(() => {});
    await cluster.stop();
    throw err;
  }
}
