/**
 * The demo cluster (product: `githa demo` runs it): a real redis-server and N stock Git servers on 127.0.0.1
 * ephemeral ports, in a temporary directory. Used by the integration tests
 * (through test/support/cluster.ts) and by `githa demo`.
 *
 *   const cluster = await startDevCluster({ backends: 3 });
 *   await cluster.createRepository('org/app');         // bare repo on every backend
 *   cluster.backends[0].url('http', 'org/app');        // http://127.0.0.1:P/git/org/app.git
 *   cluster.backends[0].url('ssh', 'org/app');         // ssh://root@127.0.0.1:P/tmp/githa-test-…/b1/repos/org/app.git
 *   cluster.backends[0].url('git', 'org/app');         // git://127.0.0.1:P/org/app.git
 *   cluster.redis.url;                                 // redis://127.0.0.1:P
 *   await cluster.backends[1].stop('SIGKILL');         // crash a backend…
 *   await cluster.backends[1].start();                 // …and bring it back on the same ports
 *   cluster.backends[2].pause();                       // SIGSTOP (hung server); resume() = SIGCONT
 *   await cluster.stop();                              // everything, idempotent; removes the temp dir
 *
 * API
 * - startDevCluster(options) → DevCluster
 *     backends       number of backends, default 3 (ids 'b1', 'b2', …)
 *     dir            use this directory (created if needed, never removed);
 *                    default: a new os.tmpdir()/githa-test-<random>, removed on
 *                    stop unless GITHA_KEEP_TMP=1 (or keepDir: true)
 *     redis          start redis-server, default true (cluster.redis throws if false)
 *     redisAof       redis --appendonly yes, default false
 *     maxLifetimeMs  the watchdog kills everything after this long, default
 *                    30 min; 0 = no limit (githa demo)
 *     parentPid      the watchdog kills everything when this pid dies;
 *                    default process.pid (tests use another one)
 *     webServer      'lighttpd' (default) or 'apache' in front of git
 *                    http-backend, for every backend or per id
 *                    ({ b1: 'apache' }, the others lighttpd); see apache.ts
 *     httpUsers      user → password of the Apache backends' 'auth' location
 *     gatedAdmin     backend ids whose sshd restricts the cluster's key with
 *                    deploy/backend/githa-gate (docs/operations.md "The admin
 *                    account"): Git services and the installed githa-admin only
 * - DevCluster
 *     dir, backends: DevBackend[], redis: DevRedis, ssh: DevClusterSsh,
 *     backend(id), createRepository(name), ensureRunning(), stop()
 * - DevBackend (see backend.ts): id, root, httpUrl, sshUrl, gitUrl, ports,
 *     sshHostPublicKey, logs, state, url(kind, repo), repoPath(repo),
 *     stop(signal?), start(), pause(), resume(), createRepository(name)
 * - DevRedis (see redis.ts): url, port, logFile, state, stop(signal?),
 *     start(), pause(), resume(), cli(...args)
 *
 * Layout of the directory: ssh/ (client key, authorized_keys, known_hosts),
 * redis/ (data, redis.log), bN/ (repos/, lighttpd.conf and lighttpd.log or
 * apache2.conf, apache2.log, htpasswd, apache-run/,
 * sshd_config, sshd.log, ssh_host_ed25519_key, git-daemon.log), pids.
 *
 * Servers never outlive the process that started them: see watchdog.ts.
 */
import { chmodSync, copyFileSync, mkdirSync, realpathSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { DevBackendImpl, assertSafePath, type DevBackend, type WebServer } from './backend.js';
import { DevRedisImpl, type DevRedis } from './redis.js';
import { ensurePrivsepDir, generateKey, knownHostsLine } from './ssh.js';
import { PidRegistry, startWatchdog } from './watchdog.js';

export type { DevBackend, EndpointKind, HttpLocation, WebServer } from './backend.js';
export type { DevRedis } from './redis.js';
export { DevClusterStartError } from './process.js';

export interface DevClusterOptions {
  backends?: number;
  dir?: string;
  redis?: boolean;
  redisAof?: boolean;
  maxLifetimeMs?: number;
  parentPid?: number;
  keepDir?: boolean;
  webServer?: WebServer | Partial<Record<string, WebServer>>;
  httpUsers?: Record<string, string>;
  /** Backend ids whose key is restricted by githa-gate (see the comment at the top). */
  gatedAdmin?: readonly string[];
}

/** What a Git client (or githa itself) needs to talk SSH to the backends. */
export interface DevClusterSsh {
  /** Login user on every backend (the current user). */
  readonly user: string;
  /** Private key (OpenSSH format, mode 0600) accepted by every backend: the "service key". */
  readonly clientKeyPath: string;
  /** Its public key line. */
  readonly clientPublicKey: string;
  /** known_hosts with the host key of every backend ("[127.0.0.1]:P ssh-ed25519 …"). */
  readonly knownHostsPath: string;
}

export interface DevCluster {
  readonly dir: string;
  readonly backends: readonly DevBackend[];
  /** Throws when the cluster was started with `redis: false`. */
  readonly redis: DevRedis;
  readonly ssh: DevClusterSsh;
  /** The backend with this id ('b1', …); throws if there is none. */
  backend(id: string): DevBackend;
  /** Creates the bare repository on every backend. */
  createRepository(name: string): Promise<void>;
  /**
   * Another process (group leader, spawned detached) that must die with the
   * cluster: it is SIGKILLed on stop(), by the exit hook and by the watchdog.
   * Returns a function that forgets it again.
   */
  track(pid: number): () => void;
  /** Resumes paused servers and starts stopped ones (used between tests); no-op once stopped. */
  ensureRunning(): Promise<void>;
  /** Stops everything and removes the temporary directory. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_MAX_LIFETIME_MS = 30 * 60 * 1000;

/** deploy/backend/ of the package (src/demo/ and dist/demo/ are both two levels down). */
const DEPLOY_BACKEND = resolve(import.meta.dirname, '../../deploy/backend');

/**
 * The authorized_keys of a gated backend: the cluster's key may run Git
 * services and `<gateDir>/git-shell-commands/githa-admin` only, as
 * docs/operations.md "The admin account" tells an operator to set it up.
 */
function gatedKeys(backendDir: string, publicKey: string, root: string): string {
  const gate = join(DEPLOY_BACKEND, 'githa-gate');
  const gateDir = join(backendDir, 'gate');
  assertSafePath(gate);
  mkdirSync(join(gateDir, 'git-shell-commands'), { recursive: true });
  const program = join(gateDir, 'git-shell-commands', 'githa-admin');
  copyFileSync(join(DEPLOY_BACKEND, 'githa-admin'), program);
  chmodSync(program, 0o755);
  const path = join(backendDir, 'authorized_keys');
  assertSafePath(root);
  writeFileSync(path, `command="${gate} ${gateDir} ${root}",restrict ${publicKey}\n`);
  return path;
}

function firstFailure(results: PromiseSettledResult<unknown>[]): unknown {
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.length === 0) return undefined;
  const [first, ...others] = failures;
  if (others.length > 0 && first instanceof Error) {
    first.message += `\n(${others.length} more server(s) failed: ${others
      .map((e) => (e instanceof Error ? e.message.split('\n')[0] : String(e)))
      .join('; ')})`;
  }
  return first;
}

class DevClusterImpl implements DevCluster {
  private stopping: Promise<void> | undefined;

  constructor(
    readonly dir: string,
    readonly backends: DevBackendImpl[],
    private readonly redisServer: DevRedisImpl | undefined,
    readonly ssh: DevClusterSsh,
    private readonly registry: PidRegistry,
    private readonly stopWatchdog: () => void,
    private readonly removeDir: boolean,
  ) {}

  get redis(): DevRedis {
    if (!this.redisServer) throw new Error('this dev cluster was started with redis: false');
    return this.redisServer;
  }

  backend(id: string): DevBackend {
    const backend = this.backends.find((b) => b.id === id);
    if (!backend) throw new Error(`no backend ${id} (have ${this.backends.map((b) => b.id).join(', ')})`);
    return backend;
  }

  async createRepository(name: string): Promise<void> {
    await Promise.all(this.backends.map((b) => b.createRepository(name)));
  }

  track(pid: number): () => void {
    this.registry.add(pid);
    return () => this.registry.remove(pid);
  }

  async ensureRunning(): Promise<void> {
    if (this.stopping) return;
    const servers: { resume(): void; start(): Promise<void> }[] = [...this.backends];
    if (this.redisServer) servers.push(this.redisServer);
    for (const server of servers) server.resume();
    const failure = firstFailure(await Promise.allSettled(servers.map((s) => s.start())));
    if (failure) throw failure;
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const stops: Promise<void>[] = this.backends.map((b) => b.stop('SIGTERM'));
    if (this.redisServer) stops.push(this.redisServer.stop('SIGTERM'));
    await Promise.allSettled(stops);
    this.registry.killAll();
    this.registry.close();
    this.stopWatchdog();
    if (this.removeDir) await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/** Starts redis and the backends in parallel; see the comment at the top of this file. */
export async function startDevCluster(options: DevClusterOptions = {}): Promise<DevCluster> {
  const backendCount = options.backends ?? 3;
  if (!Number.isInteger(backendCount) || backendCount < 0 || backendCount > 20) {
    throw new Error(`backends must be an integer in 0..20, got ${backendCount}`);
  }
  const keep = options.keepDir ?? process.env.GITHA_KEEP_TMP === '1';
  let dir: string;
  let ownDir: boolean;
  if (options.dir !== undefined) {
    mkdirSync(options.dir, { recursive: true });
    dir = realpathSync(options.dir);
    ownDir = false;
  } else {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'githa-test-')));
    ownDir = true;
  }
  const removeDir = ownDir && !keep;
  assertSafePath(dir);

  const registry = new PidRegistry(join(dir, 'pids'));
  const stopWatchdog = startWatchdog({
    parentPid: options.parentPid,
    maxLifetimeMs: options.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS,
    pidFile: join(dir, 'pids'),
    removeDir: removeDir ? dir : undefined,
  });

  const backends: DevBackendImpl[] = [];
  let redis: DevRedisImpl | undefined;
  try {
    ensurePrivsepDir();
    const user = userInfo().username;
    const sshDir = join(dir, 'ssh');
    mkdirSync(sshDir, { recursive: true });
    const clientKeyPath = join(sshDir, 'client_ed25519');
    const ids = Array.from({ length: backendCount }, (_, i) => `b${i + 1}`);
    for (const id of ids) mkdirSync(join(dir, id), { recursive: true });
    const [clientPublicKey, ...hostKeys] = await Promise.all([
      generateKey(clientKeyPath, 'githa-devcluster-service-key'),
      ...ids.map((id) => generateKey(join(dir, id, 'ssh_host_ed25519_key'), `githa-devcluster-${id}`)),
    ]);
    const authorizedKeysPath = join(sshDir, 'authorized_keys');
    writeFileSync(authorizedKeysPath, `${clientPublicKey}\n`);

    for (const id of options.gatedAdmin ?? []) if (!ids.includes(id)) throw new Error(`gatedAdmin: no backend ${id}`);
    ids.forEach((id, i) => {
      backends.push(
        new DevBackendImpl({
          id,
          dir: join(dir, id),
          user,
          hostKeyPath: join(dir, id, 'ssh_host_ed25519_key'),
          hostPublicKey: hostKeys[i]!,
          authorizedKeysPath: options.gatedAdmin?.includes(id) ? gatedKeys(join(dir, id), clientPublicKey!, join(dir, id, 'repos')) : authorizedKeysPath,
          tracker: registry,
          webServer: typeof options.webServer === 'string' ? options.webServer : options.webServer?.[id],
          httpUsers: options.httpUsers,
        }),
      );
    });
    if (options.redis ?? true) {
      redis = new DevRedisImpl({ dir: join(dir, 'redis'), aof: options.redisAof ?? false, tracker: registry });
    }

    const starts: Promise<void>[] = backends.map((b) => b.start());
    if (redis) starts.push(redis.start());
    const failure = firstFailure(await Promise.allSettled(starts));
    if (failure) throw failure;

    const knownHostsPath = join(sshDir, 'known_hosts');
    writeFileSync(knownHostsPath, backends.map((b) => `${knownHostsLine(b.ports.ssh, b.sshHostPublicKey)}\n`).join(''));

    return new DevClusterImpl(
      dir,
      backends,
      redis,
      { user, clientKeyPath, clientPublicKey: clientPublicKey!, knownHostsPath },
      registry,
      stopWatchdog,
      removeDir,
    );
  } catch (err) {
    const stops: Promise<void>[] = backends.map((b) => b.stop('SIGKILL'));
    if (redis) stops.push(redis.stop('SIGKILL'));
    await Promise.allSettled(stops);
    registry.killAll();
    registry.close();
    stopWatchdog();
    if (removeDir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
