/**
 * Repair without loss for `githa thaw R --demote B` (docs/architecture.md
 * "Kept commits"): a demoted copy is stale, and replication overwrites it
 * with the leaders' state. Before that, its tips the leaders lack are kept
 * on a leader under refs/githa/kept/B/<time>/… (src/cluster/kept.ts), as a
 * repair does. B's copy lock is held from before the demotion until the
 * commits are kept, so no catch-up overwrites B in between. A copy that
 * cannot be reached, or a repository left with no leader, keeps nothing (the
 * prompt says what is lost).
 */
import type { RefTip } from '../../backends/types.js';
import { BackendUnavailableError } from '../../errors.js';
import { refsChecksum } from '../../cluster/checksum.js';
import { keepLacking, type KeepResult } from '../../cluster/kept.js';
import { leadership } from '../../cluster/routing.js';
import type { PairLease } from '../../state/pair-locks.js';
import type { Context } from './context.js';

/** How long the demotion waits for a copy into B that another githa runs. */
const BUSY_WAIT_MS = 10_000;

export interface DemoteKeeper {
  /** Keeps what only B holds on a leader, after the demotion; none when B was unreachable or nothing lacked. */
  keep(): Promise<KeepResult['kept']>;
  release(): Promise<void>;
}

/** Takes B's copy lock and reads B's refs, before the demotion. */
export async function holdDemoted(ctx: Context, repo: string, backend: string): Promise<DemoteKeeper> {
  const cctx = ctx.parts.cluster.ctx;
  const ttl = cctx.config.catchUp.pairLockMs;
  let held: PairLease | null = null;
  const until = performance.now() + BUSY_WAIT_MS;
  while (!(held = await cctx.pairs.acquire(repo, backend, ttl)) && performance.now() < until) await new Promise((r) => setTimeout(r, 250));
  let fromRefs: RefTip[] | null = null;
  try {
    fromRefs = held ? await cctx.backends.client(backend).listRefs(repo, held.lease.signal) : null;
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
  }
  const release = async (): Promise<void> => {
    await held?.lease.release();
  };
  const keep = async (): Promise<KeepResult['kept']> => {
    if (!held || !fromRefs || fromRefs.length === 0) return [];
    const refs = fromRefs;
    return cctx.writeLocks.withLock(repo, async (lock) => {
      const state = await cctx.repos.read(repo);
      const { leaders } = leadership(state.versions, new Set(state.drift.keys()));
      for (const leader of leaders.filter((b) => b !== backend && cctx.backends.isEnabled(b))) {
        const leaderRefs = await cctx.backends.client(leader).listRefs(repo, lock.signal).catch(() => null);
        if (!leaderRefs || refsChecksum(leaderRefs) !== state.checksums.get(leader)) continue;
        return (await keepLacking(cctx, { repo, lock, state, leader, leaderRefs, from: backend, fromRefs: refs })).kept;
      }
      return [];
    });
  };
  return { keep, release };
}
