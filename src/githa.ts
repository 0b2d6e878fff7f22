import type { AddressInfo } from 'node:net';
import { createAdminServer } from './admin/server.js';
import { HttpBackendClient } from './backends/http.js';
import { GitDaemonBackendClient } from './backends/git-daemon.js';
import { SshBackendClient } from './backends/ssh.js';
import type { BackendClient, StreamBackendClient } from './backends/types.js';
import { Cluster } from './cluster/cluster.js';
import { parseListen } from './config/load.js';
import type { Config } from './config/schema.js';
import { createGitDaemonFrontend } from './frontends/git-daemon/server.js';
import { createHttpFrontend } from './frontends/http/server.js';
import { createSshFrontend } from './frontends/ssh/server.js';
import type { Logger } from './log.js';
import { WriteLocks } from './state/lock.js';
import { connectRedis } from './state/redis.js';
import { StateStore } from './state/store.js';

export interface RunningGitha {
  cluster: Cluster;
  /** Where each listener ended up (port 0 in config picks a free port). */
  addresses: { http: AddressInfo; admin: AddressInfo; ssh?: AddressInfo; git?: AddressInfo };
  close(): Promise<void>;
}

/** The composition root: builds every part from the one config and starts the listeners. */
export async function startGitha(config: Config, log: Logger): Promise<RunningGitha> {
  const redis = connectRedis(config.redis.url, { commandTimeoutMs: config.redis.commandTimeoutMs });
  const store = new StateStore(redis, config.redis.prefix);
  const locks = new WriteLocks(redis, store.keys, config.locks);
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
  const cluster = new Cluster(config, store, locks, clients, log);
  const streamDeps = (first: Map<string, StreamBackendClient>, second: Map<string, StreamBackendClient>) => ({
    cluster,
    clients: new Map(config.backends.map((b) => [b.id, [first.get(b.id), second.get(b.id)].filter((c): c is StreamBackendClient => c !== undefined)])),
    log,
    maxCommands: config.http.maxCommands,
  });
  const http = createHttpFrontend(config, cluster, log.child({ frontend: 'http' }));
  const admin = createAdminServer(store);
  const ssh = config.listen.ssh ? createSshFrontend(config, streamDeps(sshClients, gitClients), log.child({ frontend: 'ssh' })) : undefined;
  const git = config.listen.git ? createGitDaemonFrontend(config, streamDeps(gitClients, sshClients), log.child({ frontend: 'git' })) : undefined;
  const addresses: RunningGitha['addresses'] = {
    http: await listen(http.server, config.listen.http),
    admin: await listen(admin, config.listen.admin),
  };
  if (ssh && config.listen.ssh) addresses.ssh = await listen(ssh.server, config.listen.ssh);
  if (git && config.listen.git) addresses.git = await listen(git, config.listen.git);
  log.info({ ...addresses, backends: config.backends.map((b) => b.id), proxy: config.proxyId }, 'githa listening');
  return {
    cluster,
    addresses,
    async close() {
      admin.close();
      git?.close();
      await Promise.all([http.close(), ssh?.close()]);
      const all = new Set<BackendClient>([...clients.values(), ...sshClients.values(), ...gitClients.values()]);
      await Promise.all([...all].map((c) => c.close()));
      redis.disconnect();
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
