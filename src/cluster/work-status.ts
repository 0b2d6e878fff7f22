import type { SharedHealth } from '../state/backend-health.js';
import { workReason, type WorkReason } from '../state/needs-work.js';
import type { RepositoryIndex } from '../state/repo-index.js';
import type { RepositoryStore } from '../state/repository-store.js';
import type { Cluster } from './cluster.js';
import type { BackendStatus, ClusterStatus } from './cluster-status.js';
import { summarize, type RepoHealth } from './status.js';

const PAGE = 200;

/** What a work-scoped snapshot adds: the index's size and why its entries are there. */
export interface WorkCounts {
  /** Known repositories (ZCARD githa:repos). */
  known: number;
  /** Repositories in the work index, by the first reason each needs work (src/state/needs-work.ts); `none`: whole by now (left for the next visit). */
  reasons: Record<WorkReason, number>;
}

/**
 * The status snapshot behind /metrics, in O(work) (docs/architecture.md "Background replication", docs/observability.md):
 * the counts of githa:repos and the work index (ZCARDs), and the state of the work index's repositories only. A
 * repository outside the index is whole: it counts as `synchronized` and has no stale, drifted or missing copy.
 * `repositories` (and the backends' leads and stale) therefore name only the index's entries (`scope: 'work'`). The
 * untracked, ghost and leftover counts need every backend's listing: a work snapshot has none (`copies.listed` empty);
 * the full snapshot (collectStatus, behind /status and `githa status`) has them.
 */
export async function collectWorkStatus(
  cluster: Cluster,
  state: { repos: Pick<RepositoryStore, 'read'>; index: Pick<RepositoryIndex, 'work' | 'sizes' | 'lastWrites'> },
  shared: ReadonlyMap<string, SharedHealth> = new Map(),
): Promise<ClusterStatus & { work: WorkCounts }> {
  const { config } = cluster;
  const { repos, index } = state;
  const active = cluster.activeBackends().map((b) => b.id);
  const ids = config.backends.map((b) => b.id);
  const now = Date.now();
  const sizes = await index.sizes();
  const names: string[] = [];
  for await (const page of index.work(PAGE)) names.push(...page);
  names.sort();
  const repositories: ClusterStatus['repositories'] = [];
  const reasons: Record<WorkReason, number> = { writing: 0, frozen: 0, suspect: 0, drift: 0, stale: 0, none: 0 };
  const missing: Record<string, string[]> = Object.fromEntries(active.map((id) => [id, []]));
  const ghosts: string[] = [];
  for (let i = 0; i < names.length; i += PAGE) {
    const slice = names.slice(i, i + PAGE);
    const [states, scores] = await Promise.all([Promise.all(slice.map((r) => repos.read(r))), index.lastWrites(slice)]);
    slice.forEach((repo, j) => {
      const st = states[j]!;
      reasons[workReason(st, ids)]++;
      const lastWriteAt = scores[j] || undefined;
      repositories.push({ repo, lastWriteAt, ...summarize(st, active, config.replication.writeQuorum, lastWriteAt, now) });
      // Copies a repair found missing (the records' own evidence, as collectStatus without a listing).
      const lost = new Set([...st.drift].filter(([, d]) => d.checksum === 'missing' || d.kind === 'missing').map(([b]) => b));
      if (lost.size === 0 || st.gone) return;
      if (active.length > 0 && active.every((id) => lost.has(id))) ghosts.push(repo);
      else for (const b of active.filter((id) => lost.has(id))) missing[b]!.push(repo);
    });
  }
  const counts: Record<RepoHealth, number> = { synchronized: 0, partial: 0, unsynchronized: 0, ambiguous: 0, frozen: 0 };
  for (const r of repositories) counts[r.state]++;
  counts.synchronized += Math.max(0, sizes.repositories - repositories.length);
  const local = new Map(cluster.health.snapshot(ids).map((h) => [h.id, h]));
  const backends = config.backends.map((b): BackendStatus => {
    const mine = local.get(b.id);
    const theirs = shared.get(b.id);
    return {
      id: b.id,
      zone: b.zone,
      enabled: cluster.isEnabled(b.id),
      writable: cluster.isWritable(b.id),
      health: theirs ? (theirs.up ? 'up' : 'down') : mine && !mine.up ? 'down' : 'unknown',
      detail: theirs?.detail ?? mine?.detail,
      leads: repositories.filter((r) => r.leaders.includes(b.id)).length,
      stale: repositories.filter((r) => r.stale.includes(b.id)).length,
    };
  });
  const notListable = active.filter((id) => cluster.ctx.backends.admin(id) === undefined);
  return {
    at: now,
    writeQuorum: config.replication.writeQuorum,
    repositories,
    backends,
    counts,
    backlog: repositories.reduce((n, r) => n + r.stale.length, 0),
    copies: { listed: [], notListable, unlisted: [], missing, untracked: [], ghosts, leftovers: [], invalid: {} },
    scope: 'work',
    work: { known: sizes.repositories, reasons },
  };
}
