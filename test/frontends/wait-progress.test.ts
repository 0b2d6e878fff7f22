import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sidebandReporter, stderrReporter, wantsProgress } from '../../src/frontends/wait-progress.js';

const report = { kind: 'lock', repo: 'team/app.git', elapsedMs: 3_000, done: false } as const;

describe('wantsProgress', () => {
  it('is side-band or side-band-64k without quiet (gitprotocol-capabilities)', () => {
    expect(wantsProgress(['report-status', 'side-band-64k', 'agent=git/2.43.0'])).toBe(true);
    expect(wantsProgress(['side-band'])).toBe(true);
    expect(wantsProgress(['report-status'])).toBe(false);
    expect(wantsProgress(['report-status', 'side-band-64k', 'quiet'])).toBe(false);
    expect(wantsProgress([])).toBe(false);
  });
});

describe('reporters', () => {
  it('writes a wait as one band-2 pkt-line', () => {
    const out: Buffer[] = [];
    sidebandReporter((b) => out.push(b)).onWait(report);
    expect(Buffer.concat(out).toString('latin1')).toBe('003b\x02githa: waiting for another push to team/app.git (3 s)\r');
  });

  it('writes a wait as plain text on stderr, and nothing once the stream is gone or absent', () => {
    const errors = new PassThrough();
    const reporter = stderrReporter(errors)!;
    reporter.onWait({ ...report, done: true });
    expect(errors.read()?.toString()).toBe('githa: waiting for another push to team/app.git (3 s), done.\n');
    errors.destroy();
    expect(() => reporter.onWait(report)).not.toThrow();
    expect(stderrReporter(null)).toBeUndefined();
  });
});
