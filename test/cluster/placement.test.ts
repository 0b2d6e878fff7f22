import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BYTES_UNIT, place, toUnassign, type PlacementCandidate } from '../../src/cluster/placement.js';

/* Placement of new repositories (docs/architecture.md "Placement"): pure, deterministic, spread. */

const b = (id: string, extra: Partial<PlacementCandidate> = {}): PlacementCandidate => ({ id, enabled: true, repos: 0, bytes: 0, ...extra });

const candidate = fc.record({
  zone: fc.option(fc.constantFrom('z1', 'z2', 'z3'), { nil: undefined }),
  host: fc.option(fc.constantFrom('h1', 'h2', 'h3', 'h4'), { nil: undefined }),
  enabled: fc.boolean(),
  draining: fc.boolean(),
  up: fc.option(fc.boolean(), { nil: undefined }),
  repos: fc.nat(50),
  bytes: fc.nat(4 * BYTES_UNIT),
});
const cluster = fc.array(candidate, { minLength: 1, maxLength: 9 }).map((xs) => xs.map((x, i) => ({ id: `b${i + 1}`, ...x })));

describe('place', () => {
  it('takes the least used: bytes (in units), then repository count', () => {
    const backends = [b('b1', { repos: 5 }), b('b2', { repos: 1 }), b('b3', { repos: 2 }), b('b4', { repos: 0, bytes: 3 * BYTES_UNIT })];
    expect(place('r', 2, backends)).toEqual(['b2', 'b3']);
    // Less than a unit of bytes apart: the count decides.
    expect(place('r', 1, [b('b1', { repos: 3 }), b('b2', { repos: 1, bytes: BYTES_UNIT - 1 })])).toEqual(['b2']);
  });

  it('skips disabled, draining and down backends', () => {
    expect(place('r', 3, [b('b1', { enabled: false }), b('b2', { draining: true }), b('b3'), b('b4')]).sort()).toEqual(['b3', 'b4']);
    expect(place('r', 3, [b('b1', { up: false }), b('b2'), b('b3', { up: true }), b('b4', { repos: 9 })]).sort()).toEqual(['b2', 'b3', 'b4']);
  });

  it('never puts two copies on one host, even when that leaves fewer than the factor', () => {
    const backends = [b('b1', { host: 'h' }), b('b2', { host: 'h' }), b('b3')];
    expect(place('r', 3, backends).sort()).toHaveLength(2);
    expect(place('r', 3, backends)).toContain('b3');
  });

  it('spreads over zones: at most ceil(factor / zones) in a zone while another can take one', () => {
    const backends = [b('a1', { zone: 'a' }), b('a2', { zone: 'a' }), b('a3', { zone: 'a' }), b('c1', { zone: 'c', repos: 9 })];
    expect(place('r', 2, backends)).toContain('c1');
    // Only one zone has room left: the limit is lifted rather than placing fewer.
    expect(place('r', 4, backends)).toHaveLength(4);
  });

  it('keeps the given holders first', () => {
    expect(place('r', 2, [b('b1', { repos: 9 }), b('b2'), b('b3')], { keep: ['b1'] })[0]).toBe('b1');
  });

  it('ties are broken per repository, so equal backends share the load', () => {
    const backends = ['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => b(id));
    const firsts = new Set(Array.from({ length: 40 }, (_, i) => place(`repo${i}`, 1, backends)[0]));
    expect(firsts.size).toBeGreaterThan(2);
  });

  it('property: deterministic, eligible, distinct hosts, as many as the factor and the distinct hosts allow', () => {
    fc.assert(
      fc.property(cluster, fc.integer({ min: 1, max: 5 }), fc.string({ maxLength: 12 }), (backends, factor, repo) => {
        const chosen = place(repo, factor, backends);
        expect(place(repo, factor, [...backends].reverse())).toEqual(chosen);
        expect(new Set(chosen).size).toBe(chosen.length);
        expect(chosen.length).toBeLessThanOrEqual(factor);
        const byId = new Map(backends.map((x) => [x.id, x]));
        const picked = chosen.map((id) => byId.get(id)!);
        for (const p of picked) expect(p.enabled && !p.draining && p.up !== false).toBe(true);
        const hosts = picked.map((p) => p.host ?? p.id);
        expect(new Set(hosts).size).toBe(hosts.length);
        const eligible = backends.filter((x) => x.enabled && !x.draining && x.up !== false);
        const distinctHosts = new Set(eligible.map((x) => x.host ?? x.id)).size;
        expect(chosen.length).toBe(Math.min(factor, distinctHosts));
      }),
    );
  });

  it('property: repeated placement keeps counts within one of each other when backends are alike', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 9 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 60 }), (n, factor, repos) => {
        const count = new Map(Array.from({ length: n }, (_, i) => [`b${i}`, 0]));
        for (let r = 0; r < repos; r++) {
          const chosen = place(`r${r}`, factor, [...count].map(([id, c]) => b(id, { repos: c })));
          expect(chosen).toHaveLength(factor);
          for (const id of chosen) count.set(id, count.get(id)! + 1);
        }
        const values = [...count.values()];
        expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('property: two backends on one host still leave no backend more than 2 copies over the mean (5 backends, factor 3)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 10 }), { minLength: 30, maxLength: 30 }), (names) => {
        const count = new Map(['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => [id, 0]));
        for (const name of names) {
          const chosen = place(name, 3, [...count].map(([id, c]) => b(id, { repos: c, ...(id === 'b4' || id === 'b5' ? { host: 'shared' } : {}) })));
          expect(chosen).toHaveLength(3);
          expect(chosen.includes('b4') && chosen.includes('b5')).toBe(false);
          for (const id of chosen) count.set(id, count.get(id)! + 1);
        }
        expect(Math.max(...count.values())).toBeLessThanOrEqual((30 * 3) / 5 + 2);
      }),
      { numRuns: 50 },
    );
  });
});

describe('toUnassign', () => {
  it('unassigns non-leaders first, then the most used', () => {
    const backends = [b('b1', { repos: 1 }), b('b2', { repos: 9 }), b('b3', { repos: 5 }), b('b4', { repos: 2 })];
    expect(toUnassign('r', ['b1', 'b2', 'b3', 'b4'], 2, new Set(['b1', 'b2', 'b4']), backends)).toEqual(['b3', 'b2']);
    expect(toUnassign('r', ['b1', 'b2'], 3, new Set(), backends)).toEqual([]);
  });
});
