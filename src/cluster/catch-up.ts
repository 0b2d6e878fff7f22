import type { BackendClient, RefTip } from '../backends/types.js';
import { DEFAULTS } from '../config/defaults.js';
import { AGENT } from '../version.js';
import { BackendAuthRequiredError, BackendProtocolError, BackendUnavailableError, CatchUpError, ClusterStateUnavailableError, CopyTargetMissingError, LockLostError, RemoteFatalError } from '../errors.js';
import { ZERO_OID, type RefCommand } from '../protocol/receive-pack-request.js';
import type { PairLease, PairLocks } from '../state/pair-locks.js';
import type { CommitCatchUpResult } from '../state/repository-store.js';
import { refsChecksum } from './checksum.js';
import type { ClusterContext } from './context.js';
import type { CatchUpFailure } from './observer.js';
import { checksumBefore } from './write-check.js';

export type CatchUpOutcome =
  /** The target now holds `version` and it is recorded. */
  | { status: 'ok'; commands: number; bytes: number }
  /** Another githa is copying this pair right now. */
  | { status: 'busy' }
  /** The copy was made but not recorded: the target is already current, or the source moved on. */
  | { status: 'not-recorded'; reason: string };

/** Capabilities githa asks of the stale backend's receive-pack (docs/architecture.md "Catch-up relay"). */
const WANTED_CAPABILITIES = ['report-status', 'atomic', 'delete-refs', 'ofs-delta', 'quiet'];

/**
 * The commands that turn `have` into `want`: create, update (with the
 * advertised old id, so the push is a compare-and-swap) or delete. HEAD is
 * not a ref the protocol can set, and ".have" lines (tips of an alternate
 * object store the target borrows from) are not refs at all.
 */
export function planCommands(want: readonly RefTip[], have: readonly RefTip[]): RefCommand[] {
  const current = new Map(have.filter((r) => r.name !== 'HEAD' && r.name !== '.have').map((r) => [r.name, r.oid]));
  const commands: RefCommand[] = [];
  const wanted = new Set<string>();
  for (const r of want) {
    if (r.name === 'HEAD') continue;
    wanted.add(r.name);
    const old = current.get(r.name);
    if (old !== r.oid) commands.push({ oldOid: old ?? ZERO_OID, newOid: r.oid, ref: r.name });
  }
  for (const [name, oid] of current) if (!wanted.has(name)) commands.push({ oldOid: oid, newOid: ZERO_OID, ref: name });
  return commands;
}

export interface CopyRequest {
  repo: string;
  source: BackendClient;
  target: BackendClient;
  /** The checksum the source must have, and the target must have afterwards. */
  checksum: string;
  signal?: AbortSignal | undefined;
  /** Lease of the per-(repository, target) copy lock; renewed while the copy runs. */
  pairLockMs?: number;
  /**
   * The version being copied, when it is recorded already (a catch-up): the
   * copy is skipped when the target records that version or a later one by
   * the time githa holds the pair lock. The state a copy was planned from can
   * be old: copying it then would turn a leader's newer refs back.
   */
  version?: number;
  /**
   * Keep the pair lock after a successful copy until the caller has recorded
   * it and calls release(): a copy on a backend but not yet in Redis looks
   * stale, and no catch-up planned from older state may overwrite it.
   */
  hold?: boolean;
  /**
   * The source's refs, when the caller has just read them and they cannot
   * have moved since (a write's quorum copies, under the write lock): saves
   * one request to the source.
   */
  sourceRefs?: readonly RefTip[];
  /**
   * The target's refs may differ from its record and are overwritten: a
   * repair or an operator's sync, after the commits only the target holds
   * were kept (src/cluster/kept.ts). Otherwise a target that does not hold
   * its recorded refs is never overwritten (docs/architecture.md "Verified
   * copies"): the copy answers `contradicts`.
   */
  overwrite?: boolean;
  /**
   * A fan-out copy that took part (or all) of a push the outcome does not
   * keep as it stands on it (docs/architecture.md "Write quorum"): the target
   * is also accepted when its refs with these commands undone are its recorded
   * ones. Anything else off its record still answers `contradicts`.
   */
  landed?: readonly RefCommand[];
  /**
   * The pair lock, when the caller holds it already (a fan-out copy's, taken
   * before the push): used instead of acquiring one, and released like one
   * the copy took (kept only on a `hold` copy that succeeded).
   */
  held?: PairLease;
}

/** A copy recorded as a catch-up: `checksum` and `version` are the source's, noted before copying (docs/operations.md "Redis lost or restored from an old snapshot"). */
export interface CatchUpRequest extends CopyRequest {
  version: number;
  /** The target is a move's, outside the assignment on purpose (COMMIT_CATCH_UP records no other unassigned target). */
  moveTarget?: boolean;
}

export type CopyOutcome =
  /** `release` frees the pair lock (a no-op unless `hold` kept it). */
  | { status: 'copied'; commands: number; bytes: number; ms: number; release: () => Promise<void> }
  | { status: 'busy' }
  /** The target already records `version` or later, or is the backend of a write in progress: nothing was copied. */
  | { status: 'current'; code: 'current' | 'writing'; reason: string }
  /** The source or the target did not hold the expected checksum (it moved on, or changed meanwhile). */
  | { status: 'mismatch'; reason: string }
  /** The target does not hold its recorded refs (`recorded` at `version`; it holds `live`): nothing was copied, it is repaired instead. */
  | { status: 'contradicts'; reason: string; live: string; recorded: string; version: number };

/**
 * Copies one repository from `source` to `target` through githa itself, with
 * no disk and no git subprocess (docs/architecture.md "Catch-up relay"): ls-refs on the source,
 * the target's receive-pack advertisement, one v2 fetch (want the source's
 * tips, have the target's, done) whose pack is streamed straight into one
 * receive-pack. Succeeds only when the target ends with `checksum`. Records
 * nothing: callers commit (catch-up, or the write-quorum commit).
 */
export async function copyRepository(pairs: PairLocks, req: CopyRequest): Promise<CopyOutcome> {
  const { repo, source, target, checksum } = req;
  const ttlMs = req.pairLockMs ?? DEFAULTS.catchUp.pairLockMs;
  const acquired = req.held ?? (await pairs.acquire(repo, target.id, ttlMs, req.signal));
  if (!acquired) return { status: 'busy' };
  const { lease, standing } = acquired;
  const { signal } = lease;
  const started = performance.now();
  let keep = false;
  try {
    // Under the pair lock only pair-lock holders change a stale target: what
    // Redis records for it now (read as the lock was taken) is what the copy
    // must not go behind.
    if (standing.writing) return { status: 'current', code: 'writing', reason: `${target.id} takes a write` };
    if (req.version !== undefined && standing.version >= req.version) {
      return { status: 'current', code: 'current', reason: `${target.id} is at version ${standing.version} already` };
    }
    const sourceRefs = req.sourceRefs ?? (await source.listRefs(repo, signal));
    if (!sourceRefs) throw new CatchUpError(`${repo} is missing on ${source.id}, a leader`, { reason: 'source-missing' });
    if (refsChecksum(sourceRefs) !== checksum) {
      return { status: 'mismatch', reason: `${source.id} no longer matches the checksum to copy` };
    }
    const adv = await target.receivePackAdvertisement(repo, signal);
    // Created by the fill where githa may manage the backend (src/cluster/fill.ts), outside this pair lock: the write lock comes first.
    if (!adv) throw new CopyTargetMissingError(repo, target.id);

    // The fence (docs/architecture.md "Catch-up relay"): the lock is still
    // ours and the target's record has not moved since the lock was taken, so
    // the advertisement just read is the target as recorded. A pause before
    // this check fails it; a pause after it fails git's compare-and-swap on
    // the old ids read above.
    const fenced = await pairs.fence(repo, target.id, lease, ttlMs);
    if (!fenced) throw new CatchUpError(`the copy lock on ${repo} → ${target.id} was lost before the push`, { reason: 'lock-lost' });
    if (fenced.writing) return { status: 'current', code: 'writing', reason: `${target.id} takes a write` };
    if (fenced.version !== standing.version) {
      return { status: 'mismatch', reason: `${target.id}'s record moved from version ${standing.version} to ${fenced.version} during the copy` };
    }
    // Verify, don't trust: a target off its record (a divergent commit, a restore) may hold what nobody else has; it is repaired, never overwritten blind.
    if (req.overwrite !== true && fenced.checksum !== '') {
      const live = refsChecksum(adv.refs.filter((r) => r.name !== '.have'));
      // githa's own earlier copy that could not be recorded (Standing.unrecorded) is not a change from outside.
      const explained = req.landed !== undefined && req.landed.length > 0 && checksumBefore(adv.refs.filter((r) => r.name !== '.have'), req.landed) === fenced.checksum;
      if (live !== fenced.checksum && live !== fenced.unrecorded && !explained) {
        return { status: 'contradicts', reason: `${target.id} does not hold its recorded refs`, live, recorded: fenced.checksum, version: fenced.version };
      }
    }
    signal.throwIfAborted();
    const commands = planCommands(sourceRefs, adv.refs);
    let bytes = 0;
    if (commands.length > 0) {
      const caps = WANTED_CAPABILITIES.filter((c) => adv.capabilities.includes(c));
      if (!caps.includes('report-status')) throw new CatchUpError(`${target.id} does not offer report-status`, { reason: 'unsupported' });
      const deletes = commands.some((c) => c.newOid === ZERO_OID);
      if (deletes && !caps.includes('delete-refs')) throw new CatchUpError(`${target.id} does not allow deleting refs`, { reason: 'unsupported' });
      const wants = [...new Set(commands.filter((c) => c.newOid !== ZERO_OID).map((c) => c.newOid))];
      const haves = [...new Set(adv.refs.map((r) => r.oid))];
      let pack: AsyncIterable<Buffer> | null = null;
      if (wants.length > 0) {
        const counted = async function* (): AsyncGenerator<Buffer> {
          for await (const chunk of source.fetchPack(repo, wants, haves, signal)) {
            bytes += chunk.length;
            yield chunk;
          }
        };
        pack = counted();
      }
      const report = await target.pushPack(repo, commands, [...caps, `agent=${AGENT}`], pack, signal);
      const failed = report.refs.filter((r) => !r.ok);
      if (!report.unpackOk || failed.length > 0) {
        const why = report.unpackOk ? failed.map((r) => `${r.ref}: ${r.reason ?? 'rejected'}`).join(', ') : `unpack ${report.unpackError ?? 'failed'}`;
        throw new CatchUpError(`${target.id} refused the copy of ${repo}: ${why}`, { reason: 'refused' });
      }
    }
    const after = await target.listRefs(repo, signal);
    if (!after || refsChecksum(after) !== checksum) {
      return { status: 'mismatch', reason: `${target.id} changed while it was being copied to` };
    }
    keep = req.hold === true;
    const release = keep ? () => lease.release() : async () => {};
    return { status: 'copied', commands: commands.length, bytes, ms: Math.round(performance.now() - started), release };
  } finally {
    if (!keep) await lease.release();
  }
}

/**
 * Catches a stale backend up from a leader: the copy above, then the
 * target's version is recorded only when its new checksum equals the
 * source's recorded one, and only while that version is still recorded.
 */
export async function catchUp(ctx: CopyDeps, req: CatchUpRequest): Promise<CatchUpOutcome> {
  const { observer } = ctx;
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  const outcome = await catchUpOnce(ctx, req).catch((err: unknown) => {
    observer.catchUp({ outcome: 'failed', seconds: seconds(), bytes: 0, reason: failureReason(err) });
    throw err;
  });
  if (outcome.status === 'not-recorded') {
    // The record's refusals keep their word; a copy that did not match carries its explanation instead (catchUpOnce).
    const reason = NOT_RECORDED.has(outcome.reason) ? (outcome.reason as CatchUpFailure) : 'mismatch';
    observer.catchUp({ outcome: outcome.status, seconds: seconds(), bytes: 0, reason });
  } else {
    observer.catchUp({ outcome: outcome.status, seconds: seconds(), bytes: outcome.status === 'ok' ? outcome.bytes : 0 });
  }
  return outcome;
}

const NOT_RECORDED: ReadonlySet<string> = new Set<CatchUpFailure>(['current', 'writing', 'moved', 'unassigned', 'contradicts']);

/** A failed catch-up's reason, from its error's class (src/errors.ts): a bounded set for the metrics. */
export function failureReason(err: unknown): CatchUpFailure {
  if (err instanceof CatchUpError) return err.reason;
  if (err instanceof BackendUnavailableError) return 'backend-unavailable';
  if (err instanceof BackendProtocolError || err instanceof BackendAuthRequiredError || err instanceof RemoteFatalError) return 'backend-protocol';
  if (err instanceof ClusterStateUnavailableError) return 'state-unavailable';
  if (err instanceof LockLostError) return 'lock-lost';
  if (err instanceof Error && err.name === 'AbortError') return 'aborted';
  return 'other';
}

/** What a catch-up needs of the cluster. */
export type CopyDeps = Pick<ClusterContext, 'pairs' | 'repos' | 'log' | 'observer' | 'repairs'>;

/** A copy's target found off its record: marked drifted (guarded by MARK_DRIFT) and repaired, which keeps what only it holds. */
export async function targetContradicts(ctx: Pick<ClusterContext, 'repos' | 'log' | 'repairs'>, repo: string, target: string, c: { live: string; recorded: string; version: number }): Promise<void> {
  const status = await ctx.repos.markDrift(repo, target, c.version, c.recorded, c.live).catch(() => 'failed' as const);
  if (status === 'ok') ctx.log.error({ repo, backend: target, version: c.version, recorded: c.recorded, live: c.live }, 'COPY CONTRADICTS RECORD: a copy into it found it off its record; not overwritten, it leads no more and is repaired');
  if (status === 'ok' || status === 'moved') ctx.repairs.schedule(repo, target, 'a copy found it off its record');
}

async function catchUpOnce(ctx: CopyDeps, req: CatchUpRequest): Promise<CatchUpOutcome> {
  const { repo, source, target, version, checksum } = req;
  // The pair lock is held until the copy is recorded (see CopyRequest.hold).
  const copy = await copyRepository(ctx.pairs, { ...req, hold: true });
  if (copy.status === 'busy') return copy;
  // The same words as the record's refusals (COMMIT_CATCH_UP): 'current', 'writing', or why the copy did not match.
  if (copy.status === 'current') return { status: 'not-recorded', reason: copy.code };
  if (copy.status === 'contradicts') {
    await targetContradicts(ctx, repo, target.id, copy);
    return { status: 'not-recorded', reason: 'contradicts' };
  }
  if (copy.status !== 'copied') return { status: 'not-recorded', reason: copy.reason };
  let recorded: CommitCatchUpResult;
  try {
    recorded = await ctx.repos.commitCatchUp(repo, { target: target.id, version, checksum, source: source.id, moveTarget: req.moveTarget, log: { bytes: copy.bytes, durationMs: copy.ms } });
  } finally {
    await copy.release();
  }
  ctx.log.info({ repo, source: source.id, target: target.id, version, commands: copy.commands, bytes: copy.bytes, ms: copy.ms, status: recorded.kind.toUpperCase() }, 'catch-up');
  if (recorded.kind !== 'ok') return { status: 'not-recorded', reason: recorded.kind };
  return { status: 'ok', commands: copy.commands, bytes: copy.bytes };
}
