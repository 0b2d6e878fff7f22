/**
 * Repair without loss (docs/architecture.md "Verified copies"): a copy found
 * contradicting its record (by a read, the verifier, or a failed fetch) is
 * listed again and compared with its record; a real contradiction is marked
 * as drift (it leads no more), then, under the repository's write lock, the
 * copy's tips that the leaders lack are kept on a leader (src/cluster/kept.ts)
 * and the copy is refilled from that leader with the catch-up relay and
 * recorded at the leader's version (SYNC_COMMIT, which clears the drift).
 * A repository missing on a backend cannot be created through the Git
 * protocol: on a backend githa may manage it is created through its admin
 * account, then refilled (src/cluster/fill.ts); elsewhere it stays drifted as
 * `missing`, with the command that creates it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { RefTip } from '../backends/types.js';
import { BackendUnavailableError } from '../errors.js';
import type { Held } from '../state/lease.js';
import type { LogFields } from '../state/repository-store.js';
import type { DriftKind, RepoState } from '../state/repo-state.js';
import { copyRepository, type CopyOutcome } from './catch-up.js';
import { EMPTY_CHECKSUM, refsChecksum } from './checksum.js';
import { noteWrite, type ClusterContext } from './context.js';
import { createCommand, type CopyFiller } from './fill.js';
import { keepLacking, type KeepResult } from './kept.js';
import type { CopyRepairs } from './read-check.js';
import { leadership, repoFlags } from './routing.js';

/** Records a copy made under the write lock and clears its drift (OperatorStore.commitSync: SYNC_COMMIT). */
export type CommitSync = (repo: string, token: string, target: string, version: number, checksum: string, source: string, log: LogFields) => Promise<string>;

/** Demotes a copy under the write lock when the record still shows `version` on it and `max` overall (OperatorStore.demote: THAW_DEMOTE); answers its status. */
export type DemoteCopy = (repo: string, token: string, backend: string, version: number, max: number, log: LogFields) => Promise<string>;

export interface RepairReport {
  repo: string;
  backend: string;
  /**
   * agrees: the copy holds what its record says (nothing to do); repaired: refilled and recorded;
   * missing: no repository there (an operator creates it: `command`); skipped: not now (a write, a
   * freeze, no record; the next trigger tries again); failed: see `detail`.
   */
  outcome: 'agrees' | 'repaired' | 'demoted' | 'missing' | 'skipped' | 'failed';
  kind?: DriftKind;
  kept: KeepResult['kept'];
  source?: string;
  version?: number;
  detail?: string;
  /** For `missing`: the command that creates the repository on the backend. */
  command?: string;
  /** The copy was missing and githa created it through the backend's admin account before refilling it. */
  created?: boolean;
}

/** Repairs running at once, per githa: each holds a repository's write lock and relays a pack. */
const MAX_AT_ONCE = 2;
/** A copy whose repair failed or found it missing is not repaired again sooner (reads and sweeps keep asking). */
const COOLDOWN_MS = 10_000;
/** A failed repair is tried again by the repairer itself, after COOLDOWN_MS doubling per failure up to this. */
const MAX_RETRY_MS = 300_000;

/**
 * Whether a repair that did not end should be tried again by the repairer itself: it failed (Redis or a backend
 * unreachable meanwhile, the lock busy), or it met a state that passes by itself (an interrupted write the resolver
 * settles, a copy running into it). Nothing else would ask again soon: a drifted copy is read by no one and
 * copied to by no one, and the verifier's sweep is hourly. The Redis failover of test/integration/sentinel.test.ts
 * left two drifted copies whose repairs failed, and every later push missed its write quorum.
 */
function transient(r: RepairReport): boolean {
  return r.outcome === 'failed' || (r.outcome === 'skipped' && (r.detail === 'an interrupted write is not resolved yet' || r.detail === 'a copy to it is running'));
}
/** A copy lock another githa holds (a replicator's catch-up) is waited for this many times, 250 ms apart. */
const BUSY_RETRIES = 40;

/** The command an operator runs to create a missing copy (src/cluster/fill.ts; `githa repo` and `githa status` show it too). */
export { createCommand };

/** What a copy's listing shows against its record, before the repair's own findings. */
export function liveKind(live: string): DriftKind | undefined {
  return live === 'missing' ? 'missing' : live === EMPTY_CHECKSUM ? 'empty' : undefined;
}

export class CopyRepairer implements CopyRepairs {
  private readonly log: Logger;
  private readonly queue: [repo: string, backend: string, why: string][] = [];
  /** Keys (repo NUL backend) queued or running. */
  private readonly busy = new Set<string>();
  private readonly cool = new Map<string, number>();
  private active = 0;
  private waiters: (() => void)[] = [];
  /** Failed attempts in a row per key, for the retry's backoff; the retry timers. */
  private readonly failures = new Map<string, number>();
  private readonly retries = new Map<string, NodeJS.Timeout>();
  private readonly cooldownMs: number;
  private stopped = false;

  constructor(
    private readonly ctx: ClusterContext,
    private readonly commitSync: CommitSync,
    private readonly demote?: DemoteCopy,
    /** Creates a missing copy on a backend githa may manage (src/cluster/fill.ts); without it, a missing copy is reported. */
    private readonly filler?: Pick<CopyFiller, 'createLocked' | 'track' | 'command'>,
    opts: { cooldownMs?: number } = {},
  ) {
    this.log = ctx.log.child({ component: 'repair' });
    this.cooldownMs = opts.cooldownMs ?? COOLDOWN_MS;
  }

  /** Stops the retries waiting, and any a repair still running would arm (shutdown). */
  stop(): void {
    this.stopped = true;
    for (const t of this.retries.values()) clearTimeout(t);
    this.retries.clear();
  }

  schedule(repo: string, backend: string, why: string): void {
    const key = `${repo}\0${backend}`;
    if (this.busy.has(key)) return;
    const until = this.cool.get(key);
    if (until !== undefined) {
      if (performance.now() < until) return;
      this.cool.delete(key);
    }
    this.busy.add(key);
    this.queue.push([repo, backend, why]);
    this.pump();
  }

  /** Resolves once no repair is queued or running (tests, shutdown). */
  idle(): Promise<void> {
    if (this.busy.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private pump(): void {
    while (this.active < MAX_AT_ONCE && this.queue.length > 0) {
      const [repo, backend, why] = this.queue.shift()!;
      const key = `${repo}\0${backend}`;
      this.active++;
      void this.repair(repo, backend, why)
        .catch((err: unknown): RepairReport => ({ repo, backend, outcome: 'failed', kept: [], detail: (err as Error).message }))
        .then((r) => {
          this.report(r, why);
          if (r.outcome === 'missing') this.cool.set(key, performance.now() + this.cooldownMs);
          if (transient(r)) this.retryLater(key, repo, backend, why);
          else this.failures.delete(key);
        })
        .finally(() => {
          this.active--;
          this.busy.delete(key);
          this.pump();
          if (this.busy.size === 0) for (const w of this.waiters.splice(0)) w();
        });
    }
  }

  /** Tries `key` again after the cooldown, doubled per failure in a row (up to MAX_RETRY_MS). */
  private retryLater(key: string, repo: string, backend: string, why: string): void {
    if (this.stopped) return;
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.cooldownMs * 2 ** (n - 1), MAX_RETRY_MS);
    // Only the retry backs off: a read or the verifier asking after the plain cooldown is served sooner.
    this.cool.set(key, performance.now() + this.cooldownMs);
    clearTimeout(this.retries.get(key));
    const timer = setTimeout(() => {
      this.retries.delete(key);
      this.cool.delete(key);
      this.schedule(repo, backend, why);
    }, delay);
    timer.unref();
    this.retries.set(key, timer);
  }

  private report(r: RepairReport, why: string): void {
    const fields = { repo: r.repo, backend: r.backend, why, kind: r.kind, kept: r.kept.map((k) => k.ref), source: r.source, version: r.version, detail: r.detail };
    if (r.outcome === 'repaired' && r.created) this.log.info(fields, 'missing copy created through the backend\'s admin account, then refilled from a leader');
    else if (r.outcome === 'repaired') this.log.info(fields, r.kept.length > 0 ? 'copy repaired: its commits the leaders lacked are kept, then it was refilled' : 'copy repaired: refilled from a leader');
    else if (r.outcome === 'demoted') this.log.error(fields, `LEADER LOST ITS COPY: ${r.backend} was the only leader and holds nothing (${r.kind}); it is demoted, the copies at version ${r.version} lead, and what only it held is gone (githa log ${r.repo})`);
    else if (r.outcome === 'missing') this.log.error({ ...fields, command: r.command }, `MISSING ON ${r.backend}: the repository does not exist there and githa cannot create it; create it with: ${r.command}`);
    else if (r.outcome === 'failed') this.log.warn(fields, 'copy repair failed; the copy leads no more and is tried again later');
    else this.log.debug({ ...fields, outcome: r.outcome }, 'copy repair: nothing done');
  }

  /** One repair of `backend`'s copy of `repo` (what schedule runs; never overlapping for one pair when scheduled). */
  async repair(repo: string, backend: string, why: string): Promise<RepairReport> {
    const { ctx } = this;
    const done = (outcome: RepairReport['outcome'], detail?: string): RepairReport => ({ repo, backend, outcome, kept: [], ...(detail ? { detail } : {}) });
    const state = await ctx.repos.read(repo);
    const version = state.versions.get(backend);
    const recorded = state.checksums.get(backend);
    if (version === undefined || recorded === undefined) return done('skipped', 'no record of this copy');
    if (!ctx.backends.isEnabled(backend)) return done('skipped', 'disabled');
    // A suspect copy may hold a dead writer's late bytes: the resolver settles it (docs/architecture.md "Failures resolved without a human").
    if (state.suspect.has(backend)) return done('skipped', 'suspect');
    if (!state.drift.has(backend)) {
      // Listed under the copy lock, as the verifier does: a catch-up landing on the copy meanwhile is no contradiction.
      const held = await ctx.pairs.acquire(repo, backend, ctx.config.catchUp.pairLockMs);
      if (!held) return done('skipped', 'a copy to it is running');
      try {
        const refs = await ctx.backends.client(backend).listRefs(repo, held.lease.signal);
        const live = refs === null ? 'missing' : refsChecksum(refs);
        if (live === recorded) return done('agrees');
        held.lease.signal.throwIfAborted();
        const status = await ctx.repos.markDrift(repo, backend, version, recorded, live, liveKind(live));
        // The record moved meanwhile (a push or copy committed on it): no evidence of a contradiction.
        if (status !== 'ok') return done('skipped', status === 'writing' ? 'a write is in flight' : 'the record moved');
        this.log.error({ repo, backend, version, recorded, live, why }, 'COPY CONTRADICTS RECORD: it leads no more; its repair starts');
      } finally {
        await held.lease.release();
      }
    }
    return ctx.writeLocks.withLock(repo, (lock) => this.underLock(repo, backend, why, lock));
  }

  private async underLock(repo: string, backend: string, why: string, lock: Held): Promise<RepairReport> {
    const { ctx } = this;
    const done = (outcome: RepairReport['outcome'], detail?: string): RepairReport => ({ repo, backend, outcome, kept: [], ...(detail ? { detail } : {}) });
    const state = await ctx.repos.read(repo);
    if (!state.drift.has(backend)) return done('agrees', 'resolved meanwhile');
    if (state.frozen) return done('skipped', `frozen (${state.frozen.reason})`);
    if (state.writing) return done('skipped', 'an interrupted write is not resolved yet');
    const leader = await this.leader(repo, backend, state, lock.signal);
    if (!leader) return (await this.demoteEmptied(repo, backend, state, lock)) ?? done('failed', 'no enabled, healthy leader whose copy matches its record');
    const target = ctx.backends.client(backend);
    const fromRefs = await target.listRefs(repo, lock.signal);
    if (fromRefs === null) {
      await ctx.repos.noteDrift(repo, backend, 'missing', 'missing');
      if (this.filler && ctx.backends.admin(backend)) {
        const filler = this.filler;
        return filler.track(backend, () => this.createAndRefill(filler, repo, backend, why, state, lock, leader.id));
      }
      const command = this.filler
        ? await this.filler.command(repo, backend, leader.id, lock.signal)
        : createCommand(repo, backend, (await ctx.backends.client(leader.id).headTarget?.(repo, lock.signal).catch(() => undefined)) ?? undefined);
      return { ...done('missing'), kind: 'missing', command };
    }
    const live = refsChecksum(fromRefs);
    if (live === state.checksums.get(backend)) {
      // Back at its recorded refs (the verifier's "drift resolved"): it is an ordinary copy again.
      await ctx.repos.clearDrift(repo, backend);
      return done('agrees', 'back at its recorded refs');
    }
    const keep = await keepLacking(ctx, { repo, lock, state, leader: leader.id, leaderRefs: leader.refs, from: backend, fromRefs });
    const kind: DriftKind = fromRefs.length === 0 ? 'empty' : keep.kept.length > 0 ? 'divergent' : 'behind';
    await ctx.repos.noteDrift(repo, backend, live, kind);
    const now = keep.version === undefined ? state : await ctx.repos.read(repo);
    const refill = await this.refill(repo, backend, leader.id, now, lock, { user: 'githa', by: 'repair', kind, why: why.slice(0, 200) });
    return { ...refill, kind, kept: keep.kept };
  }

  /** A missing copy on a managed backend: created (HEAD as the leader's), then refilled from the leader; it holds nothing to keep. */
  private async createAndRefill(filler: Pick<CopyFiller, 'createLocked'>, repo: string, backend: string, why: string, state: RepoState, lock: Held, leader: string): Promise<RepairReport> {
    const base = { repo, backend, kind: 'missing' as const, kept: [] };
    const made = await filler.createLocked(repo, backend, state, lock.signal, leader);
    if (made.status === 'refused') return { ...base, outcome: 'skipped', detail: `missing, not created: ${made.detail}` };
    // The Git endpoint must now find what the admin account created: a root that differs from the one it serves is a configuration error.
    const refs = await this.ctx.backends.client(backend).listRefs(repo, lock.signal);
    if (refs === null) return { ...base, outcome: 'failed', detail: `created through the admin account, but ${backend}'s Git endpoint still finds no ${repo}: does backends[].admin name the root it serves?` };
    // Made by someone else meanwhile, and written to: not overwritten blind; the next repair keeps what it holds.
    if (refs.length > 0) return { ...base, outcome: 'failed', detail: `a copy with refs appeared on ${backend} meanwhile; it is looked at again` };
    await this.ctx.repos.noteDrift(repo, backend, refsChecksum(refs), 'missing');
    const refill = await this.refill(repo, backend, leader, state, lock, { user: 'githa', by: 'repair', kind: 'missing', why: why.slice(0, 200) });
    return { ...refill, kind: 'missing', ...(made.status === 'created' ? { created: true } : {}) };
  }

  /**
   * The only leader lost its copy (missing, or empty): it holds nothing to
   * keep, so demoting it loses nothing that still exists anywhere, and the
   * copies at the next version lead again (what only it held — a version
   * recorded without its write quorum — is gone; docs/operations.md "A
   * copy is missing"). Only then: a leader holding anything stays for an
   * operator (`githa thaw --demote`/`--promote`).
   */
  private async demoteEmptied(repo: string, backend: string, state: RepoState, lock: Held): Promise<RepairReport | undefined> {
    const version = state.versions.get(backend);
    const { max } = leadership(state.versions);
    if (!this.demote || version === undefined || version !== max) return undefined;
    if ([...state.versions].some(([b, v]) => b !== backend && v === max)) return undefined;
    const others = [...state.versions].filter(([b]) => b !== backend && !state.drift.has(b) && this.ctx.backends.isEnabled(b));
    if (others.length === 0) return undefined;
    const refs = await this.ctx.backends.client(backend).listRefs(repo, lock.signal).catch(() => undefined);
    if (refs === undefined || (refs !== null && refs.length > 0)) return undefined;
    const kind: DriftKind = refs === null ? 'missing' : 'empty';
    const status = await this.demote(repo, lock.token, backend, version, max, { user: 'githa', by: 'repair', kind });
    if (status !== 'OK') return { repo, backend, outcome: 'skipped', kept: [], detail: `demote: ${status.toLowerCase()}` };
    const next = Math.max(...others.map(([, v]) => v));
    return { repo, backend, outcome: 'demoted', kind, kept: [], version: next };
  }

  /** The first enabled, healthy, non-drifted leader whose listing equals its record (writable ones first: keeping writes there). */
  private async leader(repo: string, backend: string, state: RepoState, signal: AbortSignal): Promise<{ id: string; refs: RefTip[] } | undefined> {
    const { ctx } = this;
    const flags = repoFlags(state);
    const { leaders } = leadership(state.versions, flags.notLeaders);
    const usable = leaders.filter((b) => b !== backend && ctx.backends.isEnabled(b) && ctx.health.isHealthy(b));
    const order = [...usable.filter((b) => ctx.backends.isWritable(b) && !flags.avoid?.has(b)), ...usable.filter((b) => !ctx.backends.isWritable(b) || flags.avoid?.has(b))];
    for (const id of order) {
      try {
        const refs = await ctx.backends.client(id).listRefs(repo, signal);
        if (refs && refsChecksum(refs) === state.checksums.get(id)) return { id, refs };
        this.log.warn({ repo, backend: id }, 'a leader does not match its record; not used to repair');
      } catch (err) {
        if (err instanceof BackendUnavailableError) ctx.health.markDown(id);
        this.log.debug({ repo, backend: id, err: (err as Error).message }, 'leader unreachable for a repair');
      }
    }
    return undefined;
  }

  /** Copies `source` (a leader in `state`) to `backend` under the write lock, then records it and clears its drift. */
  private async refill(repo: string, backend: string, source: string, state: RepoState, lock: Held, log: LogFields): Promise<RepairReport> {
    const { ctx } = this;
    const version = state.versions.get(source)!;
    const checksum = state.checksums.get(source)!;
    const base = { repo, backend, kept: [], source };
    let copy: CopyOutcome;
    let tries = 0;
    do {
      copy = await copyRepository(ctx.pairs, {
        repo,
        source: ctx.backends.client(source),
        target: ctx.backends.client(backend),
        checksum,
        signal: lock.signal,
        pairLockMs: ctx.config.catchUp.pairLockMs,
        hold: true,
        // What only the copy held is kept by now (keepLacking).
        overwrite: true,
      });
      if (copy.status !== 'busy') break;
      await sleep(250);
    } while (++tries < BUSY_RETRIES);
    if (copy.status !== 'copied') return { ...base, outcome: 'failed', detail: copy.status === 'busy' ? 'the copy lock stayed busy' : copy.reason };
    let status: string;
    try {
      status = await this.commitSync(repo, lock.token, backend, version, checksum, source, { ...log, bytes: copy.bytes, durationMs: copy.ms });
    } finally {
      await copy.release();
    }
    if (status !== 'OK') return { ...base, outcome: 'failed', detail: `the copy was made but not recorded (${status.toLowerCase()})` };
    noteWrite(ctx, repo, backend, version);
    return { ...base, outcome: 'repaired', version };
  }
}
