import { MoveRefusedError } from '../errors.js';
import type { ClusterContext } from './context.js';
import type { Mover, MoveResult } from './move.js';
import { planRebalance, type PlanBackend, type PlannedMove, type PlanRepo } from './rebalance-plan.js';
import type { Throttle } from './throttle.js';

/**
 * `githa rebalance` and a drain (docs/architecture.md "Moves"): what the
 * planner is given (every recorded repository's assignment, every
 * backend's zone, host and whether it takes new copies), and the moves run
 * one after another within the caps.
 */

type Parts = Pick<ClusterContext, 'config' | 'repos' | 'index' | 'backends'>;

/** Every recorded repository with its assignment (as the routing reads it: absent = every configured backend). */
export async function planInput(ctx: Parts, draining: ReadonlySet<string>): Promise<{ backends: PlanBackend[]; repos: PlanRepo[] }> {
  const every = ctx.config.backends.map((b) => b.id);
  const backends: PlanBackend[] = ctx.config.backends.map((b) => ({
    id: b.id,
    zone: b.zone,
    host: (b as { host?: string }).host,
    accepting: ctx.backends.isEnabled(b.id) && !draining.has(b.id),
    draining: draining.has(b.id),
  }));
  const repos: PlanRepo[] = [];
  for await (const page of ctx.index.repositories()) {
    const states = await Promise.all(page.map(async (repo) => ({ repo, state: await ctx.repos.read(repo) })));
    for (const { repo, state } of states) {
      // Deleted, never recorded, frozen or written right now: left alone (a later rebalance takes it).
      if (state.gone || state.versions.size === 0 || state.frozen) continue;
      // Sizes are not known before copying: the planner evens the count; --max-bytes caps the bytes relayed (runMoves).
      repos.push({ repo, assigned: state.assigned ?? every, bytes: 0 });
    }
  }
  return { backends, repos };
}

/** How many recorded repositories each backend of `ids` still holds. */
export function holding(repos: readonly PlanRepo[], ids: Iterable<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const id of ids) out.set(id, repos.filter((r) => r.assigned.includes(id)).length);
  return out;
}

export interface RunLimits {
  maxMoves?: number | undefined;
  /** Stop starting moves once this many pack bytes were relayed. */
  maxBytes?: number | undefined;
  throttle?: Throttle | undefined;
  by: string;
  progress: (line: string) => void;
}

export interface RunReport {
  done: MoveResult[];
  failed: { move: PlannedMove; error: string }[];
  /** Why moves were left out (a cap reached). */
  stopped?: string;
  bytes: number;
}

/** Runs `moves` one after another; a refused or failed move is reported and the next one runs. */
export async function runMoves(mover: Mover, moves: readonly PlannedMove[], l: RunLimits): Promise<RunReport> {
  const report: RunReport = { done: [], failed: [], bytes: 0 };
  for (const [i, m] of moves.entries()) {
    if (l.maxMoves !== undefined && report.done.length >= l.maxMoves) {
      report.stopped = `--max-moves ${l.maxMoves} reached`;
      break;
    }
    if (l.maxBytes !== undefined && report.bytes >= l.maxBytes) {
      report.stopped = `--max-bytes reached (${report.bytes} bytes relayed)`;
      break;
    }
    const at = `[${i + 1}/${moves.length}]`;
    l.progress(`${at} ${m.repo}: ${m.from} → ${m.to} (${m.why})`);
    try {
      const r = await mover.move(m.repo, m.from, m.to, { by: l.by, throttle: l.throttle, progress: (line) => l.progress(`${at}   ${line}`) });
      report.done.push(r);
      report.bytes += r.bytes;
      l.progress(`${at} ${m.repo}: on ${m.to} at version ${r.version}, ${r.bytes} bytes relayed in ${(r.ms / 1000).toFixed(1)} s; ${m.from}'s copy ${trashWords(r)}`);
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      // A refusal (the repository changed, was frozen, deleted) or a backend failure: this move only.
      report.failed.push({ move: m, error: err.message });
      l.progress(`${at} ${m.repo}: NOT MOVED: ${err.message}${err instanceof MoveRefusedError ? '' : ` (${err.name})`}`);
    }
  }
  return report;
}

export function trashWords(r: MoveResult): string {
  switch (r.trash) {
    case 'trashed':
      return `in its trash (${r.stamp})`;
    case 'absent':
      return 'was not there';
    case 'by-hand':
      return `stays (no admin): ${r.byHand}`;
    case 'unconfigured':
      return 'stays (its backend is not in the configuration: githa cannot reach it)';
    default:
      return `stays (unreachable): ${r.byHand}`;
  }
}

export { planRebalance };
