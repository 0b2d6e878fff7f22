/**
 * The rebalance planner (docs/architecture.md "Moves"): pure, given each
 * repository's assignment and size and each backend's zone, host and state,
 * it lists the moves that empty the backends being drained and then even out
 * the repository count, from the most used backends to the least used. The
 * placement rules hold for every move: never two copies on one
 * `backends[].host`, and never fewer zones than the repository had.
 * Deterministic: the same input gives the same plan.
 */

export interface PlanBackend {
  id: string;
  zone?: string | undefined;
  /** The machine it runs on (`backends[].host`); absent: a machine of its own. */
  host?: string | undefined;
  /** May take new copies: enabled and not drained. */
  accepting: boolean;
  /** Being drained (`githa backend drain`): every copy leaves it. */
  draining?: boolean;
}

export interface PlanRepo {
  repo: string;
  /** The backends that hold it (its assignment). */
  assigned: readonly string[];
  /** Its size, for --max-bytes and the tie-breaks (0 when unknown). */
  bytes: number;
}

export interface PlannedMove {
  repo: string;
  from: string;
  to: string;
  bytes: number;
  why: 'drain' | 'balance';
}

export interface PlanLimits {
  maxMoves?: number | undefined;
  maxBytes?: number | undefined;
}

interface Usage {
  count: number;
  bytes: number;
}

/** Most used first: repository count, then bytes, then id (deterministic). */
function byUse(use: ReadonlyMap<string, Usage>) {
  return (a: string, b: string): number => {
    const x = use.get(a)!;
    const y = use.get(b)!;
    return y.count - x.count || y.bytes - x.bytes || (a < b ? -1 : a > b ? 1 : 0);
  };
}

/** Whether `set` keeps the placement rules: one copy per host, and at least `zones` zones. */
function placeable(set: readonly string[], backends: ReadonlyMap<string, PlanBackend>, zones: number): boolean {
  const hosts = new Set<string>();
  const z = new Set<string>();
  for (const id of set) {
    const b = backends.get(id);
    if (!b) return false;
    const host = b.host ?? `\0${id}`;
    if (hosts.has(host)) return false;
    hosts.add(host);
    z.add(b.zone ?? '');
  }
  return z.size >= zones;
}

function zonesOf(set: readonly string[], backends: ReadonlyMap<string, PlanBackend>): number {
  return new Set(set.map((id) => backends.get(id)?.zone ?? '')).size;
}

/** The moves, in the order to run them. */
export function planRebalance(backendList: readonly PlanBackend[], repoList: readonly PlanRepo[], limits: PlanLimits = {}): PlannedMove[] {
  const backends = new Map(backendList.map((b) => [b.id, b]));
  const use = new Map<string, Usage>(backendList.map((b) => [b.id, { count: 0, bytes: 0 }]));
  const repos = [...repoList].sort((a, b) => (a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0)).map((r) => ({ ...r, assigned: [...r.assigned] }));
  for (const r of repos) {
    for (const id of r.assigned) {
      const u = use.get(id);
      if (u) {
        u.count += 1;
        u.bytes += r.bytes;
      }
    }
  }
  const moves: PlannedMove[] = [];
  let bytes = 0;
  const room = (r: PlanRepo): boolean =>
    (limits.maxMoves === undefined || moves.length < limits.maxMoves) && (limits.maxBytes === undefined || bytes + r.bytes <= limits.maxBytes);
  const apply = (r: (typeof repos)[number], from: string, to: string, why: PlannedMove['why']): void => {
    r.assigned = r.assigned.map((b) => (b === from ? to : b));
    const f = use.get(from)!;
    const t = use.get(to)!;
    f.count -= 1;
    f.bytes -= r.bytes;
    t.count += 1;
    t.bytes += r.bytes;
    bytes += r.bytes;
    moves.push({ repo: r.repo, from, to, bytes: r.bytes, why });
  };
  const targets = (): string[] => backendList.filter((b) => b.accepting && !b.draining).map((b) => b.id).sort(byUse(use)).reverse();
  const limited = (): boolean => limits.maxMoves !== undefined && moves.length >= limits.maxMoves;

  // 1. Drained backends give every copy up: each to the least used backend that keeps the rules (the zone rule relaxed
  //    only when no backend keeps it; the host rule never).
  for (const r of repos) {
    for (const from of r.assigned.filter((b) => backends.get(b)?.draining)) {
      if (limited()) return moves;
      if (!room(r)) continue;
      const zones = zonesOf(r.assigned, backends);
      const others = r.assigned.filter((b) => b !== from);
      const free = targets().filter((t) => !r.assigned.includes(t));
      const to = free.find((t) => placeable([...others, t], backends, zones)) ?? free.find((t) => placeable([...others, t], backends, 0));
      if (to) apply(r, from, to, 'drain');
    }
  }

  // 2. Even out: a copy from the most used backend to the least used one, while they differ by more than one repository.
  for (;;) {
    if (limited()) return moves;
    const order = backendList.filter((b) => !b.draining && use.get(b.id)!.count > 0).map((b) => b.id).sort(byUse(use));
    const to = targets();
    let moved = false;
    for (const from of order) {
      for (const t of to) {
        if (use.get(from)!.count - use.get(t)!.count <= 1) break;
        // The largest repository that fits the byte budget and keeps the rules (ties: by name).
        const candidates = repos
          .filter((r) => r.assigned.includes(from) && !r.assigned.includes(t) && room(r))
          .filter((r) => placeable([...r.assigned.filter((b) => b !== from), t], backends, zonesOf(r.assigned, backends)))
          .sort((a, b) => b.bytes - a.bytes || (a.repo < b.repo ? -1 : 1));
        const r = candidates[0];
        if (r) {
          apply(r, from, t, 'balance');
          moved = true;
          break;
        }
      }
      if (moved) break;
    }
    if (!moved) return moves;
  }
}
