import type { Config } from '../config/schema.js';
import type { RepositoryStore } from '../state/repository-store.js';
import type { BackendDirectory } from './backends.js';
import type { Health } from './health.js';
import { place, type PlacementCandidate } from './placement.js';

/**
 * Placement with its inputs read (docs/architecture.md "Placement"): the
 * configured backends (zone, host), their flags now (enabled, drained), their
 * health (down: nothing new; the serving githa's is its probes', shared in
 * Redis; the CLI's is the shared one, src/cli/commands/context.ts) and
 * each one's use from Redis (docs/redis.md `placement`), handed to the pure
 * `place`. Used by `githa create`, create on push, adoption, `githa recover`
 * (and `githa inventory --track|--all`) and `githa repo factor`.
 */

export interface PlacerParts {
  readonly config: Pick<Config, 'backends' | 'replication'>;
  readonly repos: Pick<RepositoryStore, 'placementUsage'>;
  readonly backends: Pick<BackendDirectory, 'isEnabled' | 'isDraining'>;
  readonly health?: Pick<Health, 'isHealthy'>;
}

/** The candidates as placement sees them now. */
export async function candidates(ctx: PlacerParts): Promise<PlacementCandidate[]> {
  const usage = await ctx.repos.placementUsage();
  return ctx.config.backends.map((b) => ({
    id: b.id,
    zone: b.zone,
    host: b.host,
    enabled: ctx.backends.isEnabled(b.id),
    draining: ctx.backends.isDraining?.(b.id) === true,
    up: ctx.health?.isHealthy(b.id) ?? true,
    repos: usage.get(b.id)?.repos ?? 0,
    bytes: usage.get(b.id)?.bytes ?? 0,
  }));
}

/**
 * The backends a new repository is assigned to, or undefined when
 * `replication.factor` is unset (every backend holds it: no assignment is
 * recorded). `keep`: backends that hold it already (adoption) and stay.
 */
export async function placeNew(ctx: PlacerParts, repo: string, keep: readonly string[] = []): Promise<{ assigned: string[]; factor: number } | undefined> {
  const factor = ctx.config.replication.factor;
  if (factor === undefined) return undefined;
  return { assigned: place(repo, factor, await candidates(ctx), { keep }), factor };
}

/**
 * The assignment of a repository found on `holders` (adoption, `githa
 * recover`, `githa inventory --track|--all`; docs/architecture.md
 * "Placement"), or undefined without `replication.factor`: up to `factor`
 * of the holders, chosen by placement (`prefer`, holders a recorded
 * assignment named, first); fewer found, placement adds the rest, which
 * background replication creates and fills ("Filling a missing copy"). When
 * no holder can take a new copy (all drained or down), the holders stay
 * assigned anyway: an assignment without a copy would leave the repository
 * with no leader and its copies untracked.
 */
export async function placeHeld(
  ctx: PlacerParts,
  repo: string,
  holders: readonly string[],
  prefer: readonly string[] = [],
  /** The repository's own factor (`githa repo factor`) when `replication.factor` is unset. */
  own?: number,
): Promise<{ assigned: string[]; factor: number } | undefined> {
  const factor = ctx.config.replication.factor ?? own;
  if (factor === undefined) return undefined;
  const all = await candidates(ctx);
  const held = all.filter((b) => holders.includes(b.id));
  const keep = prefer.filter((b) => holders.includes(b) && held.some((c) => c.id === b && c.enabled && c.draining !== true && c.up !== false));
  let chosen = place(repo, factor, held, { keep });
  if (chosen.length === 0) chosen = place(repo, factor, held, { keep: [...holders].sort() });
  return { assigned: chosen.length >= factor ? chosen : place(repo, factor, all, { keep: chosen }), factor };
}
