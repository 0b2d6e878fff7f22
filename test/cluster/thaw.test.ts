/**
 * `githa thaw`'s planning and applying (src/cluster/thaw.ts,
 * thaw-promote.ts) with plain data: repository states, push-log entries, and
 * collaborators that record what they were asked. The CLI around them and the
 * guarded scripts are driven for real in test/cli/thaw.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { applyDemote, applyDemoteAll, freezeConcerns, planDemote, planDemoteAll, type DemoteAllParts } from '../../src/cluster/thaw.js';
import { applyPromote, otherCopies, planPromote, promoteRefusal, type PromoteParts } from '../../src/cluster/thaw-promote.js';
import { BackendUnavailableError } from '../../src/errors.js';
import type { FrozenState, RepoState, WritingMarker } from '../../src/state/repo-state.js';
import type { LogEntry } from '../../src/state/push-log.js';
import type { DemoteResult, PromoteResult } from '../../src/state/operator-store.js';

const R = 'team/app.git';

const state = (versions: Record<string, number>, extra: Partial<RepoState> = {}): RepoState => ({
  versions: new Map(Object.entries(versions)),
  checksums: new Map(Object.keys(versions).map((b) => [b, 'c'])),
  suspect: new Map(),
  drift: new Map(),
  ...extra,
});
const frozen = (reason: FrozenState['reason'], detail: string, backends?: string[]): FrozenState => ({ reason, detail, since: 1, ...(backends ? { backends } : {}) });
const marker = (backend: string): WritingMarker => ({ id: 'w1', backend, proxy: 'githa-1:1', user: 'alice', transport: 'http', started: 5, heartbeat: 5, preChecksum: 'p', copies: [] });
let seq = 0;
const entry = (fields: Record<string, string>, at = 1_700_000_000_000 + seq++): LogEntry => ({ id: `${at}-0`, at, fields });

/** Collaborators that record every call; `demote`/`promote` answer what the test says. */
function fakeParts(answers: { demote?: string[]; promote?: string[]; refs?: Array<Array<{ name: string; oid: string }>> } = {}) {
  const calls: Array<[string, ...unknown[]]> = [];
  const demoteAnswers = [...(answers.demote ?? [])];
  const promoteAnswers = [...(answers.promote ?? [])];
  const refs = [...(answers.refs ?? [])];
  const parts = {
    async withLock<T>(repo: string, fn: (token: string) => Promise<T>): Promise<T> {
      calls.push(['lock', repo]);
      return fn('tok');
    },
    ops: {
      async demote(...args: unknown[]) {
        calls.push(['demote', ...args]);
        const [status = 'OK', max = '0', m = '', lifted = ''] = (demoteAnswers.shift() ?? 'OK').split(',');
        return { status: status as DemoteResult['status'], max: Number(max), marker: m, lifted };
      },
      async promote(...args: unknown[]) {
        calls.push(['promote', ...args]);
        const [status = 'OK', version = '0'] = (promoteAnswers.shift() ?? 'OK').split(',');
        return { status: status as PromoteResult['status'], version: Number(version) };
      },
    },
    async noteWrite(repo: string, backend: string, version: number) {
      calls.push(['noteWrite', repo, backend, version]);
    },
    async readRefs(backend: string) {
      calls.push(['readRefs', backend]);
      return refs.shift() ?? [];
    },
  };
  return { calls, parts };
}

describe('freezeConcerns', () => {
  it('a freeze that records its backends concerns those only (unless B leads or holds the marker)', () => {
    const f = frozen('leaders-lost', 'leaders b1 lost', ['b2']);
    expect(freezeConcerns(f, 'b2', false)).toBe(true);
    // The detail's words do not count: only the recorded ids.
    expect(freezeConcerns(f, 'b1', false)).toBe(false);
    expect(freezeConcerns(f, 'b1', true)).toBe(true);
    expect(freezeConcerns(frozen('write-interrupted', '', []), 'b1', false)).toBe(false);
  });

  it('a freeze recorded before the ids were stored concerns every backend', () => {
    expect(freezeConcerns(frozen('write-interrupted', 'anything'), 'b9', false)).toBe(true);
  });

  it('ambiguous and maintenance freezes are never lifted by a demotion', () => {
    expect(freezeConcerns(frozen('ambiguous', 'b1=x b2=y', ['b1', 'b2']), 'b1', true)).toBe(false);
    expect(freezeConcerns(frozen('maintenance', 'githa lock while b1', ['b1']), 'b1', true)).toBe(false);
    expect(freezeConcerns(undefined, 'b1', true)).toBe(false);
  });
});

describe('planDemote', () => {
  it('undefined when B is not involved at all', () => {
    expect(planDemote(R, 'b3', state({ b1: 2, b2: 2 }), [])).toBeUndefined();
    // A freeze naming another backend does not involve B.
    expect(planDemote(R, 'b3', state({ b1: 2, b2: 2 }, { frozen: frozen('leaders-lost', 'b3 is mentioned here', ['b1']) }), [])).toBeUndefined();
  });

  it('a freeze that records B involves B even when its detail does not name it', () => {
    const p = planDemote(R, 'b3', state({ b1: 2, b2: 2 }, { frozen: frozen('leaders-lost', 'no names here', ['b3']) }), []);
    expect(p).toMatchObject({ version: undefined, freeze: 'leaders-lost', onlyLeader: false, newLeaders: ['b1', 'b2'] });
  });

  it('a leader among others: nothing lost; the next-highest lead', () => {
    const p = planDemote(R, 'b1', state({ b1: 4, b2: 4, b3: 3 }), [entry({ version: '4', event: 'push' })]);
    expect(p).toMatchObject({ version: 4, max: 4, newMax: 4, newLeaders: ['b2'], onlyLeader: false, lost: [], freeze: '' });
  });

  it('the only leader: names the versions above the new maximum from the log, stopping at an earlier demotion', () => {
    const log = [
      entry({ version: '4', event: 'push', user: 'bob', refs: 'a b refs/heads/x' }),
      entry({ version: '4', event: 'catch-up' }),
      entry({ version: '3', user: 'carol' }),
      entry({ version: '2', event: 'push' }),
      entry({ event: 'thaw-demote', version: '3' }),
      entry({ version: '3', event: 'push', user: 'older' }),
    ];
    const p = planDemote(R, 'b1', state({ b1: 4, b2: 2, b3: 2 }), log)!;
    expect(p).toMatchObject({ onlyLeader: true, max: 4, newMax: 2, newLeaders: ['b2', 'b3'] });
    expect(p.lost).toEqual([
      { version: 4, event: 'push', user: 'bob', at: log[0]!.at, refs: 'a b refs/heads/x' },
      { version: 3, event: 'push', user: 'carol', at: log[2]!.at, refs: '' },
    ]);
  });

  it('an interrupted write on B, its suspect and drift entries, and the write-interrupted freeze go with it', () => {
    const s = state(
      { b1: 3, b2: 3 },
      {
        writing: marker('b2'),
        frozen: frozen('write-interrupted', ''),
        suspect: new Map([['b2', 9]]),
        drift: new Map([['b2', { checksum: 'd', at: 1 }]]),
      },
    );
    expect(planDemote(R, 'b2', s, [])).toMatchObject({ marker: { id: 'w1' }, freeze: 'write-interrupted', suspect: true, drift: true });
    // b1 holds no marker; the old-style freeze (no ids) concerns it all the same, as it leads.
    expect(planDemote(R, 'b1', s, [])).toMatchObject({ marker: undefined, freeze: 'write-interrupted', suspect: false });
  });
});

describe('applyDemote', () => {
  it('runs the guarded script with what the operator was shown and reports what was cleared', async () => {
    const plan = planDemote(R, 'b1', state({ b1: 4, b2: 2 }, { writing: marker('b1'), frozen: frozen('leaders-lost', '', ['b1']) }), [])!;
    const { calls, parts } = fakeParts({ demote: ['OK,2,w1,leaders-lost'] });
    const r = await applyDemote(plan, 'op-anna', parts);
    expect(r).toEqual({
      repo: R,
      backend: 'b1',
      status: 'demoted',
      version: 2,
      leaders: ['b2'],
      lostVersions: [3, 4],
      cleared: { marker: true, freeze: 'leaders-lost', suspect: false, drift: false },
    });
    expect(calls).toEqual([
      ['lock', R],
      ['demote', R, 'tok', 'b1', 4, 4, 'leaders-lost', { user: 'op-anna', lost: '3..4' }],
      ['noteWrite', R, 'b2', 2],
    ]);
  });

  it('a state that moved, or a lost lock, changes nothing and says why', async () => {
    const plan = planDemote(R, 'b1', state({ b1: 4, b2: 4 }), [])!;
    const { calls, parts } = fakeParts({ demote: ['MOVED', 'LOCK'] });
    expect(await applyDemote(plan, 'x', parts)).toMatchObject({ status: 'changed', reason: expect.stringMatching(/changed since it was shown.*run the command again/) });
    expect(await applyDemote(plan, 'x', parts)).toMatchObject({ status: 'changed', reason: expect.stringMatching(/write lock on team\/app\.git was lost/) });
    expect(calls.filter(([c]) => c === 'noteWrite')).toEqual([]);
  });
});

describe('demoting B everywhere', () => {
  const states = new Map<string, RepoState>([
    ['z.git', state({ b1: 2, b2: 2 })],
    ['a.git', state({ b1: 3, b2: 1 })],
    ['m.git', state({ b2: 1 })],
  ]);

  it('plans every repository B is involved in, by name', async () => {
    const plans = await planDemoteAll('b1', {
      async *repositories() {
        yield ['z.git', 'm.git'];
        yield ['a.git'];
      },
      read: async (repo) => states.get(repo)!,
    });
    expect(plans.map((p) => [p.repo, p.onlyLeader])).toEqual([
      ['a.git', true],
      ['z.git', false],
    ]);
  });

  it('leaves alone a repository that moved since it was counted, and goes on past one that fails', async () => {
    const plans = [planDemote('a.git', 'b1', state({ b1: 3, b2: 1 }), [])!, planDemote('y.git', 'b1', state({ b1: 1 }), [])!, planDemote('z.git', 'b1', state({ b1: 2, b2: 2 }), [])!];
    const now = new Map<string, RepoState>([
      ['a.git', state({ b1: 4, b2: 1 })],
      ['z.git', state({ b1: 2, b2: 2 })],
    ]);
    const { calls, parts } = fakeParts({ demote: ['OK,2'] });
    const all: DemoteAllParts = {
      ...parts,
      read: async (repo) => {
        const s = now.get(repo);
        if (!s) throw new Error('Redis went away');
        return s;
      },
      readLog: async () => [],
    };
    const done: string[] = [];
    const results = await applyDemoteAll(plans, 'op', all, (repo) => done.push(repo));
    expect(results.map((r) => [r.repo, r.status, r.reason ?? ''])).toEqual([
      ['a.git', 'changed', 'a.git changed since it was counted; not demoted: run again'],
      ['y.git', 'changed', 'y.git: Redis went away'],
      ['z.git', 'demoted', ''],
    ]);
    expect(done).toEqual(['a.git', 'y.git', 'z.git']);
    expect(calls.filter(([c]) => c === 'demote').map((c) => c[1])).toEqual(['z.git']);
  });
});

describe('promote', () => {
  const refs = [
    { name: 'HEAD', oid: 'a'.repeat(40) },
    { name: 'refs/heads/main', oid: 'a'.repeat(40) },
    { name: 'refs/tags/v1', oid: 'b'.repeat(40) },
  ];

  it('refuses under maintenance and while leaders githa trusts exist', () => {
    expect(promoteRefusal(state({ b1: 1 }, { frozen: frozen('maintenance', 'githa lock by x') }))).toEqual({ kind: 'maintenance', detail: 'githa lock by x' });
    expect(promoteRefusal(state({ b2: 3, b1: 3, b3: 2 }))).toEqual({ kind: 'unambiguous', max: 3, leaders: ['b1', 'b2'] });
    expect(promoteRefusal(state({ b1: 3 }, { frozen: frozen('ambiguous', '', ['b1', 'b2']) }))).toBeUndefined();
    expect(promoteRefusal(state({}))).toBeUndefined();
    // Every leader drifted: githa cannot tell which copy is right.
    expect(promoteRefusal(state({ b1: 3, b2: 2 }, { drift: new Map([['b1', { checksum: 'd', at: 1 }]]) }))).toBeUndefined();
  });

  it('plans B above everything recorded with its checksum, HEAD not counted', () => {
    expect(planPromote(R, 'b2', state({ b1: 5 }, { frozen: frozen('ambiguous', '') }), refs)).toEqual({
      repo: R,
      backend: 'b2',
      checksum: refsChecksum(refs),
      refCount: 2,
      version: 6,
      lifts: 'ambiguous',
    });
  });

  it('names the other copies: unreachable, missing or their refs; other errors are not swallowed', async () => {
    const copies = await otherCopies('b2', ['b1', 'b2', 'b3', 'b4'], async (b) => {
      if (b === 'b1') throw new BackendUnavailableError('refused', 'b1');
      return b === 'b3' ? null : refs;
    });
    expect(copies).toEqual([
      { backend: 'b1', status: 'unreachable' },
      { backend: 'b3', status: 'missing' },
      { backend: 'b4', status: 'copy', refs },
    ]);
    await expect(otherCopies('b2', ['b1'], async () => Promise.reject(new TypeError('bug')))).rejects.toThrow('bug');
  });

  it('applies only while B still holds what was shown', async () => {
    const plan = planPromote(R, 'b2', state({}), refs);
    const changed = fakeParts({ refs: [[...refs, { name: 'refs/heads/new', oid: 'c'.repeat(40) }]] });
    expect(await applyPromote(plan, 'op', changed.parts as PromoteParts)).toEqual({ status: 'changed' });
    expect(changed.calls.map(([c]) => c)).toEqual(['lock', 'readRefs']);

    const ok = fakeParts({ refs: [refs], promote: ['OK,1'] });
    expect(await applyPromote(plan, 'op', ok.parts as PromoteParts)).toEqual({ status: 'promoted', version: 1, kept: [], checksum: plan.checksum });
    expect(ok.calls).toEqual([
      ['lock', R],
      ['readRefs', 'b2'],
      ['promote', R, 'tok', 'b2', plan.checksum, { user: 'op', refs: 2 }],
      ['noteWrite', R, 'b2', 1],
    ]);

    // Other copies' commits kept on B first: B is recorded with what it holds then, kept refs included.
    const after = [...refs, { name: 'refs/githa/kept/b1/20261206T000000Z/heads/main', oid: 'c'.repeat(40) }];
    const keeping = fakeParts({ refs: [refs, after], promote: ['OK,1'] });
    const kept = [{ ref: after[2]!.name, original: 'refs/heads/main', oid: 'c'.repeat(40), from: 'b1' }];
    const keepParts = { ...keeping.parts, keepOthers: async () => kept } as PromoteParts;
    expect(await applyPromote(plan, 'op', keepParts)).toEqual({ status: 'promoted', version: 1, kept, checksum: refsChecksum(after) });
    expect(keeping.calls.find(([c]) => c === 'promote')).toEqual(['promote', R, 'tok', 'b2', refsChecksum(after), { user: 'op', refs: 2, kept: 1 }]);

    const refused = fakeParts({ refs: [refs, refs, refs], promote: ['UNAMBIGUOUS,3', 'MAINTENANCE', 'LOCK'] });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await applyPromote(plan, 'op', refused.parts as PromoteParts)).status);
    expect(statuses).toEqual(['unambiguous', 'maintenance', 'lock-lost']);
    expect(refused.calls.filter(([c]) => c === 'noteWrite')).toEqual([]);
  });
});
