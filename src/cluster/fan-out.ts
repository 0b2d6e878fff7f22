import type { RefTip } from '../backends/types.js';
import { BackendUnavailableError } from '../errors.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { Held } from '../state/lease.js';
import type { PairLease } from '../state/pair-locks.js';
import type { RepoState } from '../state/repo-state.js';
import { copyRepository, targetContradicts } from './catch-up.js';
import { refsChecksum } from './checksum.js';
import type { ClusterContext } from './context.js';
import type { FrontCopy } from './quorum.js';
import { scoped, scopedState, writeQuorumOf } from './assignment.js';
import { leadership } from './routing.js';
import type { Backend, ForwardResult, WriteRequest } from './types.js';
import { checksumBefore } from './write-check.js';

/*
 * Fan-out writes (docs/architecture.md "Write quorum"): the transport sends a
 * push to the target and to up to writeQuorum − 1 copies at once. This file
 * chooses those copies (under the write lock, each with its pair lock taken
 * before a byte goes and held until the write's commit or abort is recorded)
 * and judges, by listing, what each one holds after the push.
 */

/** A fan-out copy: its backend, its pair lock, and the checksum its record gives it before the push. */
export interface FanOutCopy {
  readonly backend: Backend;
  readonly lease: PairLease;
  readonly recorded: string;
  readonly version: number;
}

/**
 * What a fan-out copy holds after the push:
 * - `unchanged`: its recorded refs (it was cut, its report updated nothing, or its listing says so);
 * - `same`: the target's refs after the push (made: recorded with the target, no relay);
 * - `partial`: its recorded refs plus some of the push's commands (a relay from the target brings it to the outcome);
 * - `off-record`: anything else (drifted and repaired: the repair keeps what only it holds);
 * - `unknown`: it could not be listed (it died, or did not answer within replication.quorumTimeoutMs).
 */
export type CopyVerdict =
  | { kind: 'unchanged' }
  | { kind: 'same'; live: string }
  | { kind: 'partial'; live: string }
  | { kind: 'off-record'; live: string }
  | { kind: 'unknown'; why: string };

/** What a copy's listing gave: its refs, or why there are none; 'unchanged' when no listing was needed. */
type Listed = RefTip[] | 'unchanged' | { why: string };

/**
 * The copies a push fans out to: up to writeQuorum − 1 enabled, healthy
 * leaders other than the target that are neither drifted nor suspect, hold
 * the target's recorded checksum (so the client's old ids and thin pack fit
 * them) and have an endpoint for the client's transport, in the order
 * quorumCopies would pick them. Each one's pair lock is taken (and its
 * standing checked) before the push; a busy one is not fanned out to.
 */
export async function chooseFanOut(ctx: ClusterContext, req: WriteRequest, lock: Held, state: RepoState, target: Backend): Promise<FanOutCopy[]> {
  // Only assigned backends take copies (docs/architecture.md "Replication factor").
  const need = writeQuorumOf(ctx.config.replication, state) - 1;
  const pre = state.checksums.get(target.id) ?? '';
  if (!ctx.config.replication.fanOut || need <= 0 || pre === '') return [];
  const { max } = leadership(scopedState(state).versions, new Set(state.drift.keys()));
  const candidates = scoped(state, ctx.backends.activeBackends())
    .filter(
      (b) =>
        b.id !== target.id &&
        ctx.health.isHealthy(b.id) &&
        !state.drift.has(b.id) &&
        !state.suspect.has(b.id) &&
        state.versions.get(b.id) === max &&
        state.checksums.get(b.id) === pre &&
        (req.accepts?.(b) ?? true),
    );
  const take = async (backend: Backend): Promise<FanOutCopy | undefined> => {
    const lease = await ctx.pairs.acquire(req.repo, backend.id, ctx.config.catchUp.pairLockMs, lock.signal).catch(() => null);
    if (!lease) return undefined;
    const s = lease.standing;
    // Its record moved between the state read and the lock (a repair, a drift): not a leader holding the target's refs.
    if (s.writing || s.version !== max || s.checksum !== pre) {
      await lease.lease.release();
      return undefined;
    }
    return { backend, lease, recorded: pre, version: max };
  };
  // The pair locks are taken in parallel; one busy (a catch-up, a repair, the verifier) gives its place to the next candidate.
  const chosen: FanOutCopy[] = [];
  while (chosen.length < need && candidates.length > 0 && !lock.signal.aborted) {
    const round = await Promise.all(candidates.splice(0, need - chosen.length).map(take));
    chosen.push(...round.filter((c): c is FanOutCopy => c !== undefined));
  }
  return chosen;
}

/** The fan-out copies of one write session, from the push until their pair locks go. */
export class FanOut {
  private readonly owned: Map<string, PairLease>;
  /** Copies the transport dropped for taking no bytes (replication.fanOutStallMs): not tried again by this push's relays. */
  private readonly stalled = new Set<string>();
  /**
   * Copies that took the push and whose answer did not come whole: their
   * receive-pack may still change their refs after they are listed, so a listing is no proof they stay as listed.
   */
  private readonly unsettled = new Set<string>();

  constructor(
    private readonly ctx: ClusterContext,
    private readonly req: WriteRequest,
    private readonly lock: Held,
    readonly copies: readonly FanOutCopy[],
  ) {
    this.owned = new Map(copies.map((c) => [c.backend.id, c.lease]));
  }

  get ids(): string[] {
    return this.copies.map((c) => c.backend.id);
  }

  get backends(): Backend[] {
    return this.copies.map((c) => c.backend);
  }

  /**
   * Starts listing every copy the push may have changed, right after the
   * forward (in parallel with the target's listing). A copy the transport
   * reports cut, or whose whole answer updated no ref, is unchanged (the same
   * trust as the target's report); no `copies` map means nothing reached any.
   */
  list(result: ForwardResult | undefined): Map<string, Promise<Listed>> {
    const listings = new Map<string, Promise<Listed>>();
    for (const c of this.copies) {
      const f = result?.copies?.get(c.backend.id);
      const updated = f?.report?.unpackOk ? f.report.refs.some((r) => r.ok) : false;
      // No map at all: a transport without fan-out sent the copies nothing. A map without this copy is not trusted: it is listed.
      const unsent = result !== undefined && result.copies === undefined;
      const surely = unsent || (f !== undefined && (f.ending === 'cut' || (f.ending === 'complete' && f.report !== undefined && !updated)));
      if (f?.ending === 'cut' && f.reason === 'stalled') this.stalled.add(c.backend.id);
      if (result !== undefined && !surely && (f === undefined || f.ending === 'unknown')) this.unsettled.add(c.backend.id);
      listings.set(c.backend.id, surely ? Promise.resolve('unchanged') : this.listOne(c.backend));
    }
    return listings;
  }

  /** One copy's refs, bounded by the write lock and replication.quorumTimeoutMs. */
  private async listOne(backend: Backend): Promise<Listed> {
    const { ctx, req } = this;
    const signal = AbortSignal.any([this.lock.signal, AbortSignal.timeout(ctx.config.replication.quorumTimeoutMs)]);
    const stop = new Promise<Listed>((resolve) => {
      const done = (): void => resolve({ why: signal.aborted && this.lock.signal.aborted ? 'the write lock was lost' : 'no listing in time' });
      if (signal.aborted) done();
      else signal.addEventListener('abort', done, { once: true });
    });
    const listed = ctx.backends
      .client(backend.id)
      .listRefs(req.repo, signal, req.lent)
      .then(
        (refs): Listed => refs ?? { why: 'the repository is missing' },
        (err: unknown): Listed => {
          if (err instanceof BackendUnavailableError) ctx.health.markDown(backend.id);
          return { why: (err as Error).message };
        },
      );
    return Promise.race([listed, stop]);
  }

  /**
   * Each copy's verdict. `post`: the target's checksum after a push that is
   * to be committed (a copy holding it is made); absent when the outcome is
   * unchanged (a copy that took any of the push is then `partial`).
   */
  async judge(listings: Map<string, Promise<Listed>>, commands: readonly RefCommand[], post?: string): Promise<Map<string, CopyVerdict>> {
    const verdicts = new Map<string, CopyVerdict>();
    for (const c of this.copies) {
      const listed = await (listings.get(c.backend.id) ?? Promise.resolve<Listed>('unchanged'));
      let v: CopyVerdict;
      if (listed === 'unchanged') v = { kind: 'unchanged' };
      else if (!Array.isArray(listed)) v = { kind: 'unknown', why: listed.why };
      // An outcome that keeps nothing cannot rest on such a copy's listing: the push may still land on it after.
      else if (post === undefined && commands.length > 0 && this.unsettled.has(c.backend.id)) v = { kind: 'unknown', why: 'its answer did not come whole: its receive-pack may still land the push' };
      else {
        const live = refsChecksum(listed);
        if (post !== undefined && live === post) v = { kind: 'same', live };
        else if (live === c.recorded) v = { kind: 'unchanged' };
        else if (commands.length > 0 && checksumBefore(listed, commands) === c.recorded) v = { kind: 'partial', live };
        else v = { kind: 'off-record', live };
      }
      verdicts.set(c.backend.id, v);
      this.ctx.observer.quorumCopy(`fan-out-${v.kind === 'same' ? 'made' : v.kind}`);
      if (v.kind === 'unknown' || v.kind === 'off-record') {
        this.ctx.log.warn({ repo: this.req.repo, backend: c.backend.id, verdict: v.kind, ...(v.kind === 'unknown' ? { why: v.why } : { live: v.live }) }, 'fan-out copy not as the push left the target');
      }
    }
    return verdicts;
  }

  /**
   * The copies not made, for the fallback quorum copies (src/cluster/quorum.ts):
   * those holding part of the push first (they must reach the outcome), then
   * the unchanged ones. Their pair locks go with them. A copy dropped as
   * stalled is not handed on: a relay into it would wait on the same slow
   * backend until replication.quorumTimeoutMs (its lock goes at settle()).
   */
  handOff(verdicts: ReadonlyMap<string, CopyVerdict>, landed: readonly RefCommand[]): FrontCopy[] {
    const pick = (kind: CopyVerdict['kind']): FrontCopy[] =>
      this.copies
        .filter((c) => verdicts.get(c.backend.id)?.kind === kind && !this.stalled.has(c.backend.id))
        .map((c) => {
          this.owned.delete(c.backend.id);
          return { backend: c.backend, held: c.lease, landed };
        });
    return [...pick('partial'), ...pick('unchanged')];
  }

  /**
   * Brings a copy that took part of a push the target did not keep back to
   * the target's refs (`checksum`): a relay from the target with the push's
   * commands allowed (CopyRequest.landed). Its pair lock stays held.
   */
  async restore(id: string, target: Backend, checksum: string, landed: readonly RefCommand[], sourceRefs: readonly RefTip[] | undefined): Promise<boolean> {
    const { ctx, req } = this;
    const lease = this.owned.get(id);
    if (!lease) return false;
    try {
      const r = await copyRepository(ctx.pairs, {
        repo: req.repo,
        source: ctx.backends.client(target.id),
        target: ctx.backends.client(id),
        checksum,
        ...(sourceRefs ? { sourceRefs } : {}),
        signal: this.lock.signal,
        pairLockMs: ctx.config.catchUp.pairLockMs,
        hold: true,
        held: lease,
        landed,
      });
      if (r.status === 'copied') return true;
      ctx.log.warn({ repo: req.repo, backend: id, status: r.status }, 'fan-out copy not brought back to the target\'s refs');
    } catch (err) {
      if (err instanceof BackendUnavailableError) ctx.health.markDown(err.backendId);
      ctx.log.warn({ repo: req.repo, backend: id, err: (err as Error).message }, 'fan-out copy not brought back to the target\'s refs');
    }
    // The copy released its pair lock (a failed copy does): nothing left to free.
    this.owned.delete(id);
    return false;
  }

  /**
   * Once the write's commit or abort is recorded (no marker: MARK_DRIFT
   * refuses while one exists): copies found holding more than their record
   * explains are drifted and repaired, then every pair lock still held goes.
   */
  async settle(verdicts: ReadonlyMap<string, CopyVerdict> | undefined, drift: ReadonlySet<CopyVerdict['kind']> = new Set(['off-record'])): Promise<void> {
    for (const c of this.copies) {
      const v = verdicts?.get(c.backend.id);
      if (!v || !drift.has(v.kind) || !('live' in v)) continue;
      await targetContradicts(this.ctx, this.req.repo, c.backend.id, { live: v.live, recorded: c.recorded, version: c.version }).catch((err: unknown) => {
        this.ctx.log.warn({ repo: this.req.repo, backend: c.backend.id, err: (err as Error).message }, 'could not record a fan-out copy found off its record');
      });
    }
    await this.release();
  }

  /** Frees the pair locks this session still holds (not handed to the fallback copies). */
  async release(): Promise<void> {
    const leases = [...this.owned.values()];
    this.owned.clear();
    await Promise.all(leases.map((l) => l.lease.release()));
  }
}
