/**
 * Pure statistics and formatting of the benchmark suite (no I/O): medians,
 * nearest-rank percentiles, the spread of paired A/B ratios, and the results
 * table. Every figure is a ratio against a baseline measured in the same run,
 * interleaved (A B A B …), so a loaded or slow machine moves both sides alike.
 */

/** Median of the samples (mean of the two middle ones for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Nearest-rank percentile (p in 0..100): the smallest sample such that at
 * least p % of the samples are ≤ it. With few samples p99 is the maximum,
 * which is the honest answer. NaN when empty.
 */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in 0..100, got ${p}`);
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length, Math.max(1, rank)) - 1]!;
}

export interface Spread {
  min: number;
  max: number;
}

/** min–max of the samples; NaN bounds when empty. */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) return { min: NaN, max: NaN };
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { min, max };
}

/** What one interleaved A/B series says: the ratio of the medians and the spread of the per-pair ratios. */
export interface PairedRatio {
  /** median(subject) / median(baseline). */
  ratio: number;
  /** min–max of subject[i] / baseline[i] over the pairs. */
  spread: Spread;
  baseline: number;
  subject: number;
}

/**
 * `subject[i]` and `baseline[i]` were measured back to back (pair i). The
 * figure is the ratio of the medians, robust to one disturbed run; the
 * spread of the per-pair ratios shows how much the machine moved meanwhile.
 */
export function pairedRatio(baseline: readonly number[], subject: readonly number[]): PairedRatio {
  if (baseline.length !== subject.length) throw new RangeError(`unpaired samples: ${baseline.length} baseline, ${subject.length} subject`);
  const b = median(baseline);
  const s = median(subject);
  return { ratio: s / b, spread: spread(subject.map((x, i) => x / baseline[i]!)), baseline: b, subject: s };
}

/** One line of the results table. */
export interface FigureRow {
  /** 'F1', 'F1s', 'F2 ls-remote c=16', … */
  figure: string;
  /** What was measured, with units ("clone 25 MB over HTTP: direct 1.20 s, githa 1.31 s"). */
  measured: string;
  /** The headline number ("1.09 (1.02–1.15)", "+1.4 ms", "310 ms"). */
  result: string;
  /** The goal from the issue ("≤ 1.05"). */
  goal: string;
  /** Whether the goal is met; undefined when the figure could not be judged (failed, or not measured). */
  met: boolean | undefined;
}

/** Fixed decimals, 'n/a' for NaN and infinities. */
export function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/** "1.09 (1.02–1.15)". */
export function fmtRatio(r: PairedRatio, digits = 2): string {
  return `${fmt(r.ratio, digits)} (${fmt(r.spread.min, digits)}–${fmt(r.spread.max, digits)})`;
}

/** Milliseconds with a sensible precision. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A GitHub-flavoured Markdown table; `|` inside cells is escaped. */
export function markdownTable(rows: readonly FigureRow[]): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| figure | measured | result | goal | met |', '|---|---|---|---|---|'];
  for (const r of rows) {
    const met = r.met === undefined ? '?' : r.met ? 'yes' : 'NO';
    lines.push(`| ${cell(r.figure)} | ${cell(r.measured)} | ${cell(r.result)} | ${cell(r.goal)} | ${met} |`);
  }
  return lines.join('\n');
}
