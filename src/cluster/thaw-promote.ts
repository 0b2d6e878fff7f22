/**
 * `githa thaw R --promote B` (docs/cli.md): only while githa cannot tell
 * which copy is right (frozen as ambiguous, or no leader that is not
 * drifted), B's live copy becomes the only leader above everything recorded,
 * the freeze is lifted, and every other copy is overwritten by replication.
 * With leaders githa trusts it would throw their pushes away: refused.
 *
 * Planning is pure; applying takes narrow collaborators (see thaw.ts). B's
 * refs are read again under the write lock: what the record says must be
 * what B holds.
 */
import { BackendUnavailableError, CatchUpError } from '../errors.js';
import type { BackendClient, RefTip } from '../backends/types.js';
import type { OperatorStore } from '../state/operator-store.js';
import type { FreezeReason, RepoState } from '../state/repo-state.js';
import { refsChecksum } from './checksum.js';
import { keepCommands, lackingTips, pushKept, refusedKeeps } from './kept.js';
import { leadership } from './routing.js';
import type { RepoLock } from './thaw.js';

/** Why --promote is refused: under maintenance, or leaders githa trusts exist. */
export type PromoteRefusal = { kind: 'maintenance'; detail: string } | { kind: 'unambiguous'; max: number; leaders: string[] };

export interface PromotePlan {
  repo: string;
  backend: string;
  /** B's refs as read for the prompt, and their checksum. */
  checksum: string;
  /** B's refs, HEAD not counted. */
  refCount: number;
  /** The version B gets: above everything recorded. */
  version: number;
  /** The freeze that is lifted, if any. */
  lifts: FreezeReason | undefined;
}

/** Another backend's copy, for the prompt: what B's refs overwrite there. */
export type OtherCopy = { backend: string; status: 'unreachable' } | { backend: string; status: 'missing' } | { backend: string; status: 'copy'; refs: RefTip[] };

/** A tip of another copy that B lacked, kept on B under refs/githa/kept/<from>/… before B was promoted. */
export interface KeptOnPromote {
  ref: string;
  original: string;
  oid: string;
  from: string;
}

export type PromoteResult =
  | { status: 'promoted'; version: number; kept: KeptOnPromote[]; checksum: string }
  /** B's refs changed since the prompt: nothing was changed. */
  | { status: 'changed' }
  /** Leaders appeared meanwhile (the script re-checks): nothing was changed. */
  | { status: 'unambiguous' }
  | { status: 'maintenance' }
  | { status: 'lock-lost' };

export interface PromoteParts extends RepoLock {
  ops: Pick<OperatorStore, 'promote'>;
  /** B's refs now (the caller decides what an unreachable B or a missing copy means). */
  readRefs(backend: string): Promise<RefTip[]>;
  noteWrite(repo: string, backend: string, version: number): Promise<void>;
  /** Under the lock, before the script: keeps the other copies' tips B lacks on B (keepOnPromoted); none when absent. */
  keepOthers?(repo: string, backend: string): Promise<KeptOnPromote[]>;
}

/**
 * Repair without loss for `--promote B` (docs/architecture.md "Kept
 * commits"): every other reachable copy's tips that B lacks are pushed to B
 * under refs/githa/kept/<copy>/<time>/… before B's copy becomes the only
 * leader and replication overwrites the others. B is not recorded yet, so
 * this is a plain push to B: the promote then records B's refs with them.
 * A copy that cannot be reached cannot be kept (the prompt names it).
 */
export async function keepOnPromoted(repo: string, backend: string, others: readonly string[], client: (id: string) => BackendClient, at = new Date()): Promise<KeptOnPromote[]> {
  const onto = client(backend);
  const kept: KeptOnPromote[] = [];
  for (const id of others) {
    if (id === backend) continue;
    let fromRefs: RefTip[] | null;
    try {
      fromRefs = await client(id).listRefs(repo);
    } catch (err) {
      if (err instanceof BackendUnavailableError) continue;
      throw err;
    }
    if (!fromRefs) continue;
    const lacking = await lackingTips(repo, onto, (await onto.listRefs(repo)) ?? [], fromRefs);
    if (lacking.length === 0) continue;
    const commands = keepCommands(id, at, lacking);
    const { report } = await pushKept(repo, client(id), onto, commands);
    const refused = refusedKeeps(report, commands);
    if (refused !== '') throw new CatchUpError(`could not keep ${id}'s commits of ${repo} on ${backend} (${refused}); nothing was promoted`);
    kept.push(...lacking.map((c, i) => ({ ref: commands[i]!.ref, original: c.name, oid: c.oid, from: id })));
  }
  return kept;
}

/** undefined when `state` allows --promote; else why not. */
export function promoteRefusal(state: RepoState): PromoteRefusal | undefined {
  if (state.frozen?.reason === 'maintenance') return { kind: 'maintenance', detail: state.frozen.detail };
  if (state.frozen?.reason === 'ambiguous') return undefined;
  const { max, leaders } = leadership(state.versions, new Set(state.drift.keys()));
  if (leaders.length === 0) return undefined;
  return { kind: 'unambiguous', max, leaders: [...leaders].sort() };
}

/** What promoting B (whose refs are `refs`) changes. */
export function planPromote(repo: string, backend: string, state: RepoState, refs: readonly RefTip[]): PromotePlan {
  return {
    repo,
    backend,
    checksum: refsChecksum(refs),
    refCount: refs.filter((r) => r.name !== 'HEAD').length,
    version: leadership(state.versions).max + 1,
    lifts: state.frozen?.reason,
  };
}

/** Every other backend's copy, in the order given; an unreachable one is named, not fatal. */
export async function otherCopies(
  backend: string,
  backends: readonly string[],
  listRefs: (backend: string) => Promise<RefTip[] | null>,
): Promise<OtherCopy[]> {
  const out: OtherCopy[] = [];
  for (const id of backends) {
    if (id === backend) continue;
    let refs: RefTip[] | null;
    try {
      refs = await listRefs(id);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      out.push({ backend: id, status: 'unreachable' });
      continue;
    }
    out.push(refs ? { backend: id, status: 'copy', refs } : { backend: id, status: 'missing' });
  }
  return out;
}

/** Under the write lock: B's refs again (unchanged since the prompt), then the guarded script. */
export async function applyPromote(plan: PromotePlan, user: string, parts: PromoteParts): Promise<PromoteResult> {
  const { repo, backend } = plan;
  let kept: KeptOnPromote[] = [];
  let checksum = plan.checksum;
  const r = await parts.withLock(repo, async (token) => {
    if (refsChecksum(await parts.readRefs(backend)) !== plan.checksum) return undefined;
    kept = (await parts.keepOthers?.(repo, backend)) ?? [];
    // B now holds the kept refs too: its record is what it holds.
    if (kept.length > 0) checksum = refsChecksum(await parts.readRefs(backend));
    return parts.ops.promote(repo, token, backend, checksum, { user, refs: plan.refCount, ...(kept.length > 0 ? { kept: kept.length } : {}) });
  });
  if (r === undefined) return { status: 'changed' };
  if (r.status === 'UNAMBIGUOUS') return { status: 'unambiguous' };
  if (r.status === 'MAINTENANCE') return { status: 'maintenance' };
  if (r.status !== 'OK') return { status: 'lock-lost' };
  // The version is recorded; the event only wakes the replicators early, and their scan covers a lost one.
  await parts.noteWrite(repo, backend, r.version).catch(() => {});
  return { status: 'promoted', version: r.version, kept, checksum };
}
