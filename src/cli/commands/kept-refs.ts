/**
 * What `githa repo`, `githa status` and `githa dataloss` show of repairs
 * (docs/architecture.md "Verified copies"): the kept refs a leader holds,
 * how to drop them, and the command that creates a missing copy.
 */
import { dropCommand, keptRefs } from '../../cluster/kept.js';
import { createCommand } from '../../cluster/repair.js';
import { leadership, repoFlags } from '../../cluster/routing.js';
import type { RefTip } from '../../backends/types.js';
import type { RepoState } from '../../state/repo-state.js';
import type { Context } from './context.js';

/** The enabled leaders of `state`, healthy ones first. */
function leaders(ctx: Context, state: RepoState): string[] {
  const { cluster } = ctx.parts;
  const { leaders: all } = leadership(state.versions, repoFlags(state).notLeaders);
  const enabled = all.filter((b) => cluster.isEnabled(b)).sort();
  return [...enabled.filter((b) => ctx.health.get(b)?.up !== false), ...enabled.filter((b) => ctx.health.get(b)?.up === false)];
}

/** The kept refs of `repo` from the first leader that answers; undefined when none does. */
export async function keptOf(ctx: Context, repo: string, state: RepoState): Promise<RefTip[] | undefined> {
  for (const b of leaders(ctx, state)) {
    try {
      const refs = await ctx.parts.cluster.client(b).listRefs(repo);
      if (refs) return keptRefs(refs);
    } catch {
      // The next leader may answer.
    }
  }
  return undefined;
}

/** The command that creates `repo` on `backend`, with a leader's default branch when one tells it. */
export async function createCommandFor(ctx: Context, repo: string, backend: string, state: RepoState): Promise<string> {
  // The backend's own account and root when its admin or ssh URL tells them (src/cluster/fill.ts).
  const where = { backend: ctx.config.backends.find((b) => b.id === backend), repositories: ctx.config.repositories };
  for (const b of leaders(ctx, state)) {
    const head = await ctx.parts.cluster.client(b).headTarget?.(repo).catch(() => undefined);
    if (head !== undefined && head !== null) return createCommand(repo, backend, head, where);
  }
  return createCommand(repo, backend, undefined, where);
}

/** Lines naming kept refs and how to drop them. */
export function keptLines(repo: string, kept: readonly RefTip[]): string[] {
  if (kept.length === 0) return [];
  return [
    `kept commits of ${repo} (a copy's commits the record lacked, kept before it was refilled):`,
    ...kept.map((r) => `  ${r.name} ${r.oid.slice(0, 12)}`),
    `drop one once it is dealt with (merged, or not wanted): ${dropCommand(kept[0]!.name)}`,
  ];
}
