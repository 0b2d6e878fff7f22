import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminServer } from './admin/server.js';
import { HttpBackendClient } from './backends/http.js';
import type { BackendClient } from './backends/types.js';
import { Cluster } from './cluster/cluster.js';
import { parseListen } from './config/load.js';
import type { Config } from './config/schema.js';
import { createHttpFrontend } from './frontends/http/server.js';
import type { Logger } from './log.js';
import { WriteLocks } from './state/lock.js';
import { connectRedis } from './state/redis.js';
import { StateStore } from './state/store.js';

export interface RunningGitha {
  cluster: Cluster;
  /** Where each listener ended up (port 0 in config picks a free port). */
  addresses: { http: AddressInfo; admin: AddressInfo };
  close(): Promise<void>;
}

/** The composition root: builds every part from the one config and starts the listeners. */
export async function startGitha(config: Config, log: Logger): Promise<RunningGitha> {
  const redis = connectRedis(config.redis.url, { commandTimeoutMs: config.redis.commandTimeoutMs });
  const store = new StateStore(redis, config.redis.prefix);
  const locks = new WriteLocks(redis, store.keys, config.locks);
  const clients = new Map<string, BackendClient>();
  for (const b of config.backends) {
    if (b.http) clients.set(b.id, new HttpBackendClient({ id: b.id, baseUrl: b.http, auth: b.httpAuth, timeoutMs: config.http.backendTimeoutMs }));
  }
  const cluster = new Cluster(config, store, locks, clients, log);
  const http = createHttpFrontend(config, cluster, log.child({ frontend: 'http' }));
  const admin = createAdminServer(store);
  const httpAddr = await listen(http.server, config.listen.http);
  const adminAddr = await listen(admin, config.listen.admin);
  log.info({ http: httpAddr, admin: adminAddr, backends: config.backends.map((b) => b.id), proxy: config.proxyId }, 'githa listening');
  return {
    cluster,
    addresses: { http: httpAddr, admin: adminAddr },
    async close() {
      admin.close();
      await http.close();
      await Promise.all([...clients.values()].map((c) => c.close()));
      redis.disconnect();
    },
  };
}

function listen(server: Server, address: string): Promise<AddressInfo> {
  const { host, port } = parseListen(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
