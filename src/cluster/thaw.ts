/**
 * `githa thaw` (docs/cli.md; Phorge's `bin/repository thaw`): what an
 * operator's decision changes, and the change itself.
 *
 * - --demote B: B stops being a leader and githa forgets what only B had (its
 *   version and checksum, an interrupted write on it, a freeze that concerns
 *   it, its suspect and drift entries). The next-highest copies lead; B is
 *   stale and replication overwrites it. The plan names exactly what may be
 *   lost: the versions above the new maximum and their push-log entries.
 * - --promote B (thaw-promote.ts): only for an ambiguous repository.
 *
 * Planning is pure (plain RepoState and push-log entries in, a plan out);
 * applying takes narrow collaborators (the write lock, the guarded scripts),
 * so both are unit-tested with plain data (test/cluster/thaw.test.ts). The
 * CLI (src/cli/commands/thaw.ts) parses options, asks and renders.
 *
 * Each change: under the repository's write lock, one guarded script
 * (src/state/operator-scripts.ts) that re-checks the values the operator was
 * shown, one push-log entry naming the operator.
 */
import type { OperatorStore } from '../state/operator-store.js';
import type { LogEntry } from '../state/push-log.js';
import type { FreezeReason, FrozenState, RepoState, WritingMarker } from '../state/repo-state.js';
import { leadership } from './routing.js';

/** Push-log entries read to name what a demotion loses. */
export const DEMOTE_LOG_SCAN = 1000;
/** Events whose version is not new data (copies, drift notes, earlier thaws). */
const NOT_NEW_DATA = new Set(['catch-up', 'sync', 'drift', 'thaw-demote', 'clear-interrupted']);
/** The freezes a demotion lifts: those a backend's claim causes. `ambiguous` needs --promote; `maintenance` ends with its `githa lock`. */
const LIFTED_BY_DEMOTE: ReadonlySet<FreezeReason> = new Set(['write-interrupted', 'leaders-lost']);

/** A version that only the demoted backend holds, with its push-log entry. */
export interface LostVersion {
  version: number;
  event: string;
  user: string;
  /** When the entry was added (ms; from its stream id). */
  at: number;
  /** The entry's `refs` field as stored ("<old> <new> <ref>" lines), '' when none. */
  refs: string;
}

export interface DemotePlan {
  repo: string;
  backend: string;
  /** B's recorded version (undefined: none). */
  version: number | undefined;
  max: number;
  /** The maximum once B's version is gone, and who holds it. */
  newMax: number;
  newLeaders: string[];
  /** B was the only backend at the maximum: versions newMax+1..max are lost. */
  onlyLeader: boolean;
  lost: LostVersion[];
  marker: WritingMarker | undefined;
  /** The freeze reason lifted with B ('' = none). */
  freeze: FreezeReason | '';
  suspect: boolean;
  drift: boolean;
}

export interface DemoteResult {
  repo: string;
  backend: string;
  status: 'demoted' | 'changed';
  version?: number;
  leaders?: string[];
  lostVersions?: number[];
  cleared?: { marker: boolean; freeze: string; suspect: boolean; drift: boolean };
  reason?: string;
}

/** The write lock of one repository, its token handed to `fn` (src/state/lock.ts). */
export interface RepoLock {
  withLock<T>(repo: string, fn: (token: string) => Promise<T>): Promise<T>;
}

/** What applying a demotion needs. */
export interface DemoteParts extends RepoLock {
  ops: Pick<OperatorStore, 'demote'>;
  /** The replicators' hint that R moved (StateStore.noteWrite); best effort. */
  noteWrite(repo: string, backend: string, version: number): Promise<void>;
}

/** What demoting B everywhere needs besides: reading each repository again. */
export interface DemoteAllParts extends DemoteParts {
  read(repo: string): Promise<RepoState>;
  readLog(repo: string, opts: { count: number }): Promise<LogEntry[]>;
}

/**
 * Whether demoting `backend` lifts `frozen`: a write-interrupted or
 * leaders-lost freeze that concerns it. It does when B is `involved` (a
 * leader, or its write was interrupted) or the freeze names B among its
 * `backends`. A freeze recorded before githa stored those ids concerns every
 * backend (docs/redis.md): the operator is shown that it is lifted.
 */
export function freezeConcerns(frozen: FrozenState | undefined, backend: string, involved: boolean): boolean {
  if (!frozen || !LIFTED_BY_DEMOTE.has(frozen.reason)) return false;
  return involved || frozen.backends === undefined || frozen.backends.includes(backend);
}

/** What demoting `backend` in `repo` changes; undefined when B is not involved at all. `log`: newest first. */
export function planDemote(repo: string, backend: string, state: RepoState, log: readonly LogEntry[]): DemotePlan | undefined {
  const version = state.versions.get(backend);
  const marker = state.writing?.backend === backend ? state.writing : undefined;
  const { max, leaders } = leadership(state.versions);
  const after = leadership(new Map([...state.versions].filter(([b]) => b !== backend)));
  const freeze: FreezeReason | '' = freezeConcerns(state.frozen, backend, leaders.includes(backend) || marker !== undefined) ? state.frozen!.reason : '';
  const plan: DemotePlan = {
    repo,
    backend,
    version,
    max,
    newMax: after.max,
    newLeaders: [...after.leaders].sort(),
    onlyLeader: version !== undefined && after.max < max,
    lost: [],
    marker,
    freeze,
    suspect: state.suspect.has(backend),
    drift: state.drift.has(backend),
  };
  if (version === undefined && !marker && !freeze && !plan.suspect && !plan.drift) return undefined;
  if (plan.onlyLeader) {
    for (const e of log) {
      // A demote restarts the numbering below it: older entries with these numbers are other versions.
      if (e.fields.event === 'thaw-demote') break;
      const v = Number(e.fields.version);
      if (!Number.isFinite(v) || v <= after.max || v > max || NOT_NEW_DATA.has(e.fields.event ?? '')) continue;
      plan.lost.push({ version: v, event: e.fields.event ?? 'push', user: e.fields.user ?? '', at: e.at, refs: e.fields.refs ?? '' });
    }
  }
  return plan;
}

/** The versions a demotion loses: newMax+1..max when B was the only leader, else none. */
export function lostVersions(plan: DemotePlan): number[] {
  const out: number[] = [];
  if (plan.onlyLeader) for (let v = plan.newMax + 1; v <= plan.max; v++) out.push(v);
  return out;
}

/** Under the write lock, the guarded script, with the values the operator was shown. */
export async function applyDemote(plan: DemotePlan, user: string, parts: DemoteParts): Promise<DemoteResult> {
  const { repo, backend } = plan;
  const r = await parts.withLock(repo, (token) =>
    parts.ops.demote(repo, token, backend, plan.version, plan.max, plan.freeze, {
      user,
      lost: plan.onlyLeader ? `${plan.newMax + 1}..${plan.max}` : '',
    }),
  );
  if (r.status !== 'OK') {
    return {
      repo,
      backend,
      status: 'changed',
      reason:
        r.status === 'MOVED'
          ? `${repo} changed since it was shown (a push or a copy committed meanwhile); nothing was changed: run the command again`
          : `the write lock on ${repo} was lost; nothing was changed`,
    };
  }
  // The change is recorded; the event only wakes the replicators early, and their scan covers a lost one.
  if (plan.newLeaders[0]) await parts.noteWrite(repo, plan.newLeaders[0], r.max).catch(() => {});
  return {
    repo,
    backend,
    status: 'demoted',
    version: r.max,
    leaders: plan.newLeaders,
    lostVersions: lostVersions(plan),
    cleared: { marker: r.marker !== '', freeze: r.lifted, suspect: plan.suspect, drift: plan.drift },
  };
}

/** Every repository `backend` is involved in, by name (the push log is not read: it is read again when each is applied). */
export async function planDemoteAll(
  backend: string,
  parts: { repositories(): AsyncIterable<string[]>; read(repo: string): Promise<RepoState> },
): Promise<DemotePlan[]> {
  const plans: DemotePlan[] = [];
  for await (const page of parts.repositories()) {
    for (const repo of page) {
      const plan = planDemote(repo, backend, await parts.read(repo), []);
      if (plan) plans.push(plan);
    }
  }
  return plans.sort((a, b) => a.repo.localeCompare(b.repo));
}

/**
 * Demotes B in each counted repository, one at a time: a repository whose B
 * version or maximum moved since it was counted is left alone ('changed'),
 * and one that fails does not stop the others. `done` is called after each.
 */
export async function applyDemoteAll(plans: readonly DemotePlan[], user: string, parts: DemoteAllParts, done: (repo: string) => void = () => {}): Promise<DemoteResult[]> {
  const results: DemoteResult[] = [];
  for (const initial of plans) {
    const { repo, backend } = initial;
    let result: DemoteResult;
    try {
      // The log is read now, for the entry; the script still checks the values counted above.
      const plan = planDemote(repo, backend, await parts.read(repo), await parts.readLog(repo, { count: DEMOTE_LOG_SCAN })) ?? initial;
      result =
        plan.version === initial.version && plan.max === initial.max
          ? await applyDemote(plan, user, parts)
          : { repo, backend, status: 'changed', reason: `${repo} changed since it was counted; not demoted: run again` };
    } catch (err) {
      result = { repo, backend, status: 'changed', reason: `${repo}: ${(err as Error).message}` };
    }
    results.push(result);
    done(repo);
  }
  return results;
}
