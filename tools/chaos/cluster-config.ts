/**
 * githa's configuration for a chaos run (docs/chaos.md "githa settings"):
 * short leases and intervals, so faults resolve within seconds, and mixed
 * transports per backend. With a replication factor (issue 22) every backend
 * has its admin account, so `githa create` places repositories and `githa
 * move` creates and trashes copies (docs/operations.md "The admin account").
 */
import type { DevBackend, DevCluster } from '../../src/demo/cluster.js';

export const LEASE_MS = 1_500;
export const PAIR_LOCK_MS = 5_000;

/**
 * The transports of the i-th backend, in a cycle of three: HTTP and SSH;
 * HTTP and git://; SSH and git:// (no HTTP). githa's own client then uses
 * HTTP where there is one, SSH otherwise; SSH clients are served by the
 * backend's sshd or git daemon.
 */
function endpoints(b: DevBackend, i: number): Record<string, string> {
  switch (i % 3) {
    case 0:
      return { http: b.httpUrl, ssh: b.sshUrl };
    case 1:
      return { http: b.httpUrl, git: b.gitUrl };
    default:
      return { ssh: b.sshUrl, git: b.gitUrl };
  }
}

export interface ConfigOptions {
  readonly name: string;
  readonly hostKey: string;
  readonly authorizedKeys: string;
  readonly redisUrl: string;
  readonly fanOut: boolean;
  /** replication.factor; absent: every backend holds every repository. */
  readonly factor?: number | undefined;
}

export function githaConfig(cluster: DevCluster, o: ConfigOptions): Record<string, unknown> {
  const managed = o.factor !== undefined;
  return {
    ssh: { hostKeys: [o.hostKey], authorizedKeys: o.authorizedKeys, backendKey: cluster.ssh.clientKeyPath, backendKnownHosts: cluster.ssh.knownHostsPath },
    redis: { url: o.redisUrl, commandTimeoutMs: 2_000 },
    backends: cluster.backends.map((b, i) => {
      const e = endpoints(b, i);
      // The admin account: the ssh URL's own account when the backend has one, else its sshd's URL.
      return { id: b.id, ...e, ...(managed ? { admin: e.ssh !== undefined ? true : b.sshUrl } : {}) };
    }),
    proxyId: o.name,
    locks: { leaseMs: LEASE_MS, waitMs: 8_000 },
    catchUp: { readWaitMs: 3_000, pairLockMs: PAIR_LOCK_MS },
    health: { intervalMs: 300, timeoutMs: 1_000, failuresToDown: 2, successesToUp: 1, ttlMs: 3_000, downForMs: 1_500 },
    replication: { writeQuorum: 2, scanIntervalMs: 500, retryMinMs: 100, retryMaxMs: 1_000, quorumTimeoutMs: 5_000, fanOut: o.fanOut, ...(managed ? { factor: o.factor } : {}) },
    interruptions: { staleAfterMs: 1_500, suspectGraceMs: 3_000 },
    // Copy faults change a copy behind githa's back: the verifier should find it within seconds in a run this short.
    verify: { intervalMs: 5_000, perSecond: 50 },
    http: { backendTimeoutMs: 5_000 },
    log: { level: 'info' },
  };
}
