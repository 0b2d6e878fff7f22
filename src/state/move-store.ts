import type { ScriptRunner } from './script.js';
import { SWITCH_ASSIGNMENT, type SwitchArgs, type SwitchResult } from './scripts/move.js';

export type { SwitchResult } from './scripts/move.js';

/**
 * The state change of a move (docs/architecture.md "Moves"): one guarded
 * script that replaces B by C in a repository's assignment. Kept beside
 * RepositoryStore rather than in it: only `githa move`, `rebalance` and a
 * drain switch assignments.
 */
export class MoveStore {
  constructor(
    private readonly scripts: ScriptRunner,
    /** Push-log entries kept per repository (pushLog.maxLength). */
    private readonly logMax: number,
  ) {}

  switchAssignment(repo: string, a: Omit<SwitchArgs, 'logMax' | 'now'>): Promise<SwitchResult> {
    return this.scripts.run(SWITCH_ASSIGNMENT, repo, { ...a, now: Date.now(), logMax: this.logMax });
  }
}
