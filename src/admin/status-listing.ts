import type { Cluster } from '../cluster/cluster.js';
import type { ClusterStatus } from '../cluster/cluster-status.js';
import { summarize, type RepoHealth } from '../cluster/status.js';
import type { StateParts } from '../state/state.js';

/** Rows of one /status page (docs/observability.md "/status"): at 10,000 repositories the unpaged page was 2.6 MB. */
export const STATUS_PAGE_SIZE = 100;

/** Rows of the "needing attention" box above the list. */
export const ATTENTION_SHOWN = 20;

/** Repositories needing attention first: the order of the counts, the box and a filtered list. */
export const HEALTH_ORDER: readonly RepoHealth[] = ['frozen', 'ambiguous', 'unsynchronized', 'partial', 'synchronized'];

/** The states a list can be filtered to (synchronized is the whole list's normal case, not a filter). */
export const ATTENTION_STATES: readonly RepoHealth[] = HEALTH_ORDER.filter((s) => s !== 'synchronized');

export type StatusRow = ClusterStatus['repositories'][number];

export interface StatusQuery {
  /** 1-based. */
  page: number;
  /** Only repositories in this state (from the snapshot); absent: every repository, most recently written first. */
  state?: RepoHealth | undefined;
}

/** One page of the repository list. */
export interface StatusListing {
  query: StatusQuery;
  rows: StatusRow[];
  /** Repositories in the whole list (ZCARD githa:repos, or the filter's count). */
  total: number;
  pages: number;
  /** The first ATTENTION_SHOWN repositories needing attention, attention first (unfiltered pages only). */
  attention: StatusRow[];
  /** How many need attention in all (the snapshot's). */
  attentionTotal: number;
}

/** `?page=N&state=S` → a query; anything invalid is the first page of the whole list. */
export function parseStatusQuery(search: string): StatusQuery {
  const params = new URLSearchParams(search);
  const n = Number(params.get('page') ?? '1');
  const page = Number.isSafeInteger(n) && n >= 1 ? n : 1;
  const s = params.get('state');
  const state = ATTENTION_STATES.find((x) => x === s);
  return state ? { page, state } : { page };
}

/** Repositories needing attention first (frozen … partial), then by name: pure, unit-tested. */
export function attentionFirst(rows: readonly StatusRow[]): StatusRow[] {
  const rank = new Map(HEALTH_ORDER.map((s, i) => [s, i]));
  return rows
    .filter((r) => r.state !== 'synchronized')
    .sort((a, b) => rank.get(a.state)! - rank.get(b.state)! || (a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0));
}

/**
 * One page: filtered by state, a slice of the snapshot's repositories in that
 * state (no read); unfiltered, one page of `githa:repos` (ZREVRANGE, most
 * recently written first) whose states are read now, STATUS_PAGE_SIZE
 * repositories and never the others, and the total from ZCARD.
 */
export async function statusListing(
  cluster: Cluster,
  parts: Pick<StateParts, 'repos' | 'index'>,
  snapshot: ClusterStatus,
  query: StatusQuery,
): Promise<StatusListing> {
  const needy = attentionFirst(snapshot.repositories);
  const offset = (query.page - 1) * STATUS_PAGE_SIZE;
  if (query.state) {
    const all = needy.filter((r) => r.state === query.state);
    return { query, rows: all.slice(offset, offset + STATUS_PAGE_SIZE), total: all.length, pages: pagesOf(all.length), attention: [], attentionTotal: needy.length };
  }
  const [total, page] = await Promise.all([parts.index.count(), parts.index.newest(offset, STATUS_PAGE_SIZE)]);
  const states = await Promise.all(page.map((p) => parts.repos.read(p.repo)));
  const active = cluster.activeBackends().map((b) => b.id);
  const now = Date.now();
  const rows = page.map(({ repo, lastWrite }, i): StatusRow => {
    const lastWriteAt = lastWrite || undefined;
    return { repo, lastWriteAt, ...summarize(states[i]!, active, cluster.config.replication.writeQuorum, lastWriteAt, now) };
  });
  return { query, rows, total, pages: pagesOf(total), attention: needy.slice(0, ATTENTION_SHOWN), attentionTotal: needy.length };
}

function pagesOf(total: number): number {
  return Math.max(1, Math.ceil(total / STATUS_PAGE_SIZE));
}

/** The link to another page of the same list. */
export function statusHref(query: StatusQuery): string {
  const params = new URLSearchParams();
  if (query.state) params.set('state', query.state);
  if (query.page > 1) params.set('page', String(query.page));
  const q = params.toString();
  return q ? `/status?${q}` : '/status';
}
