import { setTimeout as sleep } from 'node:timers/promises';
import type { RefTip } from '../backends/types.js';
import { BackendUnavailableError } from '../errors.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { Held } from '../state/lease.js';
import type { PairLease } from '../state/pair-locks.js';
import type { RepoState } from '../state/repo-state.js';
import { copyRepository, targetContradicts } from './catch-up.js';
import type { ClusterContext } from './context.js';
import { scoped } from './assignment.js';
import { leadership } from './routing.js';
import type { Backend } from './types.js';

type Release = () => Promise<void>;

/** How often a quorum copy retries a pair another githa is copying right now. */
const BUSY_RETRY_MS = 50;

export interface QuorumInput {
  repo: string;
  lock: Held;
  writeId: string;
  target: Backend;
  /** The state read under the lock before the push. */
  state: RepoState;
  /** The target's refs read right after the push (the source cannot move under the write lock). */
  sourceRefs: readonly RefTip[];
  checksum: string;
  needed: number;
  /**
   * Fan-out copies the push did not make (src/cluster/fan-out.ts), tried
   * before any other backend: each with the pair lock it holds since before
   * the push and the commands it may hold part of (CopyRequest.held, .landed).
   */
  front?: readonly FrontCopy[];
  /** Backends not copied to here: fan-out copies made, found off their record, or whose state is unknown. */
  exclude?: ReadonlySet<string>;
  /** Backends the marker names already (the fan-out copies): still named when more are. */
  named?: readonly string[];
}

export interface FrontCopy {
  backend: Backend;
  held: PairLease;
  landed?: readonly RefCommand[] | undefined;
}

export interface QuorumCopies {
  /** The backends the copy reached, once `needed` are made, or none can be any more, or the time is up. */
  readonly settled: Promise<string[]>;
  /** Frees the pair locks of the copies made (after the commit recorded them, or failed). */
  releaseMade(): Promise<void>;
  /** Copies that finish after `settled` are handed to `fn` with their pair lock's release. */
  late(fn: (backend: string, release: Release) => void): void;
}

/**
 * The write-quorum copies of one push (docs/architecture.md "A push" 4):
 * exactly `needed` backends at a time (leaders first: their copy is just this
 * push), each named in the write's marker before its copy starts, so reads
 * avoid every backend that may hold the push before it is acknowledged. A
 * copy that fails gives its turn to the next candidate. The backends not
 * copied to get the push from background replication after the commit.
 * Drifted copies are never overwritten (the verifier reported them).
 */
export function quorumCopies(ctx: ClusterContext, q: QuorumInput): QuorumCopies {
  const front = q.front ?? [];
  // A fan-out copy's pair lock not used by a copy (none started, or not its turn) is freed with the made ones, after the commit.
  const unused = new Map(front.map((f) => [f.backend.id, f.held]));
  const landedOf = new Map(front.map((f) => [f.backend.id, f.landed]));
  const releaseUnused = async (): Promise<void> => {
    const leases = [...unused.values()];
    unused.clear();
    await Promise.all(leases.map((l) => l.lease.release()));
  };
  if (q.needed <= 0) return { settled: Promise.resolve([]), releaseMade: releaseUnused, late: () => {} };
  const { repo, state } = q;
  const { max } = leadership(state.versions);
  const skip = new Set([q.target.id, ...front.map((f) => f.backend.id), ...(q.exclude ?? [])]);
  const queue = [
    ...front.map((f) => f.backend),
    // Only assigned backends are copied to (docs/architecture.md "Replication factor").
    ...scoped(state, ctx.backends.activeBackends())
      .filter((b) => !skip.has(b.id) && ctx.health.isHealthy(b.id) && !state.drift.has(b.id))
      .sort((a, b) => Number(state.versions.get(b.id) === max) - Number(state.versions.get(a.id) === max)),
  ];
  // The version this push will be recorded at (the commit script's max + 1;
  // no other version can rise while the write lock is held). A late copy
  // still running after a later push reached its target must not undo it.
  const version = Math.max(0, ...state.versions.values()) + 1;
  const deadline = performance.now() + ctx.config.replication.quorumTimeoutMs;
  const named: string[] = [...(q.named ?? [])];
  const made: string[] = [];
  const releases = new Map<string, Release>();
  let settledNow = false;
  let underLock = true;
  let onLate: ((backend: string, release: Release) => void) | undefined;
  const lateDone: string[] = [];

  /** Whether the copy was made; its pair lock then stays held (in `releases`) until it is recorded. */
  const copyTo = async (backend: Backend): Promise<boolean> => {
    const source = ctx.backends.client(q.target.id);
    const target = ctx.backends.client(backend.id);
    const landed = landedOf.get(backend.id);
    while (performance.now() < deadline && !q.lock.signal.aborted) {
      // A fan-out copy's own pair lock, on its first attempt (the copy releases it or keeps it, as one it took).
      const held = unused.get(backend.id);
      unused.delete(backend.id);
      try {
        const r = await copyRepository(ctx.pairs, {
          ...(held ? { held } : {}),
          ...(landed ? { landed } : {}),
          repo,
          source,
          target,
          checksum: q.checksum,
          // The refs read after the push stand for the source while the write lock is held; a copy still running after the push returned reads them afresh.
          sourceRefs: underLock ? q.sourceRefs : undefined,
          version,
          signal: q.lock.signal,
          pairLockMs: ctx.config.catchUp.pairLockMs,
          hold: true,
        });
        if (r.status === 'copied') {
          releases.set(backend.id, r.release);
          ctx.observer.quorumCopy('copied');
          return true;
        }
        if (r.status === 'contradicts') {
          ctx.observer.quorumCopy('contradicts');
          await targetContradicts(ctx, repo, backend.id, r);
          return false;
        }
        if (r.status !== 'busy') {
          ctx.observer.quorumCopy('mismatch');
          ctx.log.warn({ repo, backend: backend.id, reason: r.reason }, 'quorum copy did not match');
          return false;
        }
      } catch (err) {
        if (err instanceof BackendUnavailableError) ctx.health.markDown(err.backendId);
        ctx.log.warn({ repo, backend: backend.id, err: (err as Error).message }, 'quorum copy failed');
        ctx.observer.quorumCopy('failed');
        return false;
      }
      await sleep(BUSY_RETRY_MS);
    }
    ctx.observer.quorumCopy('timeout');
    return false;
  };

  const releaseOf = (id: string): Release => {
    const release = releases.get(id) ?? (async () => {});
    releases.delete(id);
    return release;
  };

  const settled = new Promise<string[]>((resolve) => {
    let running = 0;
    const settle = (): void => {
      if (settledNow) return;
      settledNow = true;
      clearTimeout(timer);
      resolve([...made]);
    };
    const timer = setTimeout(settle, ctx.config.replication.quorumTimeoutMs);
    /**
     * Starts copies until `needed` are made or running, naming each target in
     * the marker first. One fill at a time (chained): each names the targets
     * of every earlier one too, and picks count as running before the marker
     * is written, so no fill can settle while another is still starting copies.
     */
    let chain = Promise.resolve();
    const fill = (): void => {
      // fillOnce handles its own failures; this only keeps one unforeseen from ending the chain.
      chain = chain.then(fillOnce).catch(() => {
        if (running === 0) settle();
      });
    };
    const fillOnce = async (): Promise<void> => {
      const next: Backend[] = [];
      while (!settledNow && made.length + running + next.length < q.needed && queue.length > 0) next.push(queue.shift()!);
      if (next.length === 0) {
        if (running === 0) settle();
        return;
      }
      running += next.length;
      // A marker that cannot name the targets (the lock or Redis is gone): no copy may start; the push is then recorded with the copies made, or not at all.
      const fresh = next.map((b) => b.id).filter((id) => !named.includes(id));
      // Fan-out copies are named since before the push: no Redis turn for them.
      const ok = fresh.length === 0 || (await ctx.repos.markCopies(repo, q.lock.token, q.writeId, [...named, ...fresh]).catch(() => false));
      if (!ok || settledNow) {
        running -= next.length;
        if (running === 0) settle();
        return;
      }
      named.push(...fresh);
      for (const b of next) {
        const finished = (done: boolean): void => {
          running--;
          if (done && !settledNow) made.push(b.id);
          else if (done) {
            if (onLate) onLate(b.id, releaseOf(b.id));
            else lateDone.push(b.id);
          }
          if (made.length >= q.needed) settle();
          else fill();
        };
        copyTo(b).then(finished, () => finished(false));
      }
    };
    fill();
  });

  return {
    settled,
    async releaseMade() {
      await Promise.all([...made.map((id) => releaseOf(id)()), releaseUnused()]);
    },
    late(fn) {
      underLock = false;
      onLate = fn;
      for (const b of lateDone.splice(0)) fn(b, releaseOf(b));
    },
  };
}
