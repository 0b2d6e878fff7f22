import type { BackendClient, RefTip, RepositoryAdmin } from '../../src/backends/types.js';
import { Backends } from '../../src/cluster/backends.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import { Health } from '../../src/cluster/health.js';
import { NO_OBSERVER } from '../../src/cluster/observer.js';
import { NO_REPAIRS } from '../../src/cluster/read-check.js';
import { buildConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import type { RefAdvertisement } from '../../src/protocol/advertisement.js';
import { ZERO_OID, type RefCommand } from '../../src/protocol/receive-pack-request.js';
import type { ReportStatus } from '../../src/protocol/report-status.js';
import { MemoryPairLocks, MemoryStore, MemoryWriteLocks } from './memory-store.js';

/*
 * In-memory backends and a ClusterContext over them and the in-memory store
 * (./memory-store.ts): the cluster's decisions in unit tests.
 */

/** A backend whose refs live in memory: githa's Git client of it, applying pushed commands to its refs. */
export class FakeBackend implements BackendClient {
  readonly refs = new Map<string, Map<string, string>>();
  /** repo → objects it holds beyond its refs' tips (what hasObjects answers from). */
  readonly objects = new Map<string, Set<string>>();
  /** Every fetchPack asked of it: wants and haves. */
  readonly fetches: { repo: string; wants: readonly string[]; haves: readonly string[] }[] = [];
  /** Called as a push arrives, before its commands apply (to look at the state at that moment). */
  onPush: (repo: string, commands: readonly RefCommand[]) => void = () => {};

  constructor(readonly id: string) {}

  set(repo: string, refs: Record<string, string>): void {
    this.refs.set(repo, new Map(Object.entries(refs)));
  }

  async listRefs(repo: string): Promise<RefTip[] | null> {
    const r = this.refs.get(repo);
    return r ? [...r].map(([name, oid]) => ({ name, oid })) : null;
  }

  async receivePackAdvertisement(repo: string): Promise<RefAdvertisement | null> {
    const r = await this.listRefs(repo);
    if (!r) return null;
    return { version: 0, refs: r.map((x) => ({ ...x })), peeled: new Map(), capabilities: ['report-status', 'atomic', 'delete-refs', 'ofs-delta'], shallow: [] };
  }

  /** Objects it holds: its tips and `objects`. */
  holds(repo: string): Set<string> {
    return new Set([...(this.refs.get(repo)?.values() ?? []), ...(this.objects.get(repo) ?? [])]);
  }

  async hasObjects(repo: string, _tip: string, oids: readonly string[]): Promise<Set<string>> {
    const held = this.holds(repo);
    return new Set(oids.filter((o) => held.has(o)));
  }

  async *fetchPack(repo: string, wants: readonly string[], haves: readonly string[]): AsyncIterable<Buffer> {
    this.fetches.push({ repo, wants, haves });
    yield Buffer.from('PACK');
  }

  async pushPack(repo: string, commands: readonly RefCommand[], _caps: readonly string[] = [], pack: AsyncIterable<Buffer> | null = null): Promise<ReportStatus> {
    // The pack is read to its end, as receive-pack does, before the commands apply.
    if (pack) for await (const chunk of pack) void chunk;
    this.onPush(repo, commands);
    const r = this.refs.get(repo)!;
    for (const c of commands) {
      if ((r.get(c.ref) ?? ZERO_OID) !== c.oldOid) return { unpackOk: true, refs: commands.map((x) => ({ ref: x.ref, ok: false, reason: 'stale info' })) };
    }
    for (const c of commands) {
      if (c.newOid === ZERO_OID) r.delete(c.ref);
      else r.set(c.ref, c.newOid);
      if (c.newOid !== ZERO_OID) this.objects.set(repo, new Set([...(this.objects.get(repo) ?? []), c.newOid]));
    }
    return { unpackOk: true, refs: commands.map((c) => ({ ref: c.ref, ok: true })) };
  }

  async probe(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A ClusterContext of in-memory parts over `ids` backends. */
export function memoryCluster(ids: string[], overrides: { writeQuorum?: number; factor?: number; admins?: ReadonlyMap<string, RepositoryAdmin> } = {}): {
  ctx: ClusterContext;
  store: MemoryStore;
  backends: Map<string, FakeBackend>;
  directory: Backends;
  config: Config;
} {
  const config = buildConfig(
    {
      redis: { url: 'redis://127.0.0.1:1' },
      backends: ids.map((id, i) => ({ id, http: `http://127.0.0.1:${10_000 + i}/` })),
      replication: { writeQuorum: overrides.writeQuorum ?? 1, background: false, ...(overrides.factor ? { factor: overrides.factor } : {}) },
    },
    {},
  );
  const store = new MemoryStore();
  const backends = new Map(ids.map((id) => [id, new FakeBackend(id)]));
  const health = new Health(config.health);
  const directory = new Backends(config, backends as ReadonlyMap<string, BackendClient>, health, overrides.admins);
  const ctx: ClusterContext = {
    config,
    log: createLogger('silent'),
    repos: store,
    index: { noteWrite: async () => {}, repositories: async function* () {}, claimVerify: async () => true, count: async () => 0, contains: async (r) => r.map(() => false), noteKept: async () => {} },
    clock: { now: async () => Date.now() },
    pairs: new MemoryPairLocks(store),
    writeLocks: new MemoryWriteLocks(store),
    health,
    observer: NO_OBSERVER,
    repairs: NO_REPAIRS,
    backends: directory,
  };
  return { ctx, store, backends, directory, config };
}
