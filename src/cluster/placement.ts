import { createHash } from 'node:crypto';

/**
 * Placement of a repository's copies (docs/architecture.md "Placement"):
 * which `factor` backends a new repository is assigned to. Pure and
 * deterministic: the same state gives the same choice. Unit-tested (with
 * property tests) in test/cluster/placement.test.ts.
 *
 * - Only enabled backends that are not being drained, and not down in the
 *   health, are chosen (a copy placed on a down backend misses every write
 *   until re-replication notices it).
 * - Least used first: by bytes (in units of BYTES_UNIT, so that a few pushed
 *   packs do not outweigh the repository count), then by repository count
 *   (both per backend of its host: see byUsage), then by a hash of the
 *   repository name and the backend id, so that ties spread different
 *   repositories over different backends.
 * - Spread over zones: at most ceil(factor / zones) copies in one zone while
 *   another zone can take one; when none can, the limit is lifted.
 * - Never two copies on one `backends[].host` (a backend without `host` is
 *   its own host): fewer than `factor` are chosen rather than that.
 */

export interface PlacementCandidate {
  readonly id: string;
  readonly zone?: string | undefined;
  readonly host?: string | undefined;
  readonly enabled: boolean;
  /** Being drained (`githa backend drain`): gets nothing new. */
  readonly draining?: boolean | undefined;
  /** False: down in the health (docs/architecture.md "Health"): gets nothing new. Absent: up. */
  readonly up?: boolean | undefined;
  /** Repositories assigned to it (docs/redis.md `placement`). */
  readonly repos: number;
  /** Bytes of the repositories on it, approximate (docs/redis.md `placement`). */
  readonly bytes: number;
}

/** Bytes are compared in these units: usage that differs by less counts as equal, and the repository count decides. */
export const BYTES_UNIT = 256 * 1024 * 1024;

export interface PlaceOptions {
  /** Backends that hold it already and stay (adoption, a raised factor): they count towards the factor, the zones and the hosts. */
  readonly keep?: readonly string[];
}

/** The tie-break: a hash of the repository and the backend, so equal backends are taken in a different order per repository. */
function tie(repo: string, id: string): string {
  return createHash('sha256').update(`${repo}\0${id}`).digest('hex');
}

function hostOf(b: Pick<PlacementCandidate, 'id' | 'host'>): string {
  return b.host ?? `\0${b.id}`;
}

function zoneOf(b: Pick<PlacementCandidate, 'zone'>): string {
  return b.zone ?? '';
}

/**
 * Least used first: by the use of the backend's host per backend (bytes in
 * BYTES_UNIT, then repositories: backends sharing a host take at most one
 * copy of a repository between them, so a host is ranked by its backends'
 * average), then the backend's own repositories, then the hash.
 */
export function byUsage(repo: string, backends: readonly PlacementCandidate[]): PlacementCandidate[] {
  const key = new Map(backends.map((b) => [b.id, tie(repo, b.id)]));
  const hosts = new Map<string, { n: number; repos: number; bytes: number }>();
  for (const b of backends) {
    const h = hosts.get(hostOf(b)) ?? { n: 0, repos: 0, bytes: 0 };
    hosts.set(hostOf(b), { n: h.n + 1, repos: h.repos + b.repos, bytes: h.bytes + b.bytes });
  }
  const host = (b: PlacementCandidate): { n: number; repos: number; bytes: number } => hosts.get(hostOf(b))!;
  return [...backends].sort((a, b) => {
    const ha = host(a);
    const hb = host(b);
    const ua = Math.floor(ha.bytes / ha.n / BYTES_UNIT);
    const ub = Math.floor(hb.bytes / hb.n / BYTES_UNIT);
    if (ua !== ub) return ua - ub;
    // Compared without dividing: repos_a / n_a against repos_b / n_b.
    if (ha.repos * hb.n !== hb.repos * ha.n) return ha.repos * hb.n - hb.repos * ha.n;
    // A tie goes to the host with more backends: it has the more room, and takes at most one copy at a time.
    if (ha.n !== hb.n) return hb.n - ha.n;
    if (a.repos !== b.repos) return a.repos - b.repos;
    const ka = key.get(a.id)!;
    const kb = key.get(b.id)!;
    return ka < kb ? -1 : ka > kb ? 1 : a.id < b.id ? -1 : 1;
  });
}

/**
 * The backends `repo` is assigned to: `keep` (those still eligible, up to
 * `factor`) plus the least used others, in the order chosen. Fewer than
 * `factor` when not enough eligible backends on distinct hosts exist.
 */
export function place(repo: string, factor: number, backends: readonly PlacementCandidate[], opts: PlaceOptions = {}): string[] {
  const byId = new Map(backends.map((b) => [b.id, b]));
  const eligible = backends.filter((b) => b.enabled && b.draining !== true && b.up !== false);
  const chosen: PlacementCandidate[] = [];
  const hosts = new Set<string>();
  const perZone = new Map<string, number>();
  const take = (b: PlacementCandidate): void => {
    chosen.push(b);
    hosts.add(hostOf(b));
    perZone.set(zoneOf(b), (perZone.get(zoneOf(b)) ?? 0) + 1);
  };
  for (const id of opts.keep ?? []) {
    const b = byId.get(id);
    if (b && chosen.length < factor && !hosts.has(hostOf(b))) take(b);
  }
  const zones = new Set([...eligible, ...chosen].map(zoneOf)).size;
  const limit = Math.ceil(factor / Math.max(1, zones));
  const order = byUsage(repo, eligible.filter((b) => !chosen.includes(b)));
  // First within the zone limit, then (no zone could take one) without it; the host rule always holds.
  for (const capped of [true, false]) {
    for (const b of order) {
      if (chosen.length >= factor) break;
      if (chosen.includes(b) || hosts.has(hostOf(b))) continue;
      if (capped && (perZone.get(zoneOf(b)) ?? 0) >= limit) continue;
      take(b);
    }
  }
  return chosen.map((b) => b.id);
}

/**
 * Which assigned backends a lowered factor unassigns (`githa repo factor`):
 * non-leaders first, then the most used, so the copies that stay are the
 * current ones on the least used backends. Pure; `leaders` from the record.
 */
export function toUnassign(repo: string, assigned: readonly string[], factor: number, leaders: ReadonlySet<string>, backends: readonly PlacementCandidate[]): string[] {
  const extra = assigned.length - factor;
  if (extra <= 0) return [];
  const usage = new Map(byUsage(repo, backends).map((b, i) => [b.id, i]));
  const rank = (id: string): number => usage.get(id) ?? Number.MAX_SAFE_INTEGER;
  const order = [...assigned].sort((a, b) => Number(leaders.has(a)) - Number(leaders.has(b)) || rank(b) - rank(a) || (a < b ? -1 : 1));
  return order.slice(0, extra);
}
