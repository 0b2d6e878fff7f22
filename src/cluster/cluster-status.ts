import type { SharedHealth } from '../state/backend-health.js';
import { isAssigned, scoped } from './assignment.js';
import type { Cluster } from './cluster.js';
import type { RepositoryIndex } from '../state/repo-index.js';
import type { RepositoryStore } from '../state/repository-store.js';
import type { Gone } from '../state/repo-state.js';
import type { Inventory } from './inventory.js';
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
  /** Absent in a snapshot built elsewhere (tests). */
  copies?: CopiesStatus;
  /**
   * Backend ids not in the configuration that repositories are still assigned to → how many (a backend removed while
   * it held copies: re-replication replaces it, docs/architecture.md "Re-replication"). Absent when none.
   */
  unconfigured?: Record<string, number>;
  /**
   * `work`: a snapshot of the work index only (src/cluster/work-status.ts, behind /metrics): `repositories` names the
   * repositories that need work, every other one is whole and only counted. Absent: every repository is listed.
   */
  scope?: 'work';
}

/**
 * Copies against records (docs/operations.md "Inventory and recovery after
 * Redis loss"): from the managed backends' listings when some enabled backend
 * has admin, and from the records' own drift (`missing`) always. Untracked
 * copies are found only by a listing.
 */
export interface CopiesStatus {
  /** Enabled backends whose listing was read for this snapshot. */
  listed: string[];
  /** Enabled backends without admin: not listed (an untracked copy there is not seen). */
  notListable: string[];
  /** Enabled backends with admin whose listing failed. */
  unlisted: Array<{ backend: string; error: string }>;
  /** Backend → repositories recorded without a copy there, ghosts aside (also the progress of filling a new backend), for every enabled backend. */
  missing: Record<string, string[]>;
  /** Copies on a listed backend with no record and no tombstone. */
  untracked: string[];
  /** Recorded repositories with no copy on any enabled backend. */
  ghosts: string[];
  /** Deleted or renamed repositories a listed backend still holds. */
  leftovers: string[];
  /** Backend → paths its listing found with no valid repository name. */
  invalid: Record<string, string[]>;
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
  /** Lists the managed backends (listing only, never a probe per repository); absent: the records' evidence only. */
  inventory?: Pick<Inventory, 'survey'>,
): Promise<ClusterStatus> {
  const { config } = cluster;
  const { repos, index } = state;
  const active = cluster.activeBackends().map((b) => b.id);
  const now = Date.now();
  const repositories: ClusterStatus['repositories'] = [];
  const names: string[] = [];
  for await (const page of index.repositories(PAGE)) names.push(...page);
  names.sort();
  const gone = new Map<string, Gone>();
  const knownMissing = new Map<string, Set<string>>();
  const assigned = new Map<string, readonly string[]>();
  const configured = new Set(config.backends.map((b) => b.id));
  const unconfigured: Record<string, number> = {};
  for (let i = 0; i < names.length; i += PAGE) {
    const slice = names.slice(i, i + PAGE);
    const [states, scores] = await Promise.all([Promise.all(slice.map((r) => repos.read(r))), index.lastWrites(slice)]);
    slice.forEach((repo, j) => {
      const st = states[j]!;
      if (st.gone) gone.set(repo, st.gone);
      if (st.assigned) assigned.set(repo, st.assigned);
      for (const b of st.gone ? [] : (st.assigned ?? [])) if (!configured.has(b)) unconfigured[b] = (unconfigured[b] ?? 0) + 1;
      const lost = [...st.drift].filter(([b, d]) => isAssigned(st, b) && (d.checksum === 'missing' || d.kind === 'missing')).map(([b]) => b);
      if (lost.length > 0) knownMissing.set(repo, new Set(lost));
      const lastWriteAt = scores[j] || undefined;
      repositories.push({ repo, lastWriteAt, ...summarize(states[j]!, active, config.replication, lastWriteAt, now) });
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
  const copies = await copiesStatus(cluster, names, gone, knownMissing, assigned, inventory);
  const backlog = repositories.reduce((n, r) => n + r.stale.length, 0);
  return { at: now, writeQuorum: config.replication.writeQuorum, repositories, backends, counts, backlog, copies, ...(Object.keys(unconfigured).length > 0 ? { unconfigured } : {}) };
}

/** Missing copies, untracked repositories and ghosts: a listing of each managed backend, or (none) the records' drift alone. */
async function copiesStatus(
  cluster: Cluster,
  names: readonly string[],
  gone: ReadonlyMap<string, Gone>,
  knownMissing: ReadonlyMap<string, ReadonlySet<string>>,
  assigned: ReadonlyMap<string, readonly string[]>,
  inventory: Pick<Inventory, 'survey'> | undefined,
): Promise<CopiesStatus> {
  const active = cluster.activeBackends().map((b) => b.id);
  const managed = active.filter((id) => cluster.ctx.backends.admin(id) !== undefined);
  const missing: Record<string, string[]> = Object.fromEntries(active.map((id) => [id, []]));
  const status: CopiesStatus = { listed: [], notListable: active.filter((id) => !managed.includes(id)), unlisted: [], missing, untracked: [], ghosts: [], leftovers: [], invalid: {} };
  if (!inventory || managed.length === 0) {
    // No listing (cheap): only what the records say, i.e. repairs that found a copy missing.
    for (const repo of names) {
      if (gone.has(repo)) continue;
      const lost = knownMissing.get(repo);
      if (!lost) continue;
      // A ghost has no copy to fill the others from: named as a ghost, not as missing copies.
      const mine = scoped({ assigned: assigned.get(repo) }, active);
      if (mine.length > 0 && mine.every((id) => lost.has(id))) status.ghosts.push(repo);
      else for (const b of mine.filter((id) => lost.has(id))) missing[b]!.push(repo);
    }
    return status;
  }
  const report = await inventory.survey({ probe: false, tracked: names, gone, scanTombstones: false, knownMissing, assigned });
  for (const b of report.backends) {
    if (b.how === 'listed') status.listed.push(b.backend);
    if (b.how === 'unreachable') status.unlisted.push({ backend: b.backend, error: b.error ?? 'unreachable' });
    if (b.invalid.length > 0) status.invalid[b.backend] = [...b.invalid];
  }
  for (const row of report.rows) {
    if (row.class === 'missing') for (const b of row.missing) missing[b]?.push(row.repo);
    if (row.class === 'untracked') status.untracked.push(row.repo);
    if (row.class === 'ghost') status.ghosts.push(row.repo);
    if (row.class === 'leftover') status.leftovers.push(row.repo);
  }
  return status;
}
