import { setTimeout as sleep } from 'node:timers/promises';
import { trashStamp } from '../backends/admin.js';
import type { Config } from '../config/schema.js';
import { BackendNotManagedError, BackendUnavailableError, MoveRefusedError, RepositoryFrozenError, RepositoryGoneError, RepositoryNotFoundError } from '../errors.js';
import type { MoveStore, SwitchResult } from '../state/move-store.js';
import type { RepoState } from '../state/repo-state.js';
import { goneError } from './adoption.js';
import { catchUp } from './catch-up.js';
import { refsChecksum } from './checksum.js';
import type { ClusterContext } from './context.js';
import { createByHand, trashByHand } from './manual-commands.js';
import { throttled, type Throttle } from './throttle.js';

/** The parts of a ClusterContext a move needs. */
export type MoveParts = Pick<ClusterContext, 'config' | 'log' | 'repos' | 'writeLocks' | 'pairs' | 'observer' | 'repairs' | 'backends' | 'health'>;

export interface MoveOptions {
  /** The operator (push log `user`). */
  by: string;
  /** The bandwidth cap of the relayed packs (`--bandwidth`). */
  throttle?: Throttle | undefined;
  /** A progress line (no newline). */
  progress?: ((line: string) => void) | undefined;
}

export interface MoveResult {
  repo: string;
  from: string;
  to: string;
  /** The version C was switched in at. */
  version: number;
  /** Pack bytes relayed to C. */
  bytes: number;
  ms: number;
  /** No assignment was recorded: it was written as every configured backend, B replaced by C. */
  materialised: boolean;
  /**
   * B's copy: moved to its trash (`stamp`), not there, left (no admin: `byHand` says what to run; unreachable: a rerun
   * of `githa delete`-style cleanup by hand; unconfigured: B is not in the configuration, githa cannot reach it).
   */
  trash: 'trashed' | 'absent' | 'by-hand' | 'unreachable' | 'unconfigured';
  stamp: string;
  byHand?: string;
}

/** Catch-up rounds before the write lock (pushes may keep moving the leaders meanwhile). */
const ROUNDS_UNLOCKED = 8;
/** Under the write lock no push moves the leaders: one copy is enough, a few more cover a busy pair lock. */
const ROUNDS_LOCKED = 20;

/**
 * Moves a repository's copy from backend B to backend C
 * (docs/architecture.md "Moves"): C is created where missing (admin
 * account), caught up from a leader with the catch-up relay while pushes go
 * on (C is not assigned, so it counts for nothing yet), then, under R's
 * write lock (no push can land meanwhile), caught up once more, its live
 * listing checked against its record, and switched in for B by one guarded
 * script (SWITCH_ASSIGNMENT). B's copy then goes to B's trash directory:
 * nothing is deleted.
 */
export class Mover {
  constructor(
    private readonly ctx: MoveParts,
    private readonly store: MoveStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get configured(): string[] {
    return this.ctx.config.backends.map((b) => b.id);
  }

  /** Refuses what cannot move; answers the assignment as recorded or as the routing reads an absent one. */
  check(state: RepoState, repo: string, from: string, to: string): readonly string[] {
    const ids = this.configured;
    if (!ids.includes(to)) throw new MoveRefusedError(`unknown backend ${JSON.stringify(to)}: the configured backends are ${ids.join(', ')}`);
    // B removed from the configuration but still in R's recorded assignment: a replacement, C copied from a leader
    // (docs/architecture.md "Moves"); any other unknown id is a typo.
    if (!ids.includes(from) && !state.assigned?.includes(from)) {
      throw new MoveRefusedError(`unknown backend ${JSON.stringify(from)}: the configured backends are ${ids.join(', ')}, and ${repo}'s assignment does not name it`);
    }
    if (from === to) throw new MoveRefusedError(`--from and --to are both ${from}`);
    if (!this.ctx.backends.isEnabled(to)) throw new MoveRefusedError(`${to} is disabled: it cannot take a copy (githa backend enable ${to})`);
    if (state.gone) throw state.gone.kind === 'deleted' || state.gone.kind === 'deleting' ? new RepositoryGoneError(`repository ${repo} was deleted`) : goneError(repo, state.gone);
    if (state.versions.size === 0) throw RepositoryNotFoundError.missing(repo);
    if (state.frozen) throw new RepositoryFrozenError(`repository ${repo} is frozen (${state.frozen.reason}): thaw it before moving it`, state.frozen.reason);
    const assigned = state.assigned ?? ids;
    if (!assigned.includes(from)) throw new MoveRefusedError(`${from} does not hold ${repo} (assigned: ${assigned.join(', ')})`);
    if (assigned.includes(to)) {
      const why = state.assigned ? '' : ' (no assignment is recorded: replication.factor is unset, so every configured backend holds it; set one with githa repo factor first)';
      throw new MoveRefusedError(`${to} already holds ${repo}${why}`);
    }
    // A drifted or suspect copy may hold commits no other has: its repair or settling runs before it is trashed (SWITCH_ASSIGNMENT refuses too).
    if (state.drift.has(from) || state.suspect.has(from)) throw new MoveRefusedError(unsettled(repo, from));
    // Before C is created: no copy can reach a version that only removed backends hold.
    const max = Math.max(0, ...assigned.filter((b) => !state.drift.has(b)).map((b) => state.versions.get(b) ?? 0));
    const leaders = assigned.filter((b) => !state.drift.has(b) && max > 0 && state.versions.get(b) === max);
    if (leaders.length > 0 && leaders.every((b) => !ids.includes(b))) throw new MoveRefusedError(removedLeaders(repo, leaders));
    return assigned;
  }

  async move(repo: string, from: string, to: string, o: MoveOptions): Promise<MoveResult> {
    const started = performance.now();
    const say = (line: string): void => o.progress?.(line);
    this.check(await this.ctx.repos.read(repo), repo, from, to);
    say(`${repo}: ${from} → ${to}: looking for ${to}'s copy`);
    await this.ensureCopy(repo, to, say);
    let bytes = 0;
    const switched = await (async () => {
      bytes = await this.copyRounds(repo, from, to, o, ROUNDS_UNLOCKED, undefined);
      return this.switchIn(repo, from, to, o, () => bytes, (n) => (bytes += n));
    })().catch(async (err: unknown) => {
      // Not switched: C, outside the assignment, keeps no record (a version that counts nowhere would never converge).
      await this.store.forgetTarget(repo, to).catch((e: unknown) => this.ctx.log.warn({ repo, to, err: (e as Error).message }, 'could not forget the target of a move that did not switch'));
      throw err;
    });

    say(`${repo}: ${to} switched in for ${from} at version ${switched.version}${switched.materialised ? ' (assignment recorded: it had none)' : ''}`);
    const stamp = trashStamp(this.now());
    const result: MoveResult = { repo, from, to, version: switched.version, bytes, ms: 0, materialised: switched.materialised, trash: 'trashed', stamp };
    const admin = this.configured.includes(from) ? this.ctx.backends.admin(from) : undefined;
    if (!this.configured.includes(from)) result.trash = 'unconfigured';
    else if (!admin) {
      result.trash = 'by-hand';
      result.byHand = trashByHand(this.ctx.backends.backend(from), repo, stamp, this.ctx.config.repositories);
    } else {
      try {
        result.trash = await admin.trash(repo, stamp);
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        result.trash = 'unreachable';
        result.byHand = trashByHand(this.ctx.backends.backend(from), repo, stamp, this.ctx.config.repositories);
      }
    }
    result.ms = Math.round(performance.now() - started);
    this.ctx.log.info({ repo, from, to, version: result.version, bytes, ms: result.ms, trash: result.trash, stamp, by: o.by }, 'repository moved');
    return result;
  }

  /** C gets an empty copy where it has none (its admin account), as `githa create` makes one. */
  /** Under R's write lock: C caught up once more, its live refs checked against its record, then switched in for B. */
  private switchIn(repo: string, from: string, to: string, o: MoveOptions, bytes: () => number, add: (n: number) => void): Promise<Extract<SwitchResult, { kind: 'ok' }>> {
    return this.ctx.writeLocks.withLock(repo, async (lock) => {
      const state = await this.ctx.repos.read(repo);
      this.check(state, repo, from, to);
      add(await this.copyRounds(repo, from, to, o, ROUNDS_LOCKED, lock.signal));
      // Verify, don't trust (docs/architecture.md "Verified copies"): C's live refs are its record before it counts.
      const live = await this.ctx.backends.client(to).listRefs(repo, lock.signal);
      const now = await this.ctx.repos.read(repo);
      const recorded = now.checksums.get(to);
      if (!live || refsChecksum(live) !== recorded) throw new MoveRefusedError(`${to}'s copy of ${repo} does not hold its recorded refs after the copy: not switched (run the move again)`);
      const r = await this.store.switchAssignment(repo, { token: lock.token, from, to, every: this.configured, log: { user: o.by, bytes: bytes() } });
      if (r.kind === 'ok') return r;
      const why: Record<string, string> = {
        lock: 'the write lock was lost',
        gone: 'it was deleted or renamed meanwhile',
        frozen: 'it was frozen meanwhile',
        writing: 'an interrupted write is not resolved yet',
        'not-assigned': `${from} no longer holds it`,
        assigned: `${to} holds it already`,
        'no-record': 'no leader is recorded',
        behind: `${to} is behind the leaders`,
        mismatch: `${to}'s recorded checksum is not the leaders'`,
        unsettled: `${from}'s copy is drifted or suspect`,
      };
      throw new MoveRefusedError(`cannot switch ${repo} from ${from} to ${to}: ${why[r.kind] ?? r.kind}; nothing switched (run the move again)`);
    });
  }

  private async ensureCopy(repo: string, to: string, say: (line: string) => void): Promise<void> {
    if ((await this.ctx.backends.client(to).listRefs(repo)) !== null) return;
    const admin = this.ctx.backends.admin(to);
    const settings: Config['repositories'] = this.ctx.config.repositories;
    if (!admin) {
      throw new BackendNotManagedError(
        `cannot create ${repo} on ${to}: githa may not manage it (no "admin" in its configuration); run by hand, then the move again:\n  ${createByHand(this.ctx.backends.backend(to), repo, settings)}`,
      );
    }
    await admin.create(repo, { headBranch: settings.initialBranch });
    say(`${repo}: created on ${to}`);
  }

  /**
   * Catches C up from a leader (the catch-up relay, recorded by
   * COMMIT_CATCH_UP) until C's record is the leaders' or `rounds` ran out;
   * the bytes relayed. Outside the write lock pushes may move the leaders
   * on; the locked call finishes the job.
   */
  private async copyRounds(repo: string, from: string, to: string, o: MoveOptions, rounds: number, signal: AbortSignal | undefined): Promise<number> {
    let bytes = 0;
    for (let i = 0; i < rounds; i++) {
      signal?.throwIfAborted();
      const state = await this.ctx.repos.read(repo);
      const assigned = state.assigned ?? this.configured;
      let max = 0;
      for (const b of assigned) if (!state.drift.has(b)) max = Math.max(max, state.versions.get(b) ?? 0);
      const leaders = assigned.filter((b) => !state.drift.has(b) && (state.versions.get(b) ?? 0) === max && max > 0);
      const sum = leaders.map((b) => state.checksums.get(b)).find((c) => c !== undefined);
      if ((state.versions.get(to) ?? 0) === max && sum !== undefined && state.checksums.get(to) === sum && !state.drift.has(to)) return bytes;
      // A leader other than B first (B gives its copy up), each enabled and healthy.
      const usable = leaders.filter((b) => this.ctx.backends.isEnabled(b) && this.ctx.health.isHealthy(b));
      const source = usable.find((b) => b !== from) ?? usable[0];
      if (leaders.length > 0 && leaders.every((b) => !this.configured.includes(b))) throw new MoveRefusedError(removedLeaders(repo, leaders));
      if (!source || sum === undefined) throw new MoveRefusedError(`no enabled, healthy leader of ${repo} to copy from`);
      o.progress?.(`${repo}: copying version ${max} from ${source} to ${to}`);
      const out = await catchUp(this.ctx, {
        repo,
        source: throttled(this.ctx.backends.client(source), o.throttle),
        target: this.ctx.backends.client(to),
        version: max,
        checksum: state.checksums.get(source)!,
        // C is outside the assignment until the switch, on purpose.
        moveTarget: true,
        signal,
        pairLockMs: this.ctx.config.catchUp.pairLockMs,
      });
      if (out.status === 'ok') bytes += out.bytes;
      else if (out.status === 'not-recorded' && out.reason === 'contradicts') throw new MoveRefusedError(`${to}'s copy of ${repo} is off its record: it is repaired first; run the move again`);
      else await sleep(100, undefined, signal ? { signal } : undefined);
    }
    if (signal) throw new MoveRefusedError(`${to} could not be caught up with ${repo} under its write lock (${rounds} tries): nothing switched`);
    return bytes;
  }
}

function unsettled(repo: string, from: string): string {
  return `${from}'s copy of ${repo} is drifted or suspect (it may hold commits no other copy has): it is repaired or settled first; run the move again once \`githa repo ${repo}\` shows it neither`;
}

function removedLeaders(repo: string, leaders: readonly string[]): string {
  return `the newest version of ${repo} is only on ${leaders.join(', ')}, not in the configuration: no copy can be caught up to it (githa dataloss lists it); put ${leaders.length === 1 ? 'it' : 'them'} back in the configuration, then move ${repo}`;
}
