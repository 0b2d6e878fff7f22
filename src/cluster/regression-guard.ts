import type { Logger } from 'pino';
import { StateRegressionError } from '../errors.js';
import type { RepoState } from '../state/repo-state.js';
import { leadership } from './routing.js';

/** Remembered versions per repository, to notice Redis going back in time. */
const SEEN_MAX = 50_000;

/**
 * The highest version this githa saw of each repository, per record epoch
 * (docs/redis.md "Versions never go down"): a lower one under the same epoch
 * means Redis went back in time (an old snapshot), and githa fails closed
 * (docs/operations.md "Redis lost or restored from an old snapshot").
 */
export class RegressionGuard {
  private readonly seen = new Map<string, { epoch: string; max: number }>();

  constructor(private readonly log: Logger) {}

  check(repo: string, state: RepoState): void {
    if (state.versions.size === 0) return;
    const { max } = leadership(state.versions);
    const epoch = state.epoch ?? '';
    const prev = this.seen.get(repo);
    if (prev && prev.epoch === epoch && max < prev.max) {
      this.log.error({ repo, seen: prev.max, now: max, epoch }, 'STATE REGRESSION: Redis holds an older version than githa saw; refusing');
      throw new StateRegressionError(
        `cluster state of ${repo} went back from version ${prev.max} to ${max} (Redis restored from an old snapshot?); ` +
          `githa refuses it until an operator runs: githa recover ${repo}`,
      );
    }
    if (prev) this.seen.delete(repo);
    else if (this.seen.size >= SEEN_MAX) this.seen.delete(this.seen.keys().next().value as string);
    this.seen.set(repo, { epoch, max: prev && prev.epoch === epoch ? Math.max(prev.max, max) : max });
  }
}
