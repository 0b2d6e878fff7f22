/**
 * What a chaos run records (docs/chaos.md): every client operation with its
 * start and end on the harness's monotonic clock (ms since the run began),
 * its result and what it read; every fault; samples of the Redis versions;
 * and the final state after healing. The checker (checker.ts) judges a
 * History without any I/O, so hand-built histories test it.
 */

/**
 * ok: git said the ref was updated (an acknowledged push). rejected: git
 * refused it before sending anything (non-fast-forward on the advertised
 * refs): not applied. error: githa or the backend answered with an error
 * (may or may not have been applied). unknown: no answer (cut, timeout).
 */
export type PushResult = 'ok' | 'rejected' | 'error' | 'unknown';

/** ff: a fast-forward update or a creation; force: `git push --force`; delete: `:refs/heads/x`. */
export type PushMode = 'ff' | 'force' | 'delete';

export interface PushOp {
  readonly kind: 'push';
  readonly id: number;
  readonly client: string;
  readonly repo: string;
  /** Branch name without refs/heads/. */
  readonly branch: string;
  readonly mode: PushMode;
  /** The commit pushed; null for a delete. */
  readonly newOid: string | null;
  readonly start: number;
  readonly end: number;
  readonly result: PushResult;
  /** Which githa and transport, e.g. "g1/http". */
  readonly via: string;
  readonly detail?: string;
}

export interface ReadOp {
  readonly kind: 'read';
  readonly id: number;
  readonly client: string;
  readonly repo: string;
  readonly how: 'ls-remote' | 'fetch' | 'clone';
  readonly start: number;
  readonly end: number;
  readonly result: 'ok' | 'error';
  /** Every branch the read saw (name without refs/heads/ → commit); a branch not listed was absent. Only for ok reads. */
  readonly refs: Readonly<Record<string, string>>;
  readonly via: string;
  readonly detail?: string;
}

export type Op = PushOp | ReadOp;

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly target: string;
  readonly start: number;
  /** When it was healed. */
  readonly end: number;
  readonly detail?: string;
  /** The repository whose copy a copy fault changed (copy-faults.ts). */
  readonly repo?: string;
}

/** A commit a `copy-divergent` fault made on one backend's copy behind githa's back: it must never be destroyed. */
export interface DivergentCommit {
  readonly repo: string;
  readonly backend: string;
  /** Branch name without refs/heads/. */
  readonly branch: string;
  readonly oid: string;
  readonly parent: string;
  readonly t: number;
}

export type FaultKind =
  | 'backend-kill'
  | 'backend-pause'
  | 'backend-unreachable'
  | 'githa-pause'
  | 'githa-kill-mid-push'
  | 'redis-restart'
  /** Redis replies to one githa held past the write-lock lease and catchUp.pairLockMs (tools/chaos/delay-relay.ts). */
  | 'redis-slow'
  /** One backend's copy of one repository changed on disk behind githa's back (copy-faults.ts). */
  | 'copy-wipe'
  | 'copy-reinit'
  | 'copy-rollback'
  | 'copy-divergent'
  | 'copy-delete'
  /** `githa move R --from B --to C` run by the harness (moves.ts): an operation, not an outage. */
  | 'move'
  /** `githa rebalance --max-moves 1` run by the harness (moves.ts). */
  | 'rebalance';

export interface VersionSample {
  readonly t: number;
  readonly repo: string;
  /** Backend id → version, as HGETALL returned it. */
  readonly versions: Readonly<Record<string, number>>;
  /** The record's epoch (a new one after adoption or recovery); versions compare only within one epoch. */
  readonly epoch: string;
}

export interface FinalRepoState {
  /** The backends assigned to hold the repository at the end (`githa:repo:{R}:assigned`; every backend without one). */
  readonly assigned?: readonly string[];
  /** Assigned backend id → its `git for-each-ref` output (oid refname per line, sorted). */
  readonly refs: Readonly<Record<string, string>>;
  /** Backend id → null when `git fsck` passed, else its complaint. */
  readonly fsck: Readonly<Record<string, string | null>>;
  readonly versions: Readonly<Record<string, number>>;
  /** The frozen reason, or null. */
  readonly frozen: string | null;
  /** A write marker left behind. */
  readonly writing: boolean;
  /** Each divergent commit of this repository → the refs that reach it ("b1 refs/…"), on any assigned backend. */
  readonly reachable?: Readonly<Record<string, readonly string[]>>;
}

export interface FinalState {
  /** Whether the cluster reached quiescence (equal versions, no marker, equal refs) in time. */
  readonly converged: boolean;
  readonly convergenceMs: number;
  readonly repos: Readonly<Record<string, FinalRepoState>>;
  /** replication.factor of the run: every repository must end assigned to exactly this many backends (issue 22). */
  readonly factor?: number;
  /** Frozen states the harness caused on purpose and considers justified (repo → reason). */
  readonly justifiedFrozen?: Readonly<Record<string, string>>;
}

export interface History {
  readonly ops: readonly Op[];
  /** Commit → its parent (null for a root): every commit any client created. */
  readonly commits: Readonly<Record<string, string | null>>;
  readonly faults: readonly FaultRecord[];
  readonly versionSamples: readonly VersionSample[];
  /** Commits the copy-divergent faults added (absent in histories that predate them). */
  readonly divergent?: readonly DivergentCommit[];
  readonly final?: FinalState;
}

/** Collects a history while the run goes on (clients run concurrently in one process). */
export class HistoryRecorder {
  private readonly t0 = performance.now();
  private nextId = 1;
  readonly ops: Op[] = [];
  readonly commits: Record<string, string | null> = {};
  readonly faults: FaultRecord[] = [];
  readonly versionSamples: VersionSample[] = [];
  readonly divergent: DivergentCommit[] = [];
  /** Pushes in flight, by githa index (for the "SIGKILL githa mid-push" fault). */
  readonly inFlightPushes = new Map<number, number>();

  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  id(): number {
    return this.nextId++;
  }

  add(op: Op): void {
    this.ops.push(op);
  }

  commit(oid: string, parent: string | null): void {
    this.commits[oid] = parent;
  }

  fault(f: FaultRecord): void {
    this.faults.push(f);
  }

  sample(s: VersionSample): void {
    this.versionSamples.push(s);
  }

  addDivergent(d: DivergentCommit): void {
    this.divergent.push(d);
  }

  history(final?: FinalState): History {
    return { ops: [...this.ops], commits: { ...this.commits }, faults: [...this.faults], versionSamples: [...this.versionSamples], divergent: [...this.divergent], final };
  }
}
