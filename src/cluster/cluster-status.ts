import type { SharedHealth } from '../state/backend-health.js';
import type { Cluster } from './cluster.js';
import type { RepositoryIndex } from '../state/repo-index.js';
import type { RepositoryStore } from '../state/repository-store.js';
import { summarize, type RepoHealth, type RepoSummary } from './status.js';

export interface BackendStatus {
  id: string;
  zone?: string | undefined;
  enabled: boolean;
  writable: boolean;
  /** up/down as this githa's health sees it, or as shared in Redis by any githa (`unknown` when neither knows). */
  health: 'up' | 'down' | 'unknown';
  detail?: string | undefined;
  /** Repositories this backend leads / lags behind in. */
  leads: number;
  stale: number;
}

export interface ClusterStatus {
  at: number;
  writeQuorum: number;
  repositories: Array<RepoSummary & { repo: string; lastWriteAt?: number | undefined }>;
  backends: BackendStatus[];
  counts: Record<RepoHealth, number>;
  /** (repository, backend) pairs that are stale: what replication still has to copy. */
  backlog: number;
}

const PAGE = 200;

/**
 * Every repository's state and every backend's health in one pass over
 * githa:repos (pipelined reads, PAGE repositories a round trip): the source of
 * `githa status`, `/status` and the repository-state metrics. `shared` is the
 * health other githa processes published (the CLI has no probes of its own).
 */
export async function collectStatus(
  cluster: Cluster,
  state: { repos: Pick<RepositoryStore, 'read'>; index: Pick<RepositoryIndex, 'repositories' | 'lastWrites'> },
  shared: ReadonlyMap<string, SharedHealth> = new Map(),
  onPage?: (done: number) => void,
): Promise<ClusterStatus> {
  const { config } = cluster;
  const { repos, index } = state;
  const active = cluster.activeBackends().map((b) => b.id);
  const now = Date.now();
  const repositories: ClusterStatus['repositories'] = [];
  const names: string[] = [];
  for await (const page of index.repositories(PAGE)) names.push(...page);
  names.sort();
  for (let i = 0; i < names.length; i += PAGE) {
    const slice = names.slice(i, i + PAGE);
    const [states, scores] = await Promise.all([Promise.all(slice.map((r) => repos.read(r))), index.lastWrites(slice)]);
    slice.forEach((repo, j) => {
      const lastWriteAt = scores[j] || undefined;
      repositories.push({ repo, lastWriteAt, ...summarize(states[j]!, active, config.replication.writeQuorum, lastWriteAt, now) });
    });
    onPage?.(Math.min(names.length, i + PAGE));
  }
  const counts: Record<RepoHealth, number> = { synchronized: 0, partial: 0, unsynchronized: 0, ambiguous: 0, frozen: 0 };
  for (const r of repositories) counts[r.state]++;
  const local = new Map(cluster.health.snapshot(config.backends.map((b) => b.id)).map((h) => [h.id, h]));
  const backends = config.backends.map((b): BackendStatus => {
    const mine = local.get(b.id);
    const theirs = shared.get(b.id);
    const health = theirs ? (theirs.up ? 'up' : 'down') : mine && !mine.up ? 'down' : 'unknown';
    return {
      id: b.id,
      zone: b.zone,
      enabled: cluster.isEnabled(b.id),
      writable: cluster.isWritable(b.id),
      health,
      detail: theirs?.detail ?? mine?.detail,
      leads: repositories.filter((r) => r.leaders.includes(b.id)).length,
      stale: repositories.filter((r) => r.stale.includes(b.id)).length,
    };
  });
  return { at: now, writeQuorum: config.replication.writeQuorum, repositories, backends, counts, backlog: repositories.reduce((n, r) => n + r.stale.length, 0) };
}
