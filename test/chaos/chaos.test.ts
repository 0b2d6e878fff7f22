/**
 * The chaos harness in CI (issue 8): a 60-second run with every kind of
 * fault must find no violation, a 45-second one with replication factor 3
 * over 5 backends and `githa move` during it too (issue 22), and a short run against a githa whose write
 * path acknowledges before it commits (tools/chaos/githa-ack-before-commit.ts,
 * which only the harness runs) must be caught. Real git, redis-server, backends and
 * githa processes (tools/chaos/harness.ts). On failure the report names the
 * seed (GITHA_CHAOS_SEED=N reproduces the schedule) and the kept temp dir.
 */
import { describe, expect, it } from 'vitest';
import { ALL_FAULTS, runChaos } from '../../tools/chaos/harness.js';
import { counts, formatReport } from '../../tools/chaos/report.js';

const seed = process.env.GITHA_CHAOS_SEED ? Number(process.env.GITHA_CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);

describe('chaos', () => {
  it('60 s of concurrent clients and random faults: no violation, everything converges', { timeout: 200_000 }, async () => {
    const result = await runChaos({ seed, durationMs: 60_000, githas: 3 });
    const report = formatReport(result);
    const c = counts(result);
    expect(result.violations, report).toEqual([]);
    // The run did something: pushes acknowledged, reads served, faults of several kinds injected.
    expect(c.operations, report).toBeGreaterThan(100);
    const acked = result.history.ops.filter((o) => o.kind === 'push' && o.result === 'ok').length;
    expect(acked, report).toBeGreaterThan(20);
    expect(result.history.ops.filter((o) => o.kind === 'read' && o.result === 'ok').length, report).toBeGreaterThan(50);
    // Six at least: redis-slow and the long githa pauses last 6–10 s each (seed 7 injected 8 in 60 s).
    expect(c.faults, report).toBeGreaterThanOrEqual(6);
    expect(Object.keys(c.faultsByKind).length, report).toBeGreaterThanOrEqual(3);
    expect(Object.keys(c.faultsByKind).every((k) => (ALL_FAULTS as readonly string[]).includes(k))).toBe(true);
    expect(result.history.final?.converged, report).toBe(true);
  });

  it('45 s with factor 3 over 5 backends and moves during the run: no violation, 3 copies each, at least one move made', { timeout: 200_000 }, async () => {
    const result = await runChaos({ seed, durationMs: 45_000, githas: 3, backends: 5, factor: 3, moves: true });
    const report = formatReport(result);
    const c = counts(result);
    expect(result.violations, report).toEqual([]);
    expect(c.movesMade, report).toBeGreaterThanOrEqual(1);
    expect(result.history.ops.filter((o) => o.kind === 'push' && o.result === 'ok').length, report).toBeGreaterThan(10);
    expect(result.history.ops.filter((o) => o.kind === 'read' && o.result === 'ok').length, report).toBeGreaterThan(30);
    expect(c.faults, report).toBeGreaterThanOrEqual(4);
    expect(result.history.final?.converged, report).toBe(true);
    // Only the assigned copies were judged at the end: 3 of the 5 backends for each repository.
    for (const s of Object.values(result.history.final!.repos)) expect(s.assigned, report).toHaveLength(3);
  });

  it('catches a write path that acknowledges before it commits the version', { timeout: 120_000 }, async () => {
    // Pushes over HTTP (where the switch is); after each acknowledged push the githa that acknowledged it
    // is paused while a read goes through the other (harmless for a githa that commits before it acknowledges).
    const result = await runChaos({ seed, durationMs: 15_000, githas: 2, ackBeforeCommit: true, pushTransports: ['http'], faults: [] });
    const report = formatReport(result);
    expect(result.violations.map((v) => v.kind), report).toContain('stale-read');
    expect(result.keptDir, report).toBeDefined();
    const { rmSync } = await import('node:fs');
    rmSync(result.keptDir!, { recursive: true, force: true });
  });
});
