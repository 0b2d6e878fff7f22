import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { BackendClient, LentCredentials } from '../backends/types.js';
import type { Config } from '../config/schema.js';
import {
  BackendUnavailableError,
  GithaError,
  NoLeaderError,
  QuorumUnavailableError,
  RepositoryExistsError,
  RepositoryFrozenError,
  RepositoryNotFoundError,
} from '../errors.js';
import type { HeldLock, LockOptions } from '../state/lock.js';
import type { RepoState } from '../state/repo-state.js';
import { Adoption, goneError } from './adoption.js';
import { scoped, scopedState, writeQuorumOf } from './assignment.js';
import type { Backends } from './backends.js';
import { catchUp } from './catch-up.js';
import type { ClusterContext } from './context.js';
import type { Health } from './health.js';
import type { Observer } from './observer.js';
import { ReadChecker } from './read-check.js';
import { repairedForTransport } from './read-wait.js';
import { RegressionGuard } from './regression-guard.js';
import { frozenForRead, frozenForWrite, leadersElsewhere, leadersLost, quorumUnavailable } from './messages.js';
import { checkPlain, interrupted, lostLeaders, NotPlain, notPlain, refusesWrites, writeRefusal } from './plain-state.js';
import { leadership, planRead, planWrite, repoFlags, type ReadPlan, type RepoFlags } from './routing.js';
import type { Accepts, Backend, BackendOverride, Forward, ReadRoute, WriteOutcome, WriteRequest } from './types.js';
import { UserWrites } from './user-writes.js';
import { watchWait, whileWaiting, type WaitReporter } from './wait-report.js';
import { TargetUnreachable, WriteSession } from './write-session.js';

export type { Accepts, Backend, BackendOverride, Forward, ForwardResult, ReadRoute, WriteOutcome, WriteRequest } from './types.js';

/** How often a read that waits for a push on every leader looks again. */
const READ_WAIT_POLL_MS = 25;

/** Creates a repository a push found nowhere (src/cluster/lifecycle.ts; `repositories.createOnPush`). */
export interface RepositoryCreating {
  create(repo: string, who: { by: string; via?: string }): Promise<unknown>;
}

/** Resolves a dead owner's write when a request meets it (src/cluster/interruptions.ts). */
export interface InterruptionResolving {
  resolve(repo: string): Promise<unknown>;
}

/**
 * The cluster core as the transports and the CLI see it: routing, versions,
 * write sessions and catch-up (docs/architecture.md "Cluster"). It knows
 * backends and their Git clients, never HTTP or SSH. Its parts get a
 * ClusterContext in their constructors; none of them reaches back into it.
 */
export class Cluster {
  readonly config: Config;
  readonly log: Logger;
  readonly health: Health;
  readonly observer: Observer;
  private turn = 0;
  private readonly regression: RegressionGuard;
  private readonly adoption: Adoption;
  /** Write locks held per user in this githa (push.maxLocksPerUser). */
  private readonly userWrites: UserWrites;
  /** Checks what a copy's answer showed against the record before the client gets it (docs/architecture.md "Verified copies"). */
  readonly reads: ReadChecker;

  constructor(
    readonly ctx: ClusterContext,
    private readonly directory: Backends,
    private readonly resolver?: InterruptionResolving,
    private readonly creator?: RepositoryCreating,
  ) {
    this.config = ctx.config;
    this.log = ctx.log;
    this.health = ctx.health;
    this.observer = ctx.observer;
    this.adoption = new Adoption(ctx);
    this.regression = new RegressionGuard(ctx.log);
    this.userWrites = new UserWrites(ctx.config.push.maxLocksPerUser);
    this.reads = new ReadChecker({ repos: ctx.repos, log: ctx.log, observer: ctx.observer, repairs: ctx.repairs });
  }

  /**
   * The repository's state, checked against the highest version this githa
   * saw under the same epoch: lower means Redis went back in time (an old
   * snapshot), and githa fails closed (docs/operations.md "Redis lost or restored from an old snapshot").
   */
  async state(repo: string): Promise<RepoState> {
    const state = await this.ctx.repos.read(repo);
    this.regression.check(repo, state);
    return state;
  }

  /** Replaces the runtime overrides (called by the watcher whenever they change in Redis). */
  setOverrides(overrides: ReadonlyMap<string, BackendOverride>): void {
    this.directory.setOverrides(overrides);
  }

  isEnabled(id: string): boolean {
    return this.directory.isEnabled(id);
  }

  isWritable(id: string): boolean {
    return this.directory.isWritable(id);
  }

  activeBackends(): Backend[] {
    return this.directory.activeBackends();
  }

  backend(id: string): Backend {
    return this.directory.backend(id);
  }

  client(id: string): BackendClient {
    return this.directory.client(id);
  }

  /** Chooses the backends for a read; never takes the write lock (docs/architecture.md "A read"). */
  async routeRead(repo: string, accepts: Accepts = () => true, lent?: LentCredentials, waits?: WaitReporter): Promise<ReadRoute> {
    // Routing counts only the assigned backends (docs/architecture.md "Replication factor").
    let state = scopedState(await this.adoption.known(repo, await this.state(repo), lent));
    const until = performance.now() + this.config.catchUp.readWaitMs;
    let waiting: ReturnType<typeof watchWait> | undefined;
    try {
      for (;;) {
        if (state.frozen && frozenForRead(state.frozen.reason)) {
          throw new RepositoryFrozenError(frozenForWrite(repo, state.frozen), state.frozen.reason);
        }
        const flags = repoFlags(state);
        const plan = planRead(state.versions, scoped(state, this.directory.views()), this.config.zone, this.turn++, flags);
        // Every leader that could serve (over this transport) is taking a push right now: wait for it to be recorded (or to end) rather than serve it
        // unacknowledged; or none speaks this transport and a copy that does is being repaired (src/cluster/read-wait.ts): wait for it to lead again.
        const repairing = this.repairing(state, plan, flags, accepts);
        if ((this.waitsForPush(plan, flags, accepts, true) || repairing.length > 0) && performance.now() < until) {
          if (!waiting && repairing.length > 0) this.log.info({ repo, repairing }, 'read waits for a repaired copy: no leader speaks its transport');
          waiting ??= watchWait(waits, { kind: repairing.length > 0 ? 'catch-up' : 'push', repo });
          await sleep(READ_WAIT_POLL_MS);
          state = scopedState(await this.state(repo));
          continue;
        }
        waiting?.stop();
        return await this.routeFrom(repo, state, flags, plan, accepts, waits);
      }
    } finally {
      waiting?.stop();
    }
  }

  /** Drifted copies this transport could read once repaired, when no leader speaks it and no stale copy can be caught up (read-wait.ts). */
  private repairing(state: RepoState, plan: ReadPlan, flags: RepoFlags, accepts: Accepts): string[] {
    // The cheap test first: on every read a candidate speaks the transport, and nothing else is looked at.
    const drifted = repairedForTransport(plan, scoped(state, this.directory.views()), flags, (id) => accepts(this.backend(id)));
    if (drifted.length === 0 || plan.kind !== 'serve' || this.staleFor(state, flags, plan.candidates, accepts)) return [];
    return drifted;
  }

  /** Whether a read finds no leader to serve it only because a live push holds the others (excludeReads). */
  private waitsForPush(plan: ReadPlan, flags: RepoFlags, accepts: Accepts, upOnly = false): boolean {
    if ((flags.excludeReads?.size ?? 0) === 0) return false;
    // While waiting (upOnly), a usable leader that is down counts for nothing: the read waits for the push rather than try only it.
    const usable = plan.kind === 'serve' ? this.directory.usable(plan.candidates, accepts).filter((b) => !upOnly || this.health.isHealthy(b.id)) : [];
    return plan.kind === 'no-leader' || (plan.kind === 'serve' && usable.length === 0);
  }

  private async routeFrom(repo: string, state: RepoState, flags: RepoFlags, plan: ReadPlan, accepts: Accepts, waits?: WaitReporter): Promise<ReadRoute> {
    const { max, leaders } = leadership(state.versions, flags.notLeaders);
    switch (plan.kind) {
      case 'no-leader':
        if ((flags.excludeReads?.size ?? 0) > 0) {
          throw new NoLeaderError(`every leader of ${repo} that could serve this read is taking a push that is not recorded yet; try again`);
        }
        throw new NoLeaderError(leadersLost(repo, lostLeaders(state)));
      case 'serve': {
        if (this.waitsForPush(plan, flags, accepts)) throw new NoLeaderError(`every leader of ${repo} that could serve this read is taking a push that is not recorded yet; try again`);
        const candidates = this.directory.usable(plan.candidates, accepts);
        // No leader speaks this transport (a drifted one is being repaired): a stale copy that does is caught up first, then serves.
        const stale = candidates.length === 0 ? this.staleFor(state, flags, plan.candidates, accepts) : undefined;
        if (stale) return this.routeFrom(repo, state, flags, { kind: 'catch-up', target: stale, source: plan.candidates[0]!, fallback: [] }, accepts, waits);
        const repairing = candidates.length === 0 ? this.repairing(state, plan, flags, accepts) : [];
        if (repairing.length > 0) throw new NoLeaderError(leadersElsewhere(repo, leaders, repairing));
        return { repo, version: max, leaders, candidates, checksums: state.checksums };
      }
      case 'catch-up': {
        const ok = accepts(this.backend(plan.target)) && (await whileWaiting(waits, { kind: 'catch-up', repo }, () => this.catchUpWithin(repo, state, plan.source, plan.target, this.config.catchUp.readWaitMs)));
        const candidates = this.directory.usable(ok ? [plan.target, ...plan.fallback] : plan.fallback, accepts);
        // The caught-up target now holds the source's recorded refs.
        const checksums = ok ? new Map([...state.checksums, [plan.target, state.checksums.get(plan.source) ?? '']]) : state.checksums;
        return { repo, version: max, leaders, candidates, checksums };
      }
    }
  }

  /** An enabled, healthy, non-drifted copy below the leaders that this transport can use, when a leader exists to copy from. */
  private staleFor(state: RepoState, flags: RepoFlags, leaders: readonly string[], accepts: Accepts): string | undefined {
    if (leaders.length === 0) return undefined;
    const { max } = leadership(state.versions, flags.notLeaders);
    return scoped(state, this.directory.views())
      .filter((b) => b.enabled && b.healthy && (state.versions.get(b.id) ?? 0) < max && !flags.notLeaders?.has(b.id) && accepts(this.backend(b.id)))
      .map((b) => b.id)[0];
  }

  /** The error for a read or write none of whose leaders answered. */
  unreachable(route: ReadRoute): NoLeaderError {
    return new NoLeaderError(leadersLost(route.repo, route.leaders));
  }

  /** Chooses a writable leader for the advertisement a pushing client reads first. */
  async routeWriteAdvertisement(repo: string, accepts: Accepts = () => true, lent?: LentCredentials, user?: string): Promise<ReadRoute> {
    const state = scopedState(await this.orCreate(repo, user, () => this.writableState(repo, lent)));
    this.checkQuorum(repo, state);
    const flags = repoFlags(state);
    const plan = planWrite(state.versions, scoped(state, this.directory.views()), this.config.zone, this.turn++, flags);
    const { max, leaders } = leadership(state.versions, flags.notLeaders);
    if (plan.kind === 'write') return { repo, version: max, leaders, candidates: this.directory.usable(plan.candidates, accepts), checksums: state.checksums };
    return this.routeRead(repo, accepts, lent);
  }

  /** The state, when writes are allowed. A write interrupted by a dead owner is resolved on the spot when possible. */
  private async writableState(repo: string, lent?: LentCredentials): Promise<RepoState> {
    let state = await this.adoption.known(repo, await this.state(repo), lent);
    if (!state.frozen && interrupted(state) && this.resolver) {
      await this.resolver.resolve(repo).catch((err: unknown) => {
        this.log.warn({ repo, err: (err as Error).message }, 'could not resolve the interrupted write yet');
      });
      state = await this.state(repo);
    }
    if (refusesWrites(state)) throw writeRefusal(repo, state);
    return state;
  }

  /**
   * A push (its access rules passed) to a repository that exists on no
   * backend: created there first when `repositories.createOnPush` is on,
   * else refused naming the operator's command (docs/operations.md
   * "Repository lifecycle"). A create that lost a race to another is fine.
   */
  private async orCreate<T>(repo: string, user: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RepositoryNotFoundError) || !err.nowhere) throw err;
      // No user: githa did not verify the pusher (HTTP passthrough), so nothing may be created for it.
      if (!this.config.repositories.createOnPush || !this.creator || user === undefined) throw RepositoryNotFoundError.forPush(repo);
      await this.creator.create(repo, { by: user, via: 'push' }).catch((e: unknown) => {
        if (!(e instanceof RepositoryExistsError)) throw e;
      });
      return fn();
    }
  }

  /** Refuses writes while fewer assigned backends are up than the repository's write quorum; reads go on. */
  checkQuorum(repo: string, state: RepoState): void {
    const quorum = writeQuorumOf(this.config.replication, state);
    const up = scoped(state, this.activeBackends()).filter((b) => this.health.isHealthy(b.id)).map((b) => b.id);
    if (up.length < quorum) throw new QuorumUnavailableError(quorumUnavailable(repo, up, state.assigned?.length ?? this.config.backends.length, quorum));
  }

  /**
   * One push (docs/architecture.md "A push"): lock, refuse if frozen, pick a
   * writable leader, and run a WriteSession on it; a leader nothing reached
   * gives way to the next. The short way reads the state with the lock in one
   * turn; a state not plain (src/cluster/plain-state.ts) goes the long way,
   * checks before the lock. The release is not waited for (the ack neither).
   */
  async write(req: WriteRequest, forward: Forward): Promise<WriteOutcome> {
    const plain = (ours: boolean) => (s: RepoState) => {
      checkPlain(s, ours);
      this.checkQuorum(req.repo, s);
    };
    const outcome = await this.locked(req, forward, { releaseAfter: true, readState: { whileBusy: plain(false) } }, plain(true)).catch(notPlain);
    if (!(outcome instanceof NotPlain)) return outcome;
    this.checkQuorum(req.repo, await this.orCreate(req.repo, req.unverified ? undefined : req.user, () => this.writableState(req.repo)));
    return this.locked(req, forward, { releaseAfter: true });
  }

  /** The push under the lock, its wait told to the client; `check` refuses or sends the short way's push the long way. */
  private async locked(req: WriteRequest, forward: Forward, opts: LockOptions, check?: (state: RepoState) => void): Promise<WriteOutcome> {
    const { repo } = req;
    const waiting = watchWait(req.waits, { kind: 'lock', repo });
    try {
      return await this.ctx.writeLocks.withLock(
        repo,
        async (lock, read) => {
          waiting.stop();
          if (read) this.regression.check(repo, read);
          const state = read ?? (await this.state(repo));
          check?.(state);
          // Counted once the lock is held: a push waiting for a lock holds none (docs/security.md "Slow pushes").
          let release: () => void;
          try {
            release = this.userWrites.take(req.user);
          } catch (err) {
            this.log.warn({ repo, user: req.user, max: this.config.push.maxLocksPerUser }, 'push refused: the user holds too many write locks');
            this.observer.pushLimited('user-locks');
            throw err;
          }
          try {
            return await this.writeLocked(req, forward, lock, state);
          } finally {
            release();
          }
        },
        opts,
      );
    } finally {
      waiting.stop();
    }
  }

  private async writeLocked(req: WriteRequest, forward: Forward, lock: HeldLock, read: RepoState): Promise<WriteOutcome> {
    const { repo } = req;
    let state = read;
    // A delete or rename that took the lock first (after the check above): the pusher is told what happened, not that leaders are lost.
    if (state.gone) throw goneError(repo, state.gone);
    // Under the lock, any marker is a write that ended without clearing it: an interruption.
    if (state.frozen || state.writing) throw writeRefusal(repo, state);
    const mine = scopedState(state);
    let plan = planWrite(mine.versions, scoped(state, this.directory.views()), this.config.zone, this.turn++, repoFlags(mine));
    if (plan.kind === 'catch-up') {
      const { source, target } = plan;
      const ok = await whileWaiting(req.waits, { kind: 'catch-up', repo }, () => this.catchUpWithin(repo, state, source, target, this.config.locks.leaseMs * 3));
      if (!ok) throw new NoLeaderError(`no writable leader of ${repo}, and ${plan.target} could not be caught up to take the write`);
      plan = { kind: 'write', candidates: [plan.target] };
      state = await this.ctx.repos.read(repo);
    }
    if (plan.kind === 'no-leader') throw new NoLeaderError(leadersLost(repo, lostLeaders(state)));
    let lastError: unknown;
    for (const target of this.directory.usable(plan.candidates, req.accepts ?? (() => true))) {
      try {
        return await new WriteSession(this.ctx, req, lock, state, target).run(forward);
      } catch (err) {
        if (!(err instanceof TargetUnreachable)) throw err;
        this.log.warn({ repo, backend: target.id, err: err.message }, 'write target unreachable; trying another leader');
        lastError = err.cause;
      }
    }
    if (lastError instanceof BackendUnavailableError) throw new NoLeaderError(leadersLost(repo, plan.candidates));
    throw lastError instanceof GithaError ? lastError : new NoLeaderError(leadersLost(repo, plan.candidates));
  }

  /** Every enabled backend's checksum of `repo` (src/cluster/adoption.ts). */
  compareCopies(repo: string): ReturnType<Adoption['compareCopies']> {
    return this.adoption.compareCopies(repo);
  }

  /** Catches `target` up from `source`, waiting at most `waitMs` (the copy goes on after that). */
  async catchUpWithin(repo: string, state: RepoState, sourceId: string, targetId: string, waitMs: number): Promise<boolean> {
    const version = state.versions.get(sourceId);
    const checksum = state.checksums.get(sourceId);
    if (version === undefined || checksum === undefined) return false;
    const copy = catchUp(this.ctx, {
      repo,
      source: this.client(sourceId),
      target: this.client(targetId),
      version,
      checksum,
      pairLockMs: this.config.catchUp.pairLockMs,
    }).then(
      // Another githa copying into the target right now (a replicator): its copy is as good as ours once recorded.
      (outcome) => outcome.status === 'ok' || (outcome.status === 'busy' && this.recordedAt(repo, targetId, version, waitMs)),
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

  /** Whether the record shows `target` at `version` (or later) within `waitMs`, polled. */
  private async recordedAt(repo: string, target: string, version: number, waitMs: number): Promise<boolean> {
    const until = performance.now() + waitMs;
    for (;;) {
      const state = await this.ctx.repos.read(repo).catch(() => undefined);
      if ((state?.versions.get(target) ?? 0) >= version && !state?.drift.has(target)) return true;
      if (performance.now() + READ_WAIT_POLL_MS > until) return false;
      await sleep(READ_WAIT_POLL_MS * 4);
    }
  }

  usable(ids: readonly string[], accepts: Accepts): Backend[] {
    return this.directory.usable(ids, accepts);
  }
}
