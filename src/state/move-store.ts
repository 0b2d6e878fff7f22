import type { PlacementUsage } from './placement-usage.js';
import type { ScriptRunner } from './script.js';
import { SWITCH_ASSIGNMENT, type SwitchArgs, type SwitchResult } from './scripts/move.js';
import { FORGET_MOVE_TARGET } from './scripts/move-forget.js';

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
    /** Placement's per-backend counts (`githa:placement`), noted after a switch. */
    private readonly usage?: Pick<PlacementUsage, 'note'>,
  ) {}

  async switchAssignment(repo: string, a: Omit<SwitchArgs, 'logMax' | 'now'>): Promise<SwitchResult> {
    const r = await this.scripts.run(SWITCH_ASSIGNMENT, repo, { ...a, now: Date.now(), logMax: this.logMax });
    if (r.kind === 'ok' && this.usage) {
      // A key shared by every repository: written right after the script, a hint (docs/redis.md `placement`; its recount repairs it).
      const deltas = r.materialised ? [...a.every.filter((b) => b !== a.from).map((backend) => ({ backend, repos: 1 })), { backend: a.to, repos: 1 }] : [{ backend: a.from, repos: -1 }, { backend: a.to, repos: 1 }];
      await this.usage.note(deltas).catch(() => {});
    }
    return r;
  }

  /** A move that did not switch: its unassigned target keeps no record (FORGET_MOVE_TARGET). */
  forgetTarget(repo: string, to: string): Promise<'ok' | 'assigned'> {
    return this.scripts.run(FORGET_MOVE_TARGET, repo, { to });
  }
}
