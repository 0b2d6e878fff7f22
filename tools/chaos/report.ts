/**
 * The closing report of a chaos run (issue 8, "What to build" 4):
 * operations by kind and result, faults by kind, violations with the
 * history around each, and the convergence time.
 */
import { historyAround } from './checker.js';
import type { ChaosResult } from './harness.js';

export interface Counts {
  operations: number;
  byKind: Record<string, Record<string, number>>;
  faults: number;
  faultsByKind: Record<string, number>;
  /** `githa move` and `githa rebalance --max-moves 1` runs (moves.ts), by exit status: "move exit 0" → n. Not counted as faults. */
  moves: Record<string, number>;
  /** Moves that finished (exit 0). */
  movesMade: number;
}

const OPERATIONS: ReadonlySet<string> = new Set(['move', 'rebalance']);

export function counts(result: ChaosResult): Counts {
  const byKind: Record<string, Record<string, number>> = {};
  for (const op of result.history.ops) {
    const kind = op.kind === 'push' ? `push ${op.mode}` : op.how;
    const row = (byKind[kind] ??= {});
    row[op.result] = (row[op.result] ?? 0) + 1;
  }
  const faultsByKind: Record<string, number> = {};
  const moves: Record<string, number> = {};
  let movesMade = 0;
  const faults = result.history.faults.filter((f) => !OPERATIONS.has(f.kind));
  for (const f of faults) faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
  for (const f of result.history.faults.filter((x) => OPERATIONS.has(x.kind))) {
    const status = /^exit (\S+):/.exec(f.detail ?? '')?.[1] ?? '?';
    const k = `${f.kind} exit ${status}`;
    moves[k] = (moves[k] ?? 0) + 1;
    // A move that finished exits 0; a rebalance says "N of M planned moves made" (src/cli/commands/move.ts).
    if (status === '0') movesMade += f.kind === 'move' ? 1 : Number(/^exit 0: (\d+) of /.exec(f.detail ?? '')?.[1] ?? 0);
  }
  return { operations: result.history.ops.length, byKind, faults: faults.length, faultsByKind, moves, movesMade };
}

/** " (stale-read 3, read-failed 1)": violations by kind, most first. */
function byKind(violations: ChaosResult['violations']): string {
  const n = new Map<string, number>();
  for (const v of violations) n.set(v.kind, (n.get(v.kind) ?? 0) + 1);
  return n.size === 0 ? '' : ` (${[...n].sort(([, a], [, b]) => b - a).map(([k, c]) => `${k} ${c}`).join(', ')})`;
}

/** How many commits the copy-divergent faults added, and how many are still reachable after the run. */
function divergentLine(result: ChaosResult): string[] {
  const added = result.history.divergent ?? [];
  if (added.length === 0) return [];
  const final = result.history.final;
  const kept = added.filter((d) => (final?.repos[d.repo]?.reachable?.[d.oid]?.length ?? 0) > 0).length;
  return [`divergent commits added by faults: ${added.length}, reachable from some ref after the run: ${kept}`];
}

export function formatReport(result: ChaosResult): string {
  const c = counts(result);
  const final = result.history.final;
  const lines = [
    `chaos report — seed ${result.seed} (reproduce the schedule with --seed ${result.seed})`,
    `operations: ${c.operations}`,
    ...Object.entries(c.byKind)
      .sort()
      .map(([kind, row]) => `  ${kind.padEnd(12)} ${Object.entries(row).sort().map(([r, n]) => `${r} ${n}`).join(', ')}`),
    ...(result.writes ? [`fan-out writes: ${result.writes.fanOut ? 'on' : 'off'}; pushes committed (githa logs): ${result.writes.committed}, with fan-out copies: ${result.writes.fannedOut}`] : []),
    `faults: ${c.faults}`,
    ...Object.entries(c.faultsByKind)
      .sort()
      .map(([kind, n]) => `  ${kind.padEnd(20)} ${n}`),
    ...(Object.keys(c.moves).length > 0
      ? [
          `moves and rebalances: ${Object.values(c.moves).reduce((a, b) => a + b, 0)} (copies moved: ${c.movesMade})`,
          ...Object.entries(c.moves)
            .sort()
            .map(([kind, n]) => `  ${kind.padEnd(20)} ${n}`),
        ]
      : []),
    ...divergentLine(result),
    `convergence after healing: ${final ? `${(final.convergenceMs / 1000).toFixed(1)} s${final.converged ? '' : ' (NOT converged)'}` : 'n/a'}`,
    `violations: ${result.violations.length}${byKind(result.violations)}`,
  ];
  for (const v of result.violations.slice(0, 20)) {
    lines.push(`- ${v.kind}: ${v.message}`);
    for (const l of historyAround(result.history, v)) lines.push(`    ${l}`);
  }
  if (result.violations.length > 20) lines.push(`… ${result.violations.length - 20} more violations (all in history.json)`);
  if (result.known.length > 0) {
    lines.push(`known githa issues seen (not counted; docs/chaos.md "Known issues"): ${result.known.length}`);
    for (const v of result.known.slice(0, 3)) {
      lines.push(`- ${v.kind}: ${v.message}`);
      for (const l of historyAround(result.history, v, 500, 15)) lines.push(`    ${l}`);
    }
  }
  if (result.keptDir) lines.push(`kept: ${result.keptDir} (history.json, githa logs g*.log, backend and redis logs)`);
  lines.push(`wall time: ${(result.durationMs / 1000).toFixed(0)} s`);
  return lines.join('\n');
}
