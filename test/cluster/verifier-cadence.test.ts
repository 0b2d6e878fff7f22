import { afterEach, describe, expect, it, vi } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { sweepRate, Verifier } from '../../src/cluster/verifier.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * The verifier's cadence (docs/config.md "verify"): how often sweeps start
 * and how long a repository's claim is held. The compare itself is covered
 * by test/integration/verify.test.ts against real backends.
 */

const A = 'a'.repeat(40);
const MAIN = { 'refs/heads/main': A };
const sum = refsChecksum([{ name: 'refs/heads/main', oid: A }]);

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/**
 * A memory cluster of three backends holding `repos`, with an index that lists them and records every claim.
 * `recorded`: false leaves them without a record, so a sweep lists nothing (no paced listing waits on a real timer).
 */
function setup(repos: string[], list: () => Promise<void> = async () => {}, recorded = true) {
  const m = memoryCluster(['b1', 'b2', 'b3']);
  for (const r of recorded ? repos : []) {
    for (const b of m.backends.values()) b.set(r, MAIN);
    m.store.seed(r, { b1: [1, sum], b2: [1, sum], b3: [1, sum] });
  }
  const claims: Array<{ repo: string; ttlMs: number }> = [];
  const index: ClusterContext['index'] = {
    ...m.ctx.index,
    repositories: async function* () {
      await list();
      yield [...repos];
    },
    claimVerify: async (repo, ttlMs) => {
      claims.push({ repo, ttlMs });
      return true;
    },
  };
  return { ...m, ctx: { ...m.ctx, index }, claims };
}

describe('verifier cadence', () => {
  it('a sweep verifies every repository it claims, one listing per copy, and holds each claim for less than the interval', async () => {
    const m = setup(['a.git', 'b.git']);
    const verifier = new Verifier({ ...m.ctx, config: { ...m.config, verify: { intervalMs: 300_000, perSecond: 1_000, concurrency: 1 } } });
    const stats = await verifier.sweepOnce();
    expect(stats).toMatchObject({ repositories: 2, verified: 2, listings: 6 });
    // The claim lapses before the next sweep, 300 s later, reaches the repository again: no sweep skips it.
    expect(m.claims).toEqual([
      { repo: 'a.git', ttlMs: 270_000 },
      { repo: 'b.git', ttlMs: 270_000 },
    ]);
  });

  it('starts the next sweep as soon as a sweep that outlasted the interval ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let sweeps = 0;
    // Every sweep takes 400 s (a large installation at verify.perSecond), longer than the 300 s interval.
    const m = setup(['a.git'], async () => {
      sweeps++;
      await new Promise((resolve) => setTimeout(resolve, 400_000));
    }, false);
    const verifier = new Verifier({ ...m.ctx, config: { ...m.config, verify: { intervalMs: 300_000, perSecond: 1_000, concurrency: 1 } } });
    verifier.start();
    await vi.advanceTimersByTimeAsync(1);
    expect(sweeps).toBe(1);
    await vi.advanceTimersByTimeAsync(410_000);
    // The first sweep ended at 400 s and the second began at once (not at the next 300 s tick, 600 s).
    expect(sweeps).toBe(2);
    await vi.advanceTimersByTimeAsync(400_000);
    expect(sweeps).toBe(3);
    verifier.stop();
  });

  it('starts sweeps every interval when they are quicker', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
    vi.spyOn(Math, 'random').mockReturnValue(0);
    let sweeps = 0;
    const m = setup(['a.git'], async () => {
      sweeps++;
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }, false);
    const verifier = new Verifier({ ...m.ctx, config: { ...m.config, verify: { intervalMs: 300_000, perSecond: 1_000, concurrency: 1 } } });
    verifier.start();
    await vi.advanceTimersByTimeAsync(299_000);
    expect(sweeps).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sweeps).toBe(2);
    verifier.stop();
    await vi.advanceTimersByTimeAsync(900_000);
    expect(sweeps).toBe(2);
  });
  it('verifies verify.concurrency repositories at a time, never more, and still every copy of each', async () => {
    const repos = Array.from({ length: 12 }, (_, i) => `c${i}.git`);
    const m = setup(repos);
    let inFlight = 0;
    let most = 0;
    for (const b of m.backends.values()) {
      const list = b.listRefs.bind(b);
      b.listRefs = async (...args: Parameters<typeof list>) => {
        inFlight++;
        most = Math.max(most, inFlight);
        try {
          // A listing that takes a few turns of the event loop, so the verifications overlap.
          for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
          return await list(...args);
        } finally {
          inFlight--;
        }
      };
    }
    const verifier = new Verifier({ ...m.ctx, config: { ...m.config, verify: { intervalMs: 300_000, perSecond: 1_000_000, concurrency: 3 } } });
    const stats = await verifier.sweepOnce();
    expect(stats).toMatchObject({ repositories: 12, verified: 12, listings: 36 });
    // Each repository lists its copies one by one: at most 3 listings at once, one per repository verified.
    expect(most).toBe(3);
  });

  it('paces a sweep to end within 0.8 of the interval when verify.perSecond would not', () => {
    // 10,000 repositories on 3 backends, hourly, at 5 a second: 100 minutes; paced to fit: 48 minutes.
    expect(sweepRate(5, 30_000, 3_600_000)).toBeCloseTo(30_000 / 2_880, 6);
    expect(30_000 / sweepRate(5, 30_000, 3_600_000)).toBeCloseTo(2_880, 6);
    // Small installations keep verify.perSecond.
    expect(sweepRate(5, 3_000, 3_600_000)).toBe(5);
    expect(sweepRate(5, 30_000, 0)).toBe(5);
  });
});
