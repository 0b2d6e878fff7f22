import type { RedisClient } from './redis.js';
import { ClusterStateUnavailableError } from '../errors.js';
import type { Keys } from './keys.js';
import { decodeCommands } from './marker-commands.js';
import { guarded } from './redis-call.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';

/*
 * One repository's state as githa reads it (docs/redis.md): the types, and
 * the one-round-trip read, parsed by name rather than by position.
 */

export type FreezeReason = 'write-interrupted' | 'leaders-lost' | 'ambiguous' | 'maintenance';

/** The fields a marker is written with (docs/redis.md `writing`). */
export interface MarkerFields {
  id: string;
  backend: string;
  proxy: string;
  user: string;
  transport: string;
  started: number;
  preChecksum: string;
  /** The push's command list, encoded (src/state/marker-commands.ts); absent when not known (yet) or over the cap. */
  commands?: string;
  /** Fan-out copies (space-separated), named in the same turn as the marker itself, before any byte goes (docs/redis.md `writing`). */
  copies?: string;
}

/** A marker as read back: what it was written with, its heartbeat (Redis clock), and its quorum-copy targets. */
export interface WritingMarker extends Omit<MarkerFields, 'commands' | 'copies'> {
  heartbeat: number;
  /** Backends the write's quorum copies go to (named before any copy starts). */
  copies: readonly string[];
  /** The push's commands, when the marker holds the whole list; undefined when unknown. */
  commands?: readonly RefCommand[];
}

export interface FrozenState {
  reason: FreezeReason;
  detail: string;
  since: number;
  /** The backends the freeze concerns; absent in a record written before githa kept them (then: all of them). */
  backends?: readonly string[];
}

/**
 * What a drifted copy holds, as its repair found it (docs/architecture.md
 * "Verified copies"): no repository (`missing`), no refs while the record
 * has some (`empty`), only what the leaders have too (`behind`: refilled
 * with nothing to keep), or commits the leaders lack (`divergent`: kept
 * under refs/githa/kept/ first).
 */
export type DriftKind = 'missing' | 'empty' | 'behind' | 'divergent';
const DRIFT_KINDS: ReadonlySet<string> = new Set<DriftKind>(['missing', 'empty', 'behind', 'divergent']);

/** A drift entry: the copy's live checksum (or 'missing'), since when, and its kind once known. */
export interface Drift {
  checksum: string;
  at: number;
  kind?: DriftKind;
}

/** Parses a drift value `"<live checksum or 'missing'> <ms>[ <kind>]"` (docs/redis.md). */
export function parseDrift(value: string): Drift {
  const [checksum = '', at = '0', kind] = value.split(' ');
  const d: Drift = { checksum, at: Number(at) };
  if (kind !== undefined && DRIFT_KINDS.has(kind)) d.kind = kind as DriftKind;
  return d;
}

/**
 * A deleted or renamed repository's tombstone (docs/redis.md `gone`):
 * reads and pushes are refused with RepositoryGoneError. `deleting` and
 * `renaming` while the operator's command moves the copies; `deleted` and
 * `renamed` once it did (the records are gone then, the tombstone stays).
 */
export interface Gone {
  kind: 'deleting' | 'deleted' | 'renaming' | 'renamed';
  /** renaming/renamed: the new name. */
  to?: string;
  /** When (ms since epoch). */
  at: number;
  /** deleting/deleted: the UTC stamp of the trash directory the copies went to (`20261206T074700Z`). */
  stamp?: string;
  /** Who: the operator's user name, or the githa that ran it. */
  by: string;
  /** deleted/renamed: the record the repository had (field `record`, JSON), so `githa restore` can put it back. */
  record?: SavedRecord;
}

/** A retired repository's versions and checksums, kept in its tombstone (docs/redis.md `gone`). */
export interface SavedRecord {
  versions: ReadonlyMap<string, number>;
  checksums: ReadonlyMap<string, string>;
  /** The assignment it had (docs/redis.md `assigned`); absent: none (every backend). */
  assigned?: readonly string[] | undefined;
}

/** The JSON of a saved record (`{"versions":{"b1":"3"},"checksums":{"b1":"…"}}`, as the RETIRE script writes it). */
export function savedRecordJson(r: SavedRecord): string {
  const assigned = r.assigned && r.assigned.length > 0 ? { assigned: [...r.assigned] } : {};
  return JSON.stringify({ versions: Object.fromEntries([...r.versions].map(([b, v]) => [b, String(v)])), checksums: Object.fromEntries(r.checksums), ...assigned });
}

function parseSavedRecord(json: string): SavedRecord | undefined {
  try {
    const o = JSON.parse(json) as { versions?: unknown; checksums?: unknown; assigned?: unknown };
    const obj = (x: unknown): Record<string, unknown> => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : {});
    const assigned = Array.isArray(o.assigned) ? o.assigned.filter((b): b is string => typeof b === 'string').sort() : [];
    return {
      versions: new Map(Object.entries(obj(o.versions)).map(([b, v]) => [b, Number(v)] as const).filter(([, v]) => Number.isInteger(v) && v > 0)),
      checksums: new Map(Object.entries(obj(o.checksums)).filter((e): e is [string, string] => typeof e[1] === 'string')),
      ...(assigned.length > 0 ? { assigned } : {}),
    };
  } catch {
    return undefined;
  }
}

const GONE_KINDS: ReadonlySet<string> = new Set<Gone['kind']>(['deleting', 'deleted', 'renaming', 'renamed']);

/** Parses the `gone` hash; undefined when there is none (or it is not one githa wrote). */
export function parseGone(h: Hash): Gone | undefined {
  if (!h.kind || !GONE_KINDS.has(h.kind)) return undefined;
  const g: Gone = { kind: h.kind as Gone['kind'], at: Number(h.at ?? 0), by: h.by ?? '' };
  if (h.to) g.to = h.to;
  if (h.stamp) g.stamp = h.stamp;
  const record = h.record ? parseSavedRecord(h.record) : undefined;
  if (record) g.record = record;
  return g;
}

/** The fields of a `gone` hash as written (the inverse of parseGone). */
export function goneFields(g: Gone): Record<string, string> {
  return {
    kind: g.kind,
    at: String(g.at),
    by: g.by,
    ...(g.to ? { to: g.to } : {}),
    ...(g.stamp ? { stamp: g.stamp } : {}),
    ...(g.record ? { record: savedRecordJson(g.record) } : {}),
  };
}

/** One repository's state as read in one round trip. */
export interface RepoState {
  versions: ReadonlyMap<string, number>;
  checksums: ReadonlyMap<string, string>;
  writing?: WritingMarker;
  frozen?: FrozenState;
  /** Whether some githa holds the write lock (a push is in flight, or its lease has not run out yet). */
  locked?: boolean;
  /** Backends whose marker was cleared by force, until when (epoch ms): no writes go to them. */
  suspect: ReadonlyMap<string, number>;
  /** Backends whose live checksum differs from the recorded one: not leaders until resolved. */
  drift: ReadonlyMap<string, Drift>;
  /** Random id of this record, new at every adoption or recovery. */
  epoch?: string;
  /** The tombstone of a deleted or renamed repository. */
  gone?: Gone;
  /**
   * The backends that should hold it (docs/redis.md `assigned`), sorted; undefined when no assignment is
   * recorded: then every configured backend does (today's behaviour, `replication.factor` unset).
   */
  assigned?: readonly string[];
  /**
   * Replacement → the lost backend it replaces, while a re-replication runs (docs/redis.md `replacing`,
   * docs/architecture.md "Re-replication"); absent when none runs.
   */
  replacing?: ReadonlyMap<string, string>;
}

export const EMPTY_STATE: RepoState = { versions: new Map(), checksums: new Map(), suspect: new Map(), drift: new Map() };

type Hash = Record<string, string>;

function words(s: string | undefined): string[] {
  return (s ?? '').split(' ').filter((w) => w !== '');
}

/** Builds a RepoState from the hashes as Redis holds them (also the in-memory store's format). */
export function parseRepoState(h: {
  versions: Hash;
  checksums: Hash;
  writing: Hash;
  frozen: Hash;
  locked: boolean;
  suspect: Hash;
  drift: Hash;
  epoch: string | null;
  gone?: Hash;
  assigned?: Hash;
  replacing?: Hash;
}): RepoState {
  const state: RepoState = {
    versions: new Map(Object.entries(h.versions).map(([b, v]) => [b, Number(v)])),
    checksums: new Map(Object.entries(h.checksums)),
    locked: h.locked,
    suspect: new Map(Object.entries(h.suspect).map(([b, until]) => [b, Number(until)])),
    drift: new Map(Object.entries(h.drift).map(([b, v]) => [b, parseDrift(v)])),
  };
  if (typeof h.epoch === 'string') state.epoch = h.epoch;
  const gone = h.gone ? parseGone(h.gone) : undefined;
  if (gone) state.gone = gone;
  const assigned = Object.keys(h.assigned ?? {});
  if (assigned.length > 0) state.assigned = assigned.sort();
  const replacing = Object.entries(h.replacing ?? {});
  if (replacing.length > 0) state.replacing = new Map(replacing);
  const w = h.writing;
  if (w.id) {
    state.writing = {
      id: w.id,
      backend: w.backend ?? '',
      proxy: w.proxy ?? '',
      user: w.user ?? '',
      transport: w.transport ?? '',
      started: Number(w.started ?? 0),
      heartbeat: Number(w.heartbeat ?? 0),
      preChecksum: w.preChecksum ?? '',
      copies: words(w.copies),
    };
    const commands = decodeCommands(w.commands);
    if (commands) state.writing.commands = commands;
  }
  const f = h.frozen;
  if (f.reason) {
    state.frozen = { reason: f.reason as FreezeReason, detail: f.detail ?? '', since: Number(f.since ?? 0) };
    if (f.backends !== undefined) state.frozen.backends = words(f.backends);
  }
  return state;
}

/** Versions, checksums, marker, freeze state and whether the write lock is held: one round trip (a pipeline). */
export async function readRepoState(redis: RedisClient, k: Keys, repo: string): Promise<RepoState> {
  const parts = {
    versions: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.versions(repo)),
    checksums: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.checksums(repo)),
    writing: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.writing(repo)),
    frozen: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.frozen(repo)),
    locked: (p: ReturnType<RedisClient['pipeline']>) => p.exists(k.lock(repo)),
    suspect: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.suspect(repo)),
    drift: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.drift(repo)),
    epoch: (p: ReturnType<RedisClient['pipeline']>) => p.hget(k.meta(repo), 'epoch'),
    gone: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.gone(repo)),
    assigned: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.assigned(repo)),
    replacing: (p: ReturnType<RedisClient['pipeline']>) => p.hgetall(k.replacing(repo)),
  };
  const names = Object.keys(parts) as (keyof typeof parts)[];
  const pipeline = redis.pipeline();
  for (const n of names) parts[n](pipeline);
  const results = await guarded(() => pipeline.exec());
  const by: Record<string, unknown> = {};
  names.forEach((n, i) => {
    const [err, value] = results?.[i] ?? [new Error('no reply'), undefined];
    if (err) throw new ClusterStateUnavailableError('cluster state unavailable: RedisClient answered with an error', { cause: err });
    by[n] = value;
  });
  return parseRepoState({
    versions: (by.versions ?? {}) as Hash,
    checksums: (by.checksums ?? {}) as Hash,
    writing: (by.writing ?? {}) as Hash,
    frozen: (by.frozen ?? {}) as Hash,
    locked: by.locked === 1,
    suspect: (by.suspect ?? {}) as Hash,
    drift: (by.drift ?? {}) as Hash,
    epoch: typeof by.epoch === 'string' ? by.epoch : null,
    gone: (by.gone ?? {}) as Hash,
    assigned: (by.assigned ?? {}) as Hash,
    replacing: (by.replacing ?? {}) as Hash,
  });
}

/**
 * The assignments of `names` (docs/redis.md `assigned`), each sorted (empty: none, every backend): one HKEYS per
 * name, sent together and not as one pipeline, since each name's keys are in a slot of their own (Redis Cluster).
 */
export async function readAssignments(redis: RedisClient, keys: Keys, names: readonly string[]): Promise<string[][]> {
  const rows = await guarded(() => Promise.all(names.map((repo) => redis.hkeys(keys.assigned(repo)))));
  return rows.map((assigned) => assigned.sort());
}
