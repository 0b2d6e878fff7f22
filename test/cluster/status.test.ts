import { describe, expect, it } from 'vitest';
import { summarize } from '../../src/cluster/status.js';
import type { RepoState } from '../../src/state/repo-state.js';

const state = (versions: Record<string, number>, extra: Partial<RepoState> = {}): RepoState => ({
  versions: new Map(Object.entries(versions)),
  checksums: new Map(Object.keys(versions).map((b) => [b, 'c'])),
  suspect: new Map(),
  drift: new Map(),
  ...extra,
});
const ALL = ['b1', 'b2', 'b3'];
const NOW = 1_000_000;

describe('summarize', () => {
  it('synchronized when every active backend leads', () => {
    expect(summarize(state({ b1: 3, b2: 3, b3: 3 }), ALL, 2, undefined, NOW)).toMatchObject({ state: 'synchronized', version: 3, stale: [] });
    // A disabled backend that lags does not count.
    expect(summarize(state({ b1: 3, b2: 3, b3: 1 }), ['b1', 'b2'], 2, undefined, NOW).state).toBe('synchronized');
  });

  it('partial with at least writeQuorum leaders, naming the stale ones', () => {
    expect(summarize(state({ b1: 3, b2: 3, b3: 2 }), ALL, 2, undefined, NOW)).toMatchObject({ state: 'partial', leaders: ['b1', 'b2'], stale: ['b3'] });
    expect(summarize(state({ b1: 3, b2: 3 }), ALL, 2, undefined, NOW).stale).toEqual(['b3']);
  });

  it('unsynchronized with fewer leaders than the quorum, unless a push is under a minute old', () => {
    expect(summarize(state({ b1: 3, b2: 2, b3: 2 }), ALL, 2, NOW - 120_000, NOW).state).toBe('unsynchronized');
    expect(summarize(state({ b1: 3, b2: 2, b3: 2 }), ALL, 2, NOW - 5_000, NOW).state).toBe('partial');
    expect(summarize(state({ b1: 3, b2: 2, b3: 2 }), ALL, 1, undefined, NOW).state).toBe('partial');
  });

  it('a drifted copy is no leader', () => {
    const s = state({ b1: 3, b2: 3, b3: 3 }, { drift: new Map([['b2', { checksum: 'x', at: 1 }], ['b3', { checksum: 'y', at: 1 }]]) });
    expect(summarize(s, ALL, 2, undefined, NOW)).toMatchObject({ state: 'unsynchronized', leaders: ['b1'], drifted: ['b2', 'b3'] });
  });

  it('ambiguous and frozen name their reason; an interrupted write is frozen, a running one is not', () => {
    const frozen = (reason: 'ambiguous' | 'maintenance') => state({ b1: 1 }, { frozen: { reason, detail: `why ${reason}`, since: 1, backends: [] } });
    expect(summarize(frozen('ambiguous'), ALL, 2, undefined, NOW)).toMatchObject({ state: 'ambiguous', reason: 'why ambiguous' });
    expect(summarize(frozen('maintenance'), ALL, 2, undefined, NOW)).toMatchObject({ state: 'frozen', reason: 'maintenance' });
    const marker = { id: 'w', backend: 'b1', proxy: 'p', user: 'u', transport: 'http', started: 1, heartbeat: 1, preChecksum: 'c', copies: [] };
    expect(summarize(state({ b1: 2, b2: 2, b3: 2 }, { writing: marker, locked: false }), ALL, 2, undefined, NOW)).toMatchObject({
      state: 'frozen',
      reason: 'write-interrupted',
      writing: { backend: 'b1', interrupted: true },
    });
    expect(summarize(state({ b1: 2, b2: 2, b3: 2 }, { writing: marker, locked: true }), ALL, 2, undefined, NOW).state).toBe('synchronized');
  });
});
