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
import { BackendUnavailableError } from '../errors.js';
import type { RefTip } from '../backends/types.js';
import type { OperatorStore } from '../state/operator-store.js';
import type { FreezeReason, RepoState } from '../state/repo-state.js';
import { refsChecksum } from './checksum.js';
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

export type PromoteResult =
  | { status: 'promoted'; version: number }
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
  const r = await parts.withLock(repo, async (token) => {
    if (refsChecksum(await parts.readRefs(backend)) !== plan.checksum) return undefined;
    return parts.ops.promote(repo, token, backend, plan.checksum, { user, refs: plan.refCount });
  });
  if (r === undefined) return { status: 'changed' };
  if (r.status === 'UNAMBIGUOUS') return { status: 'unambiguous' };
  if (r.status === 'MAINTENANCE') return { status: 'maintenance' };
  if (r.status !== 'OK') return { status: 'lock-lost' };
  // The version is recorded; the event only wakes the replicators early, and their scan covers a lost one.
  await parts.noteWrite(repo, backend, r.version).catch(() => {});
  return { status: 'promoted', version: r.version };
}
