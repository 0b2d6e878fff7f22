/**
 * Pure parts of the soak test (no I/O): latency summaries per phase and the
 * verdict against the goals of issue 19's acceptance (docs/security.md
 * "Soak test").
 */
import { percentile } from '../bench/stats.js';

/** One legitimate operation: what it was (`http clone`, `ssh push`, …), how long it took, whether it succeeded. */
export interface Op {
  kind: string;
  ms: number;
  ok: boolean;
  error?: string;
}

export interface LatencySummary {
  count: number;
  failed: number;
  p50: number;
  p99: number;
}

/** p50/p99 (nearest rank) of the successful operations' latencies, and how many failed. */
export function summarize(ops: readonly Op[]): LatencySummary {
  const ms = ops.filter((o) => o.ok).map((o) => o.ms);
  return { count: ops.length, failed: ops.filter((o) => !o.ok).length, p50: percentile(ms, 50), p99: percentile(ms, 99) };
}

/** summarize() per operation kind, kinds sorted. */
export function summarizeByKind(ops: readonly Op[]): Array<[string, LatencySummary]> {
  const kinds = [...new Set(ops.map((o) => o.kind))].sort();
  return kinds.map((k) => [k, summarize(ops.filter((o) => o.kind === k))]);
}

/** Sum of the /metrics samples of `name` whose labels contain every one of `labels`. */
export function metricSum(text: string, name: string, labels: readonly string[] = []): number {
  return text
    .split('\n')
    .filter((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && labels.every((x) => l.includes(x)))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)))
    .reduce((a, b) => a + b, 0);
}

export interface SoakFigures {
  baseline: LatencySummary;
  attacked: LatencySummary;
  peakRssBytes: number;
  rssBoundBytes: number;
  crashed: boolean;
  backendsDown: string[];
  /** Refusals per attack (from githa's /metrics): an attack that met no refusal was not defended or did not run. */
  refusals: Record<string, number>;
}

export interface Goal {
  name: string;
  met: boolean;
  detail: string;
}

/** Ratio of the goal on latency: p99 under attack ≤ this × p99 unloaded. */
export const MAX_P99_RATIO = 2;

export function goals(f: SoakFigures): Goal[] {
  const ratio = f.attacked.p99 / f.baseline.p99;
  const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  return [
    { name: 'p99 ratio', met: ratio <= MAX_P99_RATIO, detail: `p99(B)/p99(A) = ${ratio.toFixed(2)} (goal ≤ ${MAX_P99_RATIO})` },
    { name: 'legitimate failures', met: f.baseline.failed === 0 && f.attacked.failed === 0, detail: `${f.baseline.failed} in A, ${f.attacked.failed} in B (goal 0)` },
    { name: 'peak RSS', met: f.peakRssBytes > 0 && f.peakRssBytes <= f.rssBoundBytes, detail: `${mb(f.peakRssBytes)} (bound ${mb(f.rssBoundBytes)})` },
    { name: 'no crash', met: !f.crashed, detail: f.crashed ? 'githa exited' : 'githa ran throughout' },
    { name: 'no backend down', met: f.backendsDown.length === 0, detail: f.backendsDown.length ? f.backendsDown.join(', ') : 'none' },
    ...Object.entries(f.refusals).map(([attack, n]) => ({ name: `refused: ${attack}`, met: n > 0, detail: String(n) })),
  ];
}
