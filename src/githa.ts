import type { AddressInfo } from 'node:net';
import type { RedisClient } from './state/redis.js';
import { Metrics } from './admin/metrics.js';
import { createAdminServer } from './admin/server.js';
import { lostOverrides, readOverridesFile, type LostOverride } from './state/overrides-file.js';
import { StatusCache } from './admin/status-cache.js';
import { HttpBackendClient } from './backends/http.js';
import { GitDaemonBackendClient } from './backends/git-daemon.js';
import { SshBackendClient } from './backends/ssh.js';
import { sshRepositoryAdmin } from './backends/admin.js';
import type { BackendClient, RepositoryAdmin, StreamBackendClient } from './backends/types.js';
import { NO_REPAIRS } from './cluster/read-check.js';
import { CopyFiller } from './cluster/fill.js';
import { CopyRepairer } from './cluster/repair.js';
import { Cluster } from './cluster/cluster.js';
import { Lifecycle } from './cluster/lifecycle.js';
import { AccessPolicy } from './auth/access.js';
import { collectStatus } from './cluster/cluster-status.js';
import { collectWorkStatus } from './cluster/work-status.js';
import { Inventory } from './cluster/inventory.js';
import { HealthChecker } from './cluster/health-checker.js';
import { OverrideWatcher } from './cluster/override-watcher.js';
import { InterruptionResolver } from './cluster/interruptions.js';
import { Replicator } from './cluster/replicator.js';
import { WorkSweep } from './cluster/work-sweep.js';
import { ReturningCopies } from './cluster/returning.js';
import { Verifier } from './cluster/verifier.js';
import { parseListen } from './config/load.js';
import type { Config } from './config/schema.js';
import { createGitDaemonFrontend } from './frontends/git-daemon/server.js';
import { createHttpFrontend, type HttpFrontendHooks } from './frontends/http/server.js';
import { createHttpsServer } from './frontends/http/https.js';
import { createSshFrontend } from './frontends/ssh/server.js';
import type { Logger } from './log.js';
import { Backends } from './cluster/backends.js';
import type { ClusterContext } from './cluster/context.js';
import { Health } from './cluster/health.js';
import { NO_OBSERVER, type Observer } from './cluster/observer.js';
import { BackendHealthStore } from './state/backend-health.js';
import { connectRedis } from './state/redis.js';
import { openState, type StateParts } from './state/state.js';
import { OperatorStore } from './state/operator-store.js';
import { Tombstones } from './state/tombstones.js';
import { ReReplicator } from './cluster/re-replication.js';
import { RedisReReplicationStore } from './state/re-replication-store.js';
import { RedisRoleLeases } from './state/role-lease.js';
import { PlacementUsage } from './state/placement-usage.js';
import { HeldBytes } from './frontends/held-bytes.js';

export interface RunningGitha {
  cluster: Cluster;
  replicator: Replicator;
  verifier: Verifier;
  /** Where each listener ended up (port 0 in config picks a free port). */
  addresses: { http: AddressInfo; admin: AddressInfo; https?: AddressInfo; ssh?: AddressInfo; git?: AddressInfo };
  close(): Promise<void>;
}

/** The cluster core without listeners: what `githa serve` runs on, and what CLI commands (recover, …) use. */
export interface ClusterParts {
  cluster: Cluster;
  redis: RedisClient;
  state: StateParts;
  resolver: InterruptionResolver;
  clients: Map<string, BackendClient>;
  sshClients: Map<string, StreamBackendClient>;
  gitClients: Map<string, StreamBackendClient>;
  /** The admin account of each backend with `admin` (docs/operations.md "The admin account"). */
  admins: Map<string, RepositoryAdmin>;
  /** The copy repairs (docs/architecture.md "Verified copies"); a serving githa's only: CLI commands repair nothing in the background. */
  repairer?: CopyRepairer;
  /** Creates missing copies on managed backends (docs/architecture.md "Filling a missing copy"), shared by the replicator and the repairs. */
  filler: CopyFiller;
  close(): Promise<void>;
}

export function buildCluster(config: Config, log: Logger, observer: Observer = NO_OBSERVER, opts: { repairs?: boolean } = {}): ClusterParts {
  const redis = connectRedis(config.redis, { commandTimeoutMs: config.redis.commandTimeoutMs });
  const state = openState(redis, {
    prefix: config.redis.prefix,
    logMax: config.pushLog.maxLength,
    durable: { replicas: config.redis.waitReplicas, timeoutMs: config.redis.waitTimeoutMs },
    locks: config.locks,
    onLockWait: (seconds, outcome) => observer.lockWait(seconds, outcome),
    log,
    backends: config.backends.map((b) => b.id),
  });
  const timeoutMs = config.http.backendTimeoutMs;
  // githa's own Git client of each backend (catch-up, checksums): HTTP where
  // offered, else SSH, else git://. SSH and git:// clients also carry the
  // stateful front ends' traffic.
  const clients = new Map<string, BackendClient>();
  const sshClients = new Map<string, StreamBackendClient>();
  const gitClients = new Map<string, StreamBackendClient>();
  for (const b of config.backends) {
    if (b.ssh && config.ssh.backendKey && config.ssh.backendKnownHosts) {
      sshClients.set(b.id, new SshBackendClient({ id: b.id, url: b.ssh, privateKey: config.ssh.backendKey, knownHosts: config.ssh.backendKnownHosts, timeoutMs }));
    }
    if (b.git) gitClients.set(b.id, new GitDaemonBackendClient({ id: b.id, url: b.git, timeoutMs }));
    const own = b.http ? new HttpBackendClient({ id: b.id, baseUrl: b.http, auth: b.httpAuth, timeoutMs }) : (sshClients.get(b.id) ?? gitClients.get(b.id));
    if (own) clients.set(b.id, own);
  }
  // githa's admin account on each backend that has `admin`: its own SSH connection, opened on first use.
  const admins = new Map<string, RepositoryAdmin>();
  for (const b of config.backends) {
    if (b.admin) admins.set(b.id, sshRepositoryAdmin({ backend: b, ssh: config.ssh, repositories: config.repositories, timeoutMs }));
  }
  const health = new Health(config.health);
  const backends = new Backends(config, clients, health, admins);
  const ctx: ClusterContext = {
    config,
    log,
    repos: state.repos,
    index: state.index,
    clock: state.clock,
    pairs: state.pairs,
    writeLocks: state.writeLocks,
    health,
    observer,
    backends,
    // The repairer is built with this context: the context forwards to it once it exists (nothing is scheduled before).
    repairs: opts.repairs ? { schedule: (repo, backend, why) => repairer?.schedule(repo, backend, why) } : NO_REPAIRS,
  };
  const filler = new CopyFiller(ctx);
  let repairer: CopyRepairer | undefined;
  if (opts.repairs) {
    const operator = new OperatorStore(state.scripts, config.pushLog.maxLength);
    repairer = new CopyRepairer(
      ctx,
      (repo, token, target, version, checksum, source, fields) => operator.commitSync(repo, token, target, version, checksum, source, fields),
      async (repo, token, backend, version, max, fields) => (await operator.demote(repo, token, backend, version, max, '', fields)).status,
      filler,
    );
  }
  const resolver = new InterruptionResolver(ctx);
  const cluster = new Cluster(ctx, backends, resolver, new Lifecycle(ctx));
  return {
    cluster,
    redis,
    state,
    resolver,
    clients,
    sshClients,
    gitClients,
    admins,
    filler,
    ...(repairer ? { repairer } : {}),
    async close() {
      repairer?.stop();
      const all = new Set<BackendClient>([...clients.values(), ...sshClients.values(), ...gitClients.values()]);
      await Promise.all([...[...all].map((c) => c.close()), ...[...admins.values()].map((a) => a.close())]);
      redis.disconnect();
    },
  };
}

/**
 * Seams for the chaos harness, which starts githa through its own entry
 * script (tools/chaos/githa-ack-before-commit.ts). `githa serve` never passes
 * any: no config key or environment variable reaches them.
 */
export type GithaHooks = HttpFrontendHooks;

/** The composition root: builds every part from the one config and starts the listeners. */
export async function startGitha(config: Config, log: Logger, hooks: GithaHooks = {}): Promise<RunningGitha> {
  // Metrics and /status (docs/observability.md): the cluster reports to them from its construction on.
  // The configured backend ids: the only values of the per-backend request counts' label.
  const metrics = new Metrics({ backends: config.backends.map((b) => b.id) });
  const parts = buildCluster(config, log, metrics, { repairs: true });
  const { cluster, redis, state, resolver, clients, sshClients, gitClients } = parts;
  const access = AccessPolicy.compile(config.access, config.auth.groups, config.auth.anonymousUser);
  // One accountant of what githa holds for clients, shared by every front end (docs/security.md "Memory budgets").
  const heldBytes = new HeldBytes(config.memory.maxHeldBytes ?? HeldBytes.defaultLimit(), config.memory.maxHeldBytesPerRequest);
  metrics.watch({ heldBytes: () => heldBytes.stats() });
  const streamDeps = (first: Map<string, StreamBackendClient>, second: Map<string, StreamBackendClient>) => ({
    cluster,
    clients: new Map(config.backends.map((b) => [b.id, [first.get(b.id), second.get(b.id)].filter((c): c is StreamBackendClient => c !== undefined)])),
    log,
    maxCommands: config.http.maxCommands,
    // Authorization per repository (docs/security.md); the HTTP front end compiles the same rules.
    access,
    heldBytes,
  });
  const healthLog = log.child({ component: 'health' });
  const shared = new BackendHealthStore(redis, state.keys, { proxyId: config.proxyId, ttlMs: config.health.ttlMs, log: healthLog });
  // The full status snapshot behind /status, refreshed at most every metrics.statusRefreshMs.
  const ids = config.backends.map((b) => b.id);
  // The snapshot lists the managed backends too (missing copies, untracked repositories, ghosts: docs/observability.md).
  const inventory = new Inventory(cluster.ctx, new Tombstones(redis, state.keys), cluster);
  const status = new StatusCache(async () => collectStatus(cluster, state, await shared.readFresh(ids), undefined, inventory), config.metrics.statusRefreshMs, (err) =>
    log.warn({ err: (err as Error).message }, 'cluster status snapshot failed'),
  );
  // /metrics reads a snapshot of the work index only (O(work), src/cluster/work-status.ts); the full one above is
  // collected only when /status is viewed.
  const workStatus = new StatusCache(async () => collectWorkStatus(cluster, state, await shared.readFresh(ids)), config.metrics.statusRefreshMs, (err) =>
    log.warn({ err: (err as Error).message }, 'work status snapshot failed'),
  );
  // The listings' gauges (untracked, ghost, leftover, missing copies) need every repository and listing: rarely.
  const inventorySnapshot = new StatusCache(async () => collectStatus(cluster, state, await shared.readFresh(ids), undefined, inventory), config.metrics.inventoryRefreshMs, (err) =>
    log.warn({ err: (err as Error).message }, 'inventory snapshot failed'),
  );
  metrics.watch({
    status: workStatus,
    fullStatus: () => inventorySnapshot.peek(),
    backendHealth: () => cluster.health.snapshot(ids),
    redisUp: () => state.ping().then(() => true, () => false),
    sshChannels: () => [...sshClients].flatMap(([id, c]) => (c instanceof SshBackendClient ? [{ id, busy: c.busyChannels }] : [])),
  });
  const http = createHttpFrontend(config, cluster, log.child({ frontend: 'http' }), hooks, heldBytes);
  // listen.https: TLS in front of the same HTTP server (src/frontends/http/https.ts); a certificate that does not load stops the start.
  const https = config.listen.https && config.tls ? createHttpsServer(http.server, config.tls, log.child({ frontend: 'https' }), config.http, config.listen.proxyProtocolFrom) : undefined;
  // Overrides Redis lost that backendOverridesFile records (docs/operations.md "Redis lost or restored from an old snapshot"), once the watcher below has read Redis.
  const watching: { by?: OverrideWatcher } = {};
  const lostOverridesNow = (): LostOverride[] =>
    config.backendOverridesFile && watching.by ? lostOverrides(readOverridesFile(config.backendOverridesFile), watching.by.stored()) : [];
  const admin = createAdminServer(state, { metrics, status, cluster, lostOverrides: lostOverridesNow, log: log.child({ component: 'admin' }) });
  const ssh = config.listen.ssh ? createSshFrontend(config, streamDeps(sshClients, gitClients), log.child({ frontend: 'ssh' })) : undefined;
  const git = config.listen.git ? createGitDaemonFrontend(config, streamDeps(gitClients, sshClients), log.child({ frontend: 'git' })) : undefined;
  const addresses: RunningGitha['addresses'] = {
    http: await listen(http.listener, config.listen.http),
    admin: await listen(admin, config.listen.admin),
  };
  if (https && config.listen.https) addresses.https = await listen(https.listener, config.listen.https);
  if (ssh && config.listen.ssh) addresses.ssh = await listen(ssh.server, config.listen.ssh);
  if (git && config.listen.git) addresses.git = await listen(git, config.listen.git);
  // Probes start once githa serves; until the first round, health is what requests show (docs/architecture.md "Health").
  const checker = new HealthChecker({ ...config.health, health: cluster.health, backends: config.backends, clients: [clients, sshClients, gitClients], shared, log: healthLog });
  await checker.start();
  // Operator overrides (`githa backend disable …`), kept current from Redis (pub/sub, plus a reload every 5 s).
  const overrides = new OverrideWatcher({ cluster, keys: state.keys, redis, redisTarget: config.redis, commandTimeoutMs: config.redis.commandTimeoutMs, proxyId: config.proxyId, log: log.child({ component: 'overrides' }) });
  await overrides.start();
  watching.by = overrides;
  // The replicator follows githa:events on a connection of its own: XREAD BLOCK must not share the request path's.
  const events = connectRedis(config.redis, { commandTimeoutMs: config.redis.commandTimeoutMs + 2_000 });
  // The scan reads the work index; the full sweep that rebuilds it is shared: one githa per sweepIntervalMs (src/cluster/work-sweep.ts).
  const sweep = new WorkSweep({ index: state.index, repos: state.repos, hints: state.scripts, owner: config.proxyId, backends: ids, intervalMs: config.replication.sweepIntervalMs, log: log.child({ component: 'replicator' }) });
  const replicator = new Replicator(cluster.ctx, cluster, resolver, {
    ...config.replication,
    events,
    eventsKey: state.keys.events(),
    blockMs: Math.min(2_000, config.redis.commandTimeoutMs),
    fill: parts.filler,
    work: state.index,
    sweep,
  });
  if (config.replication.background) replicator.start();
  metrics.watch({ replicationBacklog: () => replicator.backlog() });
  const verifier = new Verifier(cluster.ctx);
  verifier.start();
  // A backend is verified before it leads again: at start, up again, enabled (docs/architecture.md "Verified copies").
  const returning = new ReturningCopies(cluster.ctx, state.index);
  returning.start();
  // A backend lost past replication.reReplicateAfterMs gets its repositories copied elsewhere, by one githa (docs/architecture.md "Re-replication").
  const reReplicator = new ReReplicator({
    config,
    log,
    store: new RedisReReplicationStore(redis, state.keys, state.scripts, state.index, config.pushLog.maxLength),
    repos: state.repos,
    leases: new RedisRoleLeases(redis, state.keys),
    health: shared,
    overrides: { readAll: async () => new Map(overrides.stored()) },
    replicator,
    usage: new PlacementUsage(redis, state.keys),
    // A drained backend gets no replacement copy (docs/architecture.md "Moves").
    draining: (id) => overrides.stored().get(id)?.drain === true,
  });
  await reReplicator.prepare();
  reReplicator.start();
  // Only a hint for the log line below: an unreachable Redis is reported by /readyz and every request.
  if (!(await redis.exists(state.keys.repos()).catch(() => 1))) {
    // docs/operations.md "Redis lost or restored from an old snapshot". Stock servers cannot list their repositories, so each record is rebuilt when the repository is first used (adoption), or at once with `githa recover R…`.
    log.warn('Redis holds no repository records: each repository is adopted from its copies when first used; differing copies are frozen as ambiguous');
  }
  log.info({ ...addresses, backends: config.backends.map((b) => b.id), proxy: config.proxyId }, 'githa listening');
  return {
    cluster,
    replicator,
    verifier,
    addresses,
    async close() {
      verifier.stop();
      returning.stop();
      await reReplicator.stop();
      await replicator.stop();
      await checker.stop();
      await overrides.stop();
      admin.close();
      git?.close();
      https?.close();
      await Promise.all([http.close(), ssh?.close()]);
      await parts.close();
    },
  };
}

/** What githa's listeners have in common (node:http, node:net and ssh2 servers). */
interface Listener {
  once(event: 'error', fn: (err: Error) => void): unknown;
  off(event: 'error', fn: (err: Error) => void): unknown;
  listen(port: number, host: string, done: () => void): unknown;
  address(): AddressInfo | string | null;
}

function listen(server: Listener, address: string): Promise<AddressInfo> {
  const { host, port } = parseListen(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
