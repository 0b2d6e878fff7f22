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
 * `place`. Used by `githa create`, create on push, adoption and `githa repo
 * factor`.
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
