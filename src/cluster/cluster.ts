import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { BackendClient } from '../backends/types.js';
import type { BackendConfig, Config } from '../config/schema.js';
import {
  BackendUnavailableError,
  CatchUpError,
  GithaError,
  NoLeaderError,
  QuorumUnavailableError,
  RepositoryFrozenError,
  StateRegressionError,
  WriteInterruptedError,
} from '../errors.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { ReportStatus } from '../protocol/report-status.js';
import type { WriteLocks } from '../state/lock.js';
import type { RepoState, StateStore } from '../state/store.js';
import { catchUp } from './catch-up.js';
import { refsChecksum } from './checksum.js';
import { Health } from './health.js';
import { NO_OBSERVER, type Observer } from './observer.js';
import { frozenForRead, frozenForWrite, interruptedWrite, leadersLost, quorumUnavailable } from './messages.js';
import { leadership, planRead, planWrite, type BackendView, type RepoFlags } from './routing.js';
import { compareCopies, knownState } from './adoption.js';
import { finishWrite } from './write.js';

export type Backend = BackendConfig;

/** An operator's runtime override of a backend's configured flags (stored in githa:backend:<id>). */
export interface BackendOverride {
  enabled?: boolean;
  writable?: boolean;
}

/** Where a read goes: try `candidates` in order. */
export interface ReadRoute {
  readonly repo: string;
  readonly version: number;
  readonly candidates: readonly Backend[];
  /** The leaders at `version`, for the message when none of them answers. */
  readonly leaders: readonly string[];
}

/** Which backends a front end can use (those with an endpoint for its transport). */
export type Accepts = (backend: Backend) => boolean;

export interface WriteRequest {
  repo: string;
  user: string;
  transport: string;
  /** The command list, when the transport knows it before forwarding (HTTP). */
  commands?: readonly RefCommand[];
  accepts?: Accepts;
}

/** How the transport's exchange with the target ended. */
export interface ForwardResult {
  /** 'complete': the whole answer arrived. 'cut': the pack never fully reached the backend, so no ref changed. 'unknown': anything else. */
  ending: 'complete' | 'cut' | 'unknown';
  report?: ReportStatus | undefined;
  bytes?: number;
  /** The command list, when the transport learned it while forwarding (SSH, git://). */
  commands?: readonly RefCommand[];
  /** The client sent an empty command list: nothing can have changed. */
  noop?: boolean;
}

/**
 * Proxies one push to `target`. Throws BackendUnavailableError with
 * bytesSent=false when nothing reached the backend (another leader is tried).
 * Must stop sending when `signal` aborts (the lock was lost).
 */
export type Forward = (target: Backend, signal: AbortSignal) => Promise<ForwardResult>;

/**
 * Whether writes are refused, judged without the lock. A marker while the
 * write lock is held is a push in flight, not an interruption: the next push
 * waits for the lock and looks again (under the lock, any marker left over is
 * an interruption).
 */
function refusesWrites(state: RepoState): boolean {
  return Boolean(state.frozen) || interrupted(state);
}

/** A marker with no lock held: its owner is gone (or paused past its lease). */
function interrupted(state: RepoState): boolean {
  return state.writing !== undefined && !state.locked;
}

/**
 * Routing flags of one repository: drifted copies lead no more; suspect ones
 * and the backend of any write marker are avoided. A marker's backend may hold
 * refs no version records yet, whether its write is live or interrupted (and
 * while a resolver holds the lock, an interrupted marker looks locked): reads
 * and push advertisements go to the other leaders while there are any.
 */
export function repoFlags(state: RepoState): RepoFlags {
  const avoid = new Set(state.suspect.keys());
  if (state.writing) avoid.add(state.writing.backend);
  return { notLeaders: new Set(state.drift.keys()), avoid };
}

/** Remembered versions per repository, to notice Redis going back in time (safety rule 4). */
const SEEN_MAX = 50_000;

export type WriteOutcome =
  | { kind: 'committed'; version: number; backend: string }
  | { kind: 'unchanged'; backend: string }
  /** Could not tell whether refs changed: the marker stays (design: "Write interruption"). */
  | { kind: 'interrupted'; backend: string };

/**
 * The cluster core: routing, versions, write sessions and catch-up. It knows
 * backends and their Git clients, never HTTP or SSH.
 */
export class Cluster {
  readonly health: Health;
  private turn = 0;
  private readonly byId: Map<string, Backend>;
  private readonly seen = new Map<string, { epoch: string; max: number }>();
  /** Runtime operator overrides (`githa backend disable|prevent-writes …`), kept current by the override watcher. */
  private overrides: ReadonlyMap<string, BackendOverride> = new Map();
  /** Set by the interruption resolver: resolves a dead owner's write when a request meets it. */
  resolveInterrupted?: (repo: string) => Promise<unknown>;
  /** Metrics (src/admin/metrics.ts); observes nothing unless the composition root sets it. */
  observer: Observer = NO_OBSERVER;

  constructor(
    readonly config: Config,
    readonly store: StateStore,
    readonly locks: WriteLocks,
    private readonly clients: ReadonlyMap<string, BackendClient>,
    readonly log: Logger,
  ) {
    this.health = new Health(config.health);
    this.byId = new Map(config.backends.map((b) => [b.id, b as Backend]));
  }

  /**
   * The repository's state, checked against the highest version this githa
   * saw under the same epoch: lower means Redis went back in time (an old
   * snapshot), and githa fails closed (safety rule 4).
   */
  async state(repo: string): Promise<RepoState> {
    const state = await this.store.read(repo);
    this.checkRegression(repo, state);
    return state;
  }

  private checkRegression(repo: string, state: RepoState): void {
    if (state.versions.size === 0) return;
    const { max } = leadership(state.versions);
    const epoch = state.epoch ?? '';
    const prev = this.seen.get(repo);
    if (prev && prev.epoch === epoch && max < prev.max) {
      this.log.error({ repo, seen: prev.max, now: max, epoch }, 'STATE REGRESSION: Redis holds an older version than githa saw; refusing');
      throw new StateRegressionError(
        `cluster state of ${repo} went back from version ${prev.max} to ${max} (Redis restored from an old snapshot?); ` +
          `githa refuses it until an operator runs: githa recover ${repo}`,
      );
    }
    if (prev) this.seen.delete(repo);
    else if (this.seen.size >= SEEN_MAX) this.seen.delete(this.seen.keys().next().value as string);
    this.seen.set(repo, { epoch, max: prev && prev.epoch === epoch ? Math.max(prev.max, max) : max });
  }

  /** Replaces the runtime overrides (called by the watcher whenever they change in Redis). */
  setOverrides(overrides: ReadonlyMap<string, BackendOverride>): void {
    this.overrides = overrides;
  }

  /** Whether `id` is enabled now: configured enabled, and not disabled by an operator at runtime. */
  isEnabled(id: string): boolean {
    return (this.overrides.get(id)?.enabled ?? this.byId.get(id)?.enabled) === true;
  }

  /** Whether `id` takes writes now (config `writable`, or `githa backend prevent-writes|allow-writes`). */
  isWritable(id: string): boolean {
    return (this.overrides.get(id)?.writable ?? this.byId.get(id)?.writable) === true;
  }

  /** The backends routing may use now, in configuration order. */
  activeBackends(): Backend[] {
    return this.config.backends.filter((b) => this.isEnabled(b.id)) as Backend[];
  }

  backend(id: string): Backend {
    const b = this.byId.get(id);
    if (!b) throw new Error(`unknown backend ${id}`);
    return b;
  }

  /** Chooses the backends for a read; never takes the write lock (design: "Read path"). */
  async routeRead(repo: string, accepts: Accepts = () => true): Promise<ReadRoute> {
    const state = await this.known(repo, await this.state(repo));
    if (state.frozen && frozenForRead(state.frozen.reason)) {
      throw new RepositoryFrozenError(frozenForWrite(repo, state.frozen), state.frozen.reason);
    }
    const flags = repoFlags(state);
    const { max, leaders } = leadership(state.versions, flags.notLeaders);
    const plan = planRead(state.versions, this.views(), this.config.zone, this.turn++, flags);
    switch (plan.kind) {
      case 'no-leader':
        throw new NoLeaderError(leadersLost(repo, this.lostLeaders(state)));
      case 'serve':
        return { repo, version: max, leaders, candidates: this.usable(plan.candidates, accepts) };
      case 'catch-up': {
        const ok = accepts(this.backend(plan.target)) && (await this.catchUpWithin(repo, state, plan.source, plan.target, this.config.catchUp.readWaitMs));
        return { repo, version: max, leaders, candidates: this.usable(ok ? [plan.target, ...plan.fallback] : plan.fallback, accepts) };
      }
    }
  }

  /** The error for a read or write none of whose leaders answered. */
  unreachable(route: ReadRoute): NoLeaderError {
    return new NoLeaderError(leadersLost(route.repo, route.leaders));
  }

  /** Backends at the highest version that cannot serve: disabled, drifted, or (when the version sits only on them) all of them. */
  private lostLeaders(state: RepoState): string[] {
    const { max } = leadership(state.versions);
    return [...state.versions].filter(([, v]) => v === max && max > 0).map(([b]) => (state.drift.has(b) ? `${b} (drifted)` : b));
  }

  /** Chooses a writable leader for the advertisement a pushing client reads first. */
  async routeWriteAdvertisement(repo: string, accepts: Accepts = () => true): Promise<ReadRoute> {
    const state = await this.writableState(repo);
    this.checkQuorum(repo);
    const flags = repoFlags(state);
    const plan = planWrite(state.versions, this.views(), this.config.zone, this.turn++, flags);
    const { max, leaders } = leadership(state.versions, flags.notLeaders);
    if (plan.kind === 'write') return { repo, version: max, leaders, candidates: this.usable(plan.candidates, accepts) };
    return this.routeRead(repo, accepts);
  }

  /**
   * The state, when writes are allowed. A write interrupted by a dead owner
   * is resolved on the spot when possible (design: "Failure modes").
   */
  private async writableState(repo: string): Promise<RepoState> {
    let state = await this.known(repo, await this.state(repo));
    if (!state.frozen && interrupted(state) && this.resolveInterrupted) {
      await this.resolveInterrupted(repo).catch((err: unknown) => {
        this.log.warn({ repo, err: (err as Error).message }, 'could not resolve the interrupted write yet');
      });
      state = await this.state(repo);
    }
    if (refusesWrites(state)) throw this.writeRefusal(repo, state);
    return state;
  }

  /** Refuses writes while fewer backends are up than the write quorum (design: "Write path" 6); reads go on. */
  checkQuorum(repo: string): void {
    const quorum = this.config.replication.writeQuorum;
    const up = this.activeBackends().filter((b) => this.health.isHealthy(b.id)).map((b) => b.id);
    if (up.length < quorum) throw new QuorumUnavailableError(quorumUnavailable(repo, up, this.config.backends.length, quorum));
  }

  /**
   * One push (design: "Write path"): lock, refuse if frozen, pick a writable
   * leader, write the marker, forward, and commit max + 1 with the backend's
   * new checksum before the caller releases the client's final bytes.
   */
  async write(req: WriteRequest, forward: Forward): Promise<WriteOutcome> {
    const { repo } = req;
    await this.writableState(repo);
    this.checkQuorum(repo);
    return this.locks.withLock(repo, async (lock) => {
      let state = await this.state(repo);
      // Under the lock, any marker is a write that ended without clearing it: an interruption.
      if (state.frozen || state.writing) throw this.writeRefusal(repo, state);
      const flags = repoFlags(state);
      let plan = planWrite(state.versions, this.views(), this.config.zone, this.turn++, flags);
      if (plan.kind === 'catch-up') {
        const ok = await this.catchUpWithin(repo, state, plan.source, plan.target, this.config.locks.leaseMs * 3);
        if (!ok) throw new NoLeaderError(`no writable leader of ${repo}, and ${plan.target} could not be caught up to take the write`);
        plan = { kind: 'write', candidates: [plan.target] };
        state = await this.store.read(repo);
      }
      if (plan.kind === 'no-leader') throw new NoLeaderError(leadersLost(repo, this.lostLeaders(state)));
      let lastError: unknown;
      for (const target of this.usable(plan.candidates, req.accepts ?? (() => true))) {
        const id = target.id;
        const writeId = randomUUID();
        const started = Date.now();
        await this.store.beginWrite(repo, lock.token, {
          id: writeId,
          backend: id,
          proxy: this.config.proxyId,
          user: req.user,
          transport: req.transport,
          started,
          preChecksum: state.checksums.get(id) ?? '',
        });
        const beat = setInterval(() => {
          this.store.heartbeat(repo, lock.token, writeId).catch(() => {});
        }, Math.max(250, Math.floor(this.config.locks.leaseMs / 3)));
        let result: ForwardResult;
        try {
          result = await forward(target, lock.signal);
        } catch (err) {
          clearInterval(beat);
          if (err instanceof BackendUnavailableError && !err.bytesSent) {
            // Nothing reached the backend: no ref can have changed. Try the next leader.
            this.health.markDown(id);
            await this.store.abortWrite(repo, lock.token, writeId);
            this.log.warn({ repo, backend: id, err: err.message }, 'write target unreachable; trying another leader');
            lastError = err;
            continue;
          }
          // Bytes reached the backend: whether refs changed is unknown, so the marker stays.
          this.log.error({ repo, backend: id, err: (err as Error).message }, 'push interrupted; repository frozen for writes');
          throw new WriteInterruptedError(repo, id);
        }
        try {
          // The marker keeps beating while quorum copies are made.
          return await finishWrite(this, { req, lock, writeId, target, preChecksum: state.checksums.get(id) ?? '', started, result, state });
        } finally {
          clearInterval(beat);
        }
      }
      if (lastError instanceof BackendUnavailableError) throw new NoLeaderError(leadersLost(repo, plan.candidates));
      throw lastError instanceof GithaError ? lastError : new NoLeaderError(leadersLost(repo, plan.candidates));
    });
  }

  /** Every enabled backend's checksum of `repo` (src/cluster/adoption.ts). */
  compareCopies(repo: string): ReturnType<typeof compareCopies> {
    return compareCopies(this, repo);
  }

  /** The state of a repository, adopting it on first sight (src/cluster/adoption.ts). */
  private known(repo: string, state: RepoState): Promise<RepoState> {
    return knownState(this, repo, state);
  }

  /** Catches `target` up from `source`, waiting at most `waitMs` (the copy goes on after that). */
  async catchUpWithin(repo: string, state: RepoState, sourceId: string, targetId: string, waitMs: number): Promise<boolean> {
    const version = state.versions.get(sourceId);
    const checksum = state.checksums.get(sourceId);
    if (version === undefined || checksum === undefined) return false;
    const copy = catchUp(
      this.store,
      { repo, source: this.client(sourceId), target: this.client(targetId), version, checksum, pairLockMs: this.config.catchUp.pairLockMs },
      this.log,
      this.observer,
    ).then(
      (outcome) => outcome.status === 'ok',
      (err: unknown) => {
        this.log.warn({ repo, source: sourceId, target: targetId, err: (err as Error).message }, 'catch-up failed');
        if (err instanceof BackendUnavailableError) this.health.markDown(err.backendId);
        return false;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    try {
      return await Promise.race([copy, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private writeRefusal(repo: string, state: RepoState): GithaError {
    if (state.frozen) return new RepositoryFrozenError(frozenForWrite(repo, state.frozen), state.frozen.reason);
    return new RepositoryFrozenError(interruptedWrite(repo, state.writing!), 'write-interrupted');
  }

  usable(ids: readonly string[], accepts: Accepts): Backend[] {
    return ids.map((id) => this.backend(id)).filter(accepts);
  }

  client(id: string): BackendClient {
    const c = this.clients.get(id);
    if (!c) throw new CatchUpError(`backend ${id} has no endpoint githa can use as a Git client`);
    return c;
  }

  views(): BackendView[] {
    return this.config.backends.map((b) => ({
      id: b.id,
      zone: b.zone,
      enabled: this.isEnabled(b.id),
      writable: this.isWritable(b.id),
      healthy: this.health.isHealthy(b.id),
    }));
  }
}
