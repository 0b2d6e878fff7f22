import { RepositoryFrozenError } from '../errors.js';
import type { RepoState } from '../state/repo-state.js';
import { frozenForWrite, interruptedWrite } from './messages.js';
import { leadership } from './routing.js';

/** The refusal of a write to a frozen repository, or one whose last write was interrupted. */
export function writeRefusal(repo: string, state: RepoState): RepositoryFrozenError {
  if (state.frozen) return new RepositoryFrozenError(frozenForWrite(repo, state.frozen), state.frozen.reason);
  return new RepositoryFrozenError(interruptedWrite(repo, state.writing!), 'write-interrupted');
}

/** Backends at the highest version that cannot serve: disabled, drifted, or (when the version sits only on them) all of them. */
export function lostLeaders(state: RepoState): string[] {
  const { max } = leadership(state.versions);
  return [...state.versions].filter(([, v]) => v === max && max > 0).map(([b]) => (state.drift.has(b) ? `${b} (drifted)` : b));
}

/**
 * Whether writes are refused, judged without the lock. A marker while the
 * write lock is held is a push in flight, not an interruption: the next push
 * waits for the lock and looks again (under the lock, any marker left over is
 * an interruption).
 */
export function refusesWrites(state: RepoState): boolean {
  return Boolean(state.frozen) || interrupted(state);
}

/** A marker with no lock held: its owner is gone (or paused past its lease). */
export function interrupted(state: RepoState): boolean {
  return state.writing !== undefined && !state.locked;
}

/** The state is not one Cluster.write's short way takes: the push goes the long way. Never reaches a client. */
export class NotPlain extends Error {}

/** A promise's catch: NotPlain becomes its value, anything else is thrown on. */
export function notPlain(err: unknown): NotPlain {
  if (err instanceof NotPlain) return err;
  throw err;
}

/**
 * Throws NotPlain unless the state is one the checks before the lock
 * (Cluster.writableState, Adoption.known) would pass unchanged: recorded,
 * not gone, not frozen, its leaders agreeing (docs/architecture.md "A push"
 * 2). A marker is a push in flight while another holds the lock, and an
 * interruption once the lock is `ours`: the long way resolves or refuses it.
 */
export function checkPlain(state: RepoState, ours = false): void {
  if (state.versions.size === 0 || state.gone || state.frozen) throw new NotPlain();
  if (ours ? state.writing : interrupted(state)) throw new NotPlain();
  const { leaders } = leadership(state.versions);
  if (new Set(leaders.map((b) => state.checksums.get(b) ?? '')).size > 1) throw new NotPlain();
}
