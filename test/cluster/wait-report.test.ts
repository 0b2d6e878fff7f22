import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchWait, waitMessage, whileWaiting, WAIT_FIRST_REPORT_MS, type WaitReport } from '../../src/cluster/wait-report.js';

describe('watchWait: the cadence of wait reports (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const recorder = (): { reports: WaitReport[]; onWait: (r: WaitReport) => void } => {
    const reports: WaitReport[] = [];
    return { reports, onWait: (r) => reports.push(r) };
  };

  it('reports nothing for a wait shorter than the first delay, not even "done"', () => {
    const r = recorder();
    const w = watchWait(r, { kind: 'lock', repo: 'team/app.git' }, () => Date.now());
    vi.advanceTimersByTime(WAIT_FIRST_REPORT_MS - 1);
    w.stop();
    vi.advanceTimersByTime(10_000);
    expect(r.reports).toEqual([]);
  });

  it('reports after 1 s, then once a second, and once more when done', () => {
    const r = recorder();
    const w = watchWait(r, { kind: 'lock', repo: 'team/app.git' }, () => Date.now());
    vi.advanceTimersByTime(3_500);
    w.stop();
    w.stop();
    vi.advanceTimersByTime(5_000);
    expect(r.reports.map((x) => [x.elapsedMs, x.done])).toEqual([
      [1_000, false],
      [2_000, false],
      [3_000, false],
      [3_500, true],
    ]);
    expect(r.reports.every((x) => x.kind === 'lock' && x.repo === 'team/app.git')).toBe(true);
  });

  it('keeps the request going when the reporter throws', async () => {
    const onWait = vi.fn(() => {
      throw new Error('client gone');
    });
    const done = whileWaiting({ onWait }, { kind: 'copies', repo: 'r.git', backends: 2 }, () => new Promise<string>((resolve) => setTimeout(() => resolve('made'), 1_500)));
    vi.advanceTimersByTime(1_500);
    await expect(done).resolves.toBe('made');
    expect(onWait).toHaveBeenCalledTimes(2);
  });

  it('ends the watch when the work fails', async () => {
    const r = recorder();
    const done = whileWaiting(r, { kind: 'catch-up', repo: 'r.git' }, () => new Promise((_, reject) => setTimeout(() => reject(new Error('no')), 2_200)));
    const settled = expect(done).rejects.toThrow('no');
    vi.advanceTimersByTime(2_200);
    await settled;
    vi.advanceTimersByTime(5_000);
    expect(r.reports.map((x) => x.done)).toEqual([false, false, true]);
  });

  it('does nothing without a reporter', () => {
    watchWait(undefined, { kind: 'lock', repo: 'r.git' }).stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('waitMessage', () => {
  const at = (kind: WaitReport['kind'], elapsedMs: number, done = false, backends?: number): string =>
    waitMessage({ kind, repo: 'team/app.git', elapsedMs, done, ...(backends !== undefined ? { backends } : {}) });

  it('names the repository and the whole seconds waited; updates end in CR, the last line says done', () => {
    expect(at('lock', 3_400)).toBe('githa: waiting for another push to team/app.git (3 s)\r');
    expect(at('lock', 4_000, true)).toBe('githa: waiting for another push to team/app.git (4 s), done.\n');
    expect(at('catch-up', 1_000)).toBe('githa: waiting for a copy of team/app.git to catch up (1 s)\r');
    expect(at('copies', 2_000, false, 2)).toBe('githa: copying team/app.git to 2 backends (2 s)\r');
    expect(at('copies', 2_000, false, 1)).toBe('githa: copying team/app.git to 1 backend (2 s)\r');
    expect(at('push', 1_999)).toBe('githa: waiting for a push to team/app.git to be recorded (1 s)\r');
  });
});
