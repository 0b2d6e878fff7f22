import { describe, expect, it } from 'vitest';
import { goals, metricSum, summarize, summarizeByKind, type SoakFigures } from '../../tools/soak/summary.js';

const ok = (kind: string, ms: number) => ({ kind, ms, ok: true });

describe('soak summary', () => {
  it('p50 and p99 are nearest-rank over the successful operations; failures are counted apart', () => {
    const ops = [...Array.from({ length: 100 }, (_, i) => ok('http clone', i + 1)), { kind: 'http clone', ms: 99_999, ok: false }];
    expect(summarize(ops)).toEqual({ count: 101, failed: 1, p50: 50, p99: 99 });
    expect(summarize([])).toMatchObject({ count: 0, failed: 0, p50: NaN, p99: NaN });
    expect(summarizeByKind([ok('ssh push', 5), ok('git fetch', 1), ok('ssh push', 7)]).map(([k, s]) => [k, s.p99])).toEqual([
      ['git fetch', 1],
      ['ssh push', 7],
    ]);
  });

  it('goals: p99 ratio ≤ 2, no failure, RSS under its bound, no crash, no backend down, every attack refused', () => {
    const base: SoakFigures = {
      baseline: { count: 10, failed: 0, p50: 100, p99: 200 },
      attacked: { count: 10, failed: 0, p50: 120, p99: 400 },
      peakRssBytes: 100,
      rssBoundBytes: 100,
      crashed: false,
      backendsDown: [],
      refusals: { a: 1 },
    };
    expect(goals(base).every((g) => g.met)).toBe(true);
    const missed = (f: Partial<SoakFigures>) => goals({ ...base, ...f }).filter((g) => !g.met).map((g) => g.name);
    expect(missed({ attacked: { ...base.attacked, p99: 401 } })).toEqual(['p99 ratio']);
    expect(missed({ attacked: { ...base.attacked, failed: 1 } })).toEqual(['legitimate failures']);
    expect(missed({ peakRssBytes: 101 })).toEqual(['peak RSS']);
    expect(missed({ crashed: true, backendsDown: ['b1'], refusals: { a: 0 } })).toEqual(['no crash', 'no backend down', 'refused: a']);
  });

  it('sums /metrics samples by name and labels', () => {
    const text = ['# HELP x', 'githa_x_total{reason="a"} 2', 'githa_x_total{reason="b"} 3', 'githa_x_totals{reason="a"} 9', 'githa_y 4'].join('\n');
    expect(metricSum(text, 'githa_x_total')).toBe(5);
    expect(metricSum(text, 'githa_x_total', ['reason="a"'])).toBe(2);
    expect(metricSum(text, 'githa_y')).toBe(4);
  });
});
