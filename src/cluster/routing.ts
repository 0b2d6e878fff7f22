import type { RepoState } from '../state/repo-state.js';

/**
 * Routing decisions, free of I/O: given a repository's versions, the backends
 * and their health, which backend serves a read or takes a write
 * (docs/architecture.md "A read (upload-pack, ls-refs, fetch)" 2, "A push
 * (receive-pack)" 2). Unit-tested in test/cluster/routing.test.ts.
 */

export interface BackendView {
  readonly id: string;
  readonly zone?: string | undefined;
  readonly enabled: boolean;
  readonly writable: boolean;
  /** False while the backend is marked down (a recent connection failure). */
  readonly healthy: boolean;
}

export interface Leadership {
  /** The highest recorded version (0 when none). */
  readonly max: number;
  /** Backends at the highest version. */
  readonly leaders: string[];
}

/**
 * What else than versions decides leadership and preference: drifted copies
 * (their live checksum differs from the recorded one) are no leaders until
 * resolved; suspect copies, and the backend of an interrupted write, are
 * avoided while another leader can serve (docs/architecture.md "Failures resolved without a human").
 */
export interface RepoFlags {
  readonly notLeaders?: ReadonlySet<string>;
  readonly avoid?: ReadonlySet<string>;
  /** Backends no read is served from: those a live write's marker names (they may hold a push not acknowledged yet). */
  readonly excludeReads?: ReadonlySet<string>;
}

/**
 * Routing flags of one repository: drifted copies lead no more; suspect ones
 * and the backend of any write marker are avoided. A marker's backend may hold
 * refs no version records yet, whether its write is live or interrupted (and
 * while a resolver holds the lock, an interrupted marker looks locked): reads
 * and push advertisements go to the other leaders while there are any. The
 * backends a marker names as quorum-copy targets may hold the push before it
 * is acknowledged: they are avoided too. While the write is live (its lock
 * held), no read is served from any of them at all: a reader that saw the
 * push there and then read another leader without it would see it go back
 * (no dirty reads; docs/architecture.md "A read"). An interrupted write's
 * backends may serve when nothing else can: its push is adopted, or was
 * never there.
 */
export function repoFlags(state: RepoState): RepoFlags {
  const avoid = new Set(state.suspect.keys());
  const marked = state.writing ? [state.writing.backend, ...state.writing.copies] : [];
  for (const b of marked) avoid.add(b);
  return { notLeaders: new Set(state.drift.keys()), avoid, excludeReads: new Set(state.locked ? marked : []) };
}

export function leadership(versions: ReadonlyMap<string, number>, notLeaders?: ReadonlySet<string>): Leadership {
  let max = 0;
  for (const v of versions.values()) if (v > max) max = v;
  const leaders = max > 0 ? [...versions].filter(([b, v]) => v === max && !notLeaders?.has(b)).map(([b]) => b) : [];
  return { max, leaders };
}

/** Puts avoided backends after the others, keeping each group's order. */
function avoidLast<T extends { id: string }>(items: readonly T[], avoid: ReadonlySet<string> | undefined): T[] {
  if (!avoid || avoid.size === 0) return [...items];
  return [...items.filter((b) => !avoid.has(b.id)), ...items.filter((b) => avoid.has(b.id))];
}

export type ReadPlan =
  /** Try these in order; the first that answers serves. */
  | { kind: 'serve'; candidates: string[] }
  /** Catch `target` (a stale backend of githa's zone) up from `source`, serve from it; on failure use `fallback`. */
  | { kind: 'catch-up'; target: string; source: string; fallback: string[] }
  /** No enabled leader exists. */
  | { kind: 'no-leader'; leaders: string[] };

export type WritePlan =
  | { kind: 'write'; candidates: string[] }
  /** No writable leader: copy a leader to the writable `target` first. */
  | { kind: 'catch-up'; target: string; source: string }
  | { kind: 'no-leader'; leaders: string[] };

/** Rotates `items` by `turn` so successive requests spread over them (round robin). */
export function rotate<T>(items: readonly T[], turn: number): T[] {
  if (items.length < 2) return [...items];
  const k = ((turn % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * Reads: a healthy leader of githa's zone; else a healthy stale backend of the
 * zone, caught up first; else any healthy leader, round robin. Leaders marked
 * down come last: a down mark is a short-lived guess, not a verdict.
 */
export function planRead(
  versions: ReadonlyMap<string, number>,
  backends: readonly BackendView[],
  zone: string | undefined,
  turn: number,
  flags: RepoFlags = {},
): ReadPlan {
  const { leaders } = leadership(versions, flags.notLeaders);
  const active = backends.filter((b) => b.enabled);
  const isLeader = new Set(leaders);
  const activeLeaders = active.filter((b) => isLeader.has(b.id) && !flags.excludeReads?.has(b.id));
  if (activeLeaders.length === 0) return { kind: 'no-leader', leaders };

  const inZone = (b: BackendView): boolean => zone !== undefined && b.zone === zone;
  const healthy = activeLeaders.filter((b) => b.healthy);
  const down = activeLeaders.filter((b) => !b.healthy).map((b) => b.id);
  const near = rotate(healthy.filter(inZone), turn).map((b) => b.id);
  const far = rotate(healthy.filter((b) => !inZone(b)), turn).map((b) => b.id);
  const ordered = [...avoidLast([...near, ...far].map((id) => ({ id })), flags.avoid).map((b) => b.id), ...down];
  if (near.length > 0 || zone === undefined) return { kind: 'serve', candidates: ordered };

  const staleNear = active.filter((b) => inZone(b) && b.healthy && !isLeader.has(b.id) && !flags.notLeaders?.has(b.id));
  const source = far[0];
  const target = rotate(staleNear, turn)[0];
  if (target && source) return { kind: 'catch-up', target: target.id, source, fallback: ordered };
  return { kind: 'serve', candidates: ordered };
}

/**
 * Writes: a healthy, enabled, writable leader (githa's zone first). When every
 * leader is read-only ("prevent writes"), a writable backend is caught up from
 * a leader first and takes the write.
 */
export function planWrite(
  versions: ReadonlyMap<string, number>,
  backends: readonly BackendView[],
  zone: string | undefined,
  turn: number,
  flags: RepoFlags = {},
): WritePlan {
  const { leaders } = leadership(versions, flags.notLeaders);
  const isLeader = new Set(leaders);
  const active = backends.filter((b) => b.enabled);
  const activeLeaders = active.filter((b) => isLeader.has(b.id));
  if (activeLeaders.length === 0) return { kind: 'no-leader', leaders };

  const inZone = (b: BackendView): boolean => zone !== undefined && b.zone === zone;
  const writable = activeLeaders.filter((b) => b.writable);
  if (writable.length > 0) {
    const healthy = writable.filter((b) => b.healthy);
    const ordered = [
      ...avoidLast([...rotate(healthy.filter(inZone), turn), ...rotate(healthy.filter((b) => !inZone(b)), turn)], flags.avoid),
      ...writable.filter((b) => !b.healthy),
    ];
    return { kind: 'write', candidates: ordered.map((b) => b.id) };
  }
  const source = activeLeaders.find((b) => b.healthy) ?? activeLeaders[0];
  const targets = active.filter((b) => b.writable && b.healthy && !isLeader.has(b.id) && !flags.notLeaders?.has(b.id));
  const target = [...targets.filter(inZone), ...targets.filter((b) => !inZone(b))][0];
  if (source && target) return { kind: 'catch-up', target: target.id, source: source.id };
  return { kind: 'no-leader', leaders };
}
