import { BackendUnavailableError } from '../errors.js';
import type { Gone } from '../state/repo-state.js';
import { Adoption, goneError } from './adoption.js';
import { BatchCopies } from './batch-copies.js';
import { boundedEach } from './bounded.js';
import type { ClusterContext } from './context.js';
import { recoverRepository, type RecoveryResult } from './recovery.js';

/**
 * What one repository is, across Redis and the backends' own listings
 * (docs/operations.md "Inventory and recovery after Redis loss"):
 * - tracked: recorded, a copy on every enabled backend that could be asked;
 * - missing: recorded, but some enabled backend has no copy (a new backend
 *   being filled, or a copy lost);
 * - untracked: a copy on some backend, no record and no tombstone;
 * - ghost: recorded, no copy on any enabled backend;
 * - leftover: deleted or renamed (a tombstone), yet a copy remains.
 */
export type InventoryClass = 'tracked' | 'missing' | 'untracked' | 'ghost' | 'leftover';
export const INVENTORY_CLASSES: readonly InventoryClass[] = ['tracked', 'missing', 'untracked', 'ghost', 'leftover'];

export interface InventoryRow {
  repo: string;
  class: InventoryClass;
  /** Enabled backends holding a copy. */
  copies: string[];
  /** Enabled backends known to hold none. */
  missing: string[];
  /** Enabled backends that could not say (unreachable, or not asked). */
  unknown: string[];
  gone?: Gone;
}

/** How one enabled backend was asked. */
export interface BackendSurvey {
  backend: string;
  /**
   * listed: its admin account's listing (every repository there);
   * probed: no admin, so only the names githa knows were asked for (listRefs): untracked copies there cannot be found;
   * skipped: no admin, and the survey was a listing-only one (`githa status`);
   * unreachable: the listing or a probe failed.
   */
  how: 'listed' | 'probed' | 'skipped' | 'unreachable';
  /** Copies found. */
  repositories: number;
  /** Paths that look like repositories but have no valid name (listed backends only): reported, never touched. */
  invalid: readonly string[];
  error?: string;
}

export interface InventoryReport {
  at: number;
  /** Every repository, by name; tombstoned repositories without a copy are left out. */
  rows: InventoryRow[];
  counts: Record<InventoryClass, number>;
  backends: BackendSurvey[];
  /** Enabled backends without admin: an untracked copy there is not found (docs/operations.md). */
  notListable: string[];
}

/** Where the tombstones come from (src/state/tombstones.ts). */
export interface TombstoneSource {
  /** Every tombstone (a SCAN: an operator command's cost). */
  all(): Promise<ReadonlyMap<string, Gone>>;
  /** The tombstones of these names only. */
  of(names: readonly string[]): Promise<ReadonlyMap<string, Gone>>;
}

export interface SurveyOptions {
  /** Ask backends without admin for the known names (listRefs); off: a listing-only survey, cheap enough for `githa status`. */
  probe?: boolean;
  /** The recorded repositories when the caller read them already (else the index is scanned). */
  tracked?: readonly string[];
  /**
   * Look for tombstones by SCAN (default), or (false) only of the names the
   * listings found unrecorded plus `gone`: a leftover whose name is recorded
   * is then known only through `gone` (`githa status` reads the records anyway).
   */
  scanTombstones?: boolean;
  /** Tombstones the caller read already (with the records). */
  gone?: ReadonlyMap<string, Gone>;
  /** Repository → backends the record itself shows without a copy (drift `missing`): counted as missing even unlisted. */
  knownMissing?: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * Repository → its assignment (docs/redis.md `assigned`): a backend outside it is neither missing a copy nor counted as
   * holding one. Absent: the tracked repositories' assignments are read here.
   */
  assigned?: ReadonlyMap<string, readonly string[]>;
}

/** `--track R`: the record rebuilt from the copies, or `already`: R had a record. */
export type TrackResult = RecoveryResult | { repo: string; status: 'already'; version: number };

/** Listing probes of backends without admin run this many at a time. */
const PROBES = 8;

/** Untracked repositories `trackAll` adopts at a time (each: its own write lock, one listing per backend, one script). */
export const TRACK_CONCURRENCY = 16;

/** Repositories whose refs one admin call lists (BatchCopies): its output is ~100 bytes a ref, far below the 32 MB kept. */
export const TRACK_BATCH = 500;

/** One backend's answer about a name: true/false, or undefined when it could not say. */
type Answer = (repo: string) => boolean | undefined;

/**
 * Pure: the class of every name from the record (tracked), the tombstones
 * and each enabled backend's answers. Unit-tested in test/cluster/inventory.test.ts.
 */
export function classify(
  names: Iterable<string>,
  tracked: ReadonlySet<string>,
  gone: ReadonlyMap<string, Gone>,
  answers: ReadonlyMap<string, Answer>,
  knownMissing: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
  assigned: ReadonlyMap<string, readonly string[]> = new Map(),
): InventoryRow[] {
  const rows: InventoryRow[] = [];
  for (const repo of [...new Set(names)].sort()) {
    const copies: string[] = [];
    const missing: string[] = [];
    const unknown: string[] = [];
    const only = tracked.has(repo) && !gone.has(repo) ? assigned.get(repo) : undefined;
    for (const [backend, answer] of answers) {
      if (only && !only.includes(backend)) continue;
      const has = knownMissing.get(repo)?.has(backend) ? false : answer(repo);
      (has === true ? copies : has === false ? missing : unknown).push(backend);
    }
    const g = gone.get(repo);
    let cls: InventoryClass;
    if (g) {
      if (copies.length === 0) continue;
      cls = 'leftover';
    } else if (!tracked.has(repo)) {
      if (copies.length === 0) continue;
      cls = 'untracked';
    } else if (copies.length === 0 && unknown.length === 0) cls = 'ghost';
    else cls = missing.length > 0 ? 'missing' : 'tracked';
    rows.push({ repo, class: cls, copies, missing, unknown, ...(g ? { gone: g } : {}) });
  }
  return rows;
}

export function countClasses(rows: readonly InventoryRow[]): Record<InventoryClass, number> {
  const counts: Record<InventoryClass, number> = { tracked: 0, missing: 0, untracked: 0, ghost: 0, leftover: 0 };
  for (const r of rows) counts[r.class]++;
  return counts;
}

/**
 * Every repository across Redis and the backends' own listings (`githa
 * inventory`, `githa status`, `githa recover` without names; issue "Repository
 * lifecycle"). Managed backends (`backends[].admin`) are listed with their
 * admin account; the others can only be asked for names githa knows.
 * `track` adopts an untracked repository from its copies, as `githa recover`
 * rebuilds a record (src/cluster/recovery.ts).
 */
export class Inventory {
  private readonly copiesOf: Pick<Adoption, 'compareCopies'>;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly tombstones: TombstoneSource,
    copiesOf?: Pick<Adoption, 'compareCopies'>,
  ) {
    this.copiesOf = copiesOf ?? new Adoption(ctx);
  }

  async survey(opts: SurveyOptions = {}): Promise<InventoryReport> {
    const { backends } = this.ctx;
    const tracked = new Set(opts.tracked ?? (await this.indexed()));
    const enabled = backends.activeBackends().map((b) => b.id);
    const surveys = new Map<string, BackendSurvey>();
    const answers = new Map<string, Answer>();
    const listed = new Set<string>();
    // Listings first: their names are asked of the backends that cannot list.
    await Promise.all(
      enabled.map(async (id) => {
        const admin = backends.admin(id);
        if (!admin) return;
        try {
          const listing = await admin.list();
          const has = new Set(listing.repositories);
          for (const r of has) listed.add(r);
          answers.set(id, (r) => has.has(r));
          surveys.set(id, { backend: id, how: 'listed', repositories: has.size, invalid: [...listing.invalid] });
        } catch (err) {
          surveys.set(id, { backend: id, how: 'unreachable', repositories: 0, invalid: [], error: (err as Error).message });
          answers.set(id, () => undefined);
        }
      }),
    );
    const gone = new Map(opts.gone);
    const found = opts.scanTombstones === false ? await this.tombstones.of([...listed].filter((r) => !tracked.has(r) && !gone.has(r))) : await this.tombstones.all();
    for (const [r, g] of found) gone.set(r, g);
    const names = [...new Set([...tracked, ...gone.keys(), ...listed])].sort();
    const notListable = enabled.filter((id) => !backends.admin(id));
    for (const id of notListable) {
      if (opts.probe === false) {
        surveys.set(id, { backend: id, how: 'skipped', repositories: 0, invalid: [] });
        answers.set(id, () => undefined);
        continue;
      }
      const probed = await this.probe(id, names);
      answers.set(id, probed.answer);
      surveys.set(id, probed.survey);
    }
    // Answers in configuration order, so every row names its backends alike.
    const ordered = new Map(enabled.map((id) => [id, answers.get(id)!]));
    // Only the assigned backends of a tracked repository should hold it (docs/architecture.md "Replication factor").
    const assigned = opts.assigned ?? (await this.ctx.repos.assignments([...tracked]));
    const rows = classify(names, tracked, gone, ordered, opts.knownMissing, assigned);
    return {
      at: Date.now(),
      rows,
      counts: countClasses(rows),
      backends: enabled.map((id) => surveys.get(id)!),
      notListable,
    };
  }

  /** A backend without admin asked for each name (listRefs): present, absent, or (unreachable) unknown for all. */
  private async probe(id: string, names: readonly string[]): Promise<{ answer: Answer; survey: BackendSurvey }> {
    const client = this.ctx.backends.client(id);
    const has = new Set<string>();
    let next = 0;
    let failure: Error | undefined;
    const worker = async (): Promise<void> => {
      while (next < names.length && !failure) {
        const repo = names[next++]!;
        try {
          if ((await client.listRefs(repo)) !== null) has.add(repo);
        } catch (err) {
          if (!(err instanceof BackendUnavailableError)) throw err;
          failure = err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROBES, names.length) }, worker));
    if (failure) return { answer: () => undefined, survey: { backend: id, how: 'unreachable', repositories: 0, invalid: [], error: failure.message } };
    return { answer: (r) => has.has(r), survey: { backend: id, how: 'probed', repositories: has.size, invalid: [] } };
  }

  private async indexed(): Promise<string[]> {
    const names: string[] = [];
    for await (const page of this.ctx.index.repositories()) names.push(...page);
    return names;
  }

  /**
   * Adopts `repo` from its copies (the record rebuilt as `githa recover`
   * does: equal copies lead together, differing ones are frozen as
   * ambiguous). Refused with RepositoryGoneError when it was deleted or
   * renamed: its copy is a leftover, not a repository to bring back (that is
   * `githa restore`).
   */
  async track(repo: string, copiesOf: Pick<Adoption, 'compareCopies'> = this.copiesOf): Promise<TrackResult> {
    const state = await this.ctx.repos.read(repo);
    if (state.gone) throw goneError(repo, state.gone);
    if (state.versions.size > 0) return { repo, status: 'already', version: Math.max(...state.versions.values()) };
    return recoverRepository(this.ctx, copiesOf, repo);
  }

  /**
   * Adopts every untracked repository of `report` (a fresh survey when not
   * given), `concurrency` at a time: each adoption waits on three backend
   * listings and a few Redis round trips, so one at a time took 120-190 s
   * for 10,000 repositories (docs/performance.md "Adoption"). The copies
   * are listed `batch` repositories at a time, one admin call per backend
   * with an admin account (BatchCopies), the next batch's listing while the
   * current one is adopted. Results in the report's order.
   */
  async trackAll(report?: InventoryReport, concurrency = TRACK_CONCURRENCY, batch = TRACK_BATCH): Promise<TrackResult[]> {
    const r = report ?? (await this.survey());
    const rows = r.rows.filter((x) => x.class === 'untracked').map((x, i) => [i, x.repo] as const);
    const results: TrackResult[] = new Array<TrackResult>(rows.length);
    const chunks: (typeof rows)[] = [];
    for (let i = 0; i < rows.length; i += batch) chunks.push(rows.slice(i, i + batch));
    const loaded = (chunk: typeof rows): Promise<BatchCopies> => {
      const copies = new BatchCopies(this.ctx, this.copiesOf);
      return copies.load(chunk.map(([, repo]) => repo)).then(() => copies);
    };
    let next = chunks.length > 0 ? loaded(chunks[0]!) : undefined;
    for (let c = 0; c < chunks.length; c++) {
      const copies = await next!;
      next = c + 1 < chunks.length ? loaded(chunks[c + 1]!) : undefined;
      // A failed prefetch is awaited (and thrown) in its own turn, never left unhandled.
      next?.catch(() => {});
      await boundedEach(
        (async function* () {
          yield chunks[c]!;
        })(),
        concurrency,
        async ([i, repo]) => {
          results[i] = await this.track(repo, copies);
        },
      );
    }
    return results;
  }
}
