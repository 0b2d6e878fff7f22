import { describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import { NO_OBSERVER } from '../../src/cluster/observer.js';
import type { CopyForward, ForwardHooks, ForwardResult } from '../../src/cluster/types.js';
import { WriteSession } from '../../src/cluster/write-session.js';
import { BackendUnavailableError, WriteInterruptedError } from '../../src/errors.js';
import { ZERO_OID, type RefCommand } from '../../src/protocol/receive-pack-request.js';
import type { ReportStatus } from '../../src/protocol/report-status.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * Fan-out writes, the cluster side (docs/architecture.md "Write quorum"): the
 * write session names the copies and holds their pair locks before the push,
 * then judges each copy by listing it. The forward here stands for a
 * transport that sent the same push to the target and the copies: it applies
 * the commands to the fake backends as their receive-packs would.
 */

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const R = 'team/app.git';
const REFS = { 'refs/heads/main': A, 'refs/heads/dev': A };
const before = refsChecksum(Object.entries(REFS).map(([name, oid]) => ({ name, oid })));
const PUSH: RefCommand[] = [
  { oldOid: A, newOid: B, ref: 'refs/heads/main' },
  { oldOid: A, newOid: C, ref: 'refs/heads/dev' },
];

function setup(ids: string[], writeQuorum: number, opts: { fanOut?: boolean } = {}) {
  const m = memoryCluster(ids, { writeQuorum });
  for (const id of ids) m.backends.get(id)!.set(R, { ...REFS });
  m.store.seed(R, Object.fromEntries(ids.map((id) => [id, [3, before] as [number, string]])));
  const repairs: string[] = [];
  const copyOutcomes: string[] = [];
  const ctx: ClusterContext = {
    ...m.ctx,
    config: { ...m.config, replication: { ...m.config.replication, fanOut: opts.fanOut ?? true } },
    repairs: { schedule: (_repo, backend) => void repairs.push(backend) },
    observer: { ...NO_OBSERVER, quorumCopy: (o) => void copyOutcomes.push(o) },
  };
  /** pushPack calls on each backend: a relay's push (the fan-out's own bytes go through the forward, not pushPack). */
  const relayed: string[] = [];
  for (const id of ids) {
    const b = m.backends.get(id)!;
    b.onPush = () => void relayed.push(id);
  }
  return { ...m, ctx, repairs, copyOutcomes, relayed };
}
type M = ReturnType<typeof setup>;

/** Applies `commands` to a backend's refs; reports each `ok`. */
function land(m: M, id: string, commands: readonly RefCommand[]): ReportStatus {
  const refs = m.backends.get(id)!.refs.get(R)!;
  for (const c of commands) {
    if (c.newOid === ZERO_OID) refs.delete(c.ref);
    else refs.set(c.ref, c.newOid);
  }
  const landed = new Set(commands.map((c) => c.ref));
  return { unpackOk: true, refs: PUSH.map((c) => (landed.has(c.ref) ? { ref: c.ref, ok: true } : { ref: c.ref, ok: false, reason: 'failed' })) };
}

const REJECTED: ReportStatus = { unpackOk: true, refs: PUSH.map((c) => ({ ref: c.ref, ok: false, reason: 'hook declined' })) };

type Behaviour = 'accept' | 'reject' | 'cut' | 'die' | 'main-only' | ((m: M, id: string) => CopyForward);

interface Seen {
  copies?: string[];
  marker?: string | undefined;
  pairs?: string[];
}

/** A fan-out forward: the target and each copy do what `behave` says; `map: false` is a transport without fan-out. */
function fanForward(m: M, target: Behaviour, behave: Record<string, Behaviour>, seen: Seen = {}, map = true) {
  const run = (b: Behaviour, id: string): CopyForward => {
    if (typeof b === 'function') return b(m, id);
    if (b === 'accept') return { ending: 'complete', report: land(m, id, PUSH) };
    if (b === 'main-only') return { ending: 'complete', report: land(m, id, PUSH.slice(0, 1)) };
    if (b === 'reject') return { ending: 'complete', report: REJECTED };
    if (b === 'cut') return { ending: 'cut', reason: 'stalled' };
    return { ending: 'unknown', reason: 'connection reset' };
  };
  return async (t: { id: string }, _signal: AbortSignal, hooks: ForwardHooks): Promise<ForwardResult> => {
    seen.copies = hooks.copies.map((b) => b.id);
    seen.marker = m.store.repo(R).writing.copies;
    seen.pairs = [...m.store.pairs.keys()].map((k) => k.split('\0')[1]!).sort();
    const copies = new Map(hooks.copies.map((b) => [b.id, run(behave[b.id] ?? 'cut', b.id)]));
    const mine = run(target, t.id);
    return { ...mine, commands: PUSH, ...(map ? { copies } : {}) };
  };
}

function session(m: M, forward: ReturnType<typeof fanForward>) {
  return m.ctx.writeLocks.withLock(R, async (lock) => {
    const state = await m.store.read(R);
    return new WriteSession(m.ctx, { repo: R, user: 'u', transport: 'http', commands: PUSH }, lock, state, m.directory.backend('b1')).run(forward);
  });
}

/** Interrupted: the marker stays naming b2 for the resolver, and no fan-out pair lock outlives the session. */
async function expectLeftForResolver(m: M, out: unknown): Promise<void> {
  expect(out).toEqual({ kind: 'interrupted', backend: 'b1' });
  expect((await m.store.read(R)).writing?.copies).toEqual(['b2']);
  expect(m.store.pairs.size).toBe(0);
}

const refsOf = (m: M, id: string): Record<string, string> => Object.fromEntries(m.backends.get(id)!.refs.get(R)!);
const pushed = { 'refs/heads/main': B, 'refs/heads/dev': C };

describe('fan-out writes', () => {
  it('makes the copies that took the push with no relay: named in the marker and pair-locked before the push, released after the commit', async () => {
    const m = setup(['b1', 'b2', 'b3', 'b4'], 3);
    const seen: Seen = {};
    const out = await session(m, fanForward(m, 'accept', { b2: 'accept', b3: 'accept' }, seen));
    expect(out).toEqual({ kind: 'committed', version: 4, backend: 'b1' });
    expect(seen).toEqual({ copies: ['b2', 'b3'], marker: 'b2 b3', pairs: ['b2', 'b3'] });
    const state = await m.store.read(R);
    expect(['b1', 'b2', 'b3', 'b4'].map((id) => state.versions.get(id))).toEqual([4, 4, 4, 3]);
    expect(m.relayed).toEqual([]);
    expect(m.backends.get('b1')!.fetches).toEqual([]);
    expect(m.store.pairs.size).toBe(0);
    expect(m.store.repo(R).log.at(-1)).toMatchObject({ copies: 'b2,b3' });
    expect(m.copyOutcomes).toEqual(['fan-out-made', 'fan-out-made']);
  });

  it('a copy that rejected the push (its listing unchanged) is relayed to first', async () => {
    const m = setup(['b1', 'b2', 'b3', 'b4'], 3);
    const out = await session(m, fanForward(m, 'accept', { b2: 'accept', b3: 'reject' }));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(m.relayed).toEqual(['b3']);
    const state = await m.store.read(R);
    expect(['b1', 'b2', 'b3', 'b4'].map((id) => state.versions.get(id))).toEqual([4, 4, 4, 3]);
    expect(refsOf(m, 'b3')).toEqual(pushed);
  });

  it('a copy that took part of the push is brought to the outcome by a relay allowed its landed commands: made, not drifted', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const out = await session(m, fanForward(m, 'accept', { b2: 'main-only' }));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    const state = await m.store.read(R);
    expect(state.versions.get('b2')).toBe(4);
    expect(state.versions.get('b3')).toBe(3);
    expect(state.drift.size).toBe(0);
    expect(m.repairs).toEqual([]);
    expect(refsOf(m, 'b2')).toEqual(pushed);
    expect(m.relayed).toEqual(['b2']);
  });

  it('a copy cut before the pack\'s end (it answered 401) gets the push from the fallback relay first', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const out = await session(m, fanForward(m, 'accept', { b2: () => ({ ending: 'cut', reason: 'HTTP 401' }) }));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(m.relayed).toEqual(['b2']);
    expect((await m.store.read(R)).versions.get('b2')).toBe(4);
    expect(m.store.pairs.size).toBe(0);
  });

  it('a copy dropped as stalled is not relayed to by this push (it would wait on the same slow backend): the quorum comes from another', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const out = await session(m, fanForward(m, 'accept', { b2: 'cut' }));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(m.relayed).toEqual(['b3']);
    const state = await m.store.read(R);
    expect([state.versions.get('b2'), state.versions.get('b3')]).toEqual([3, 4]);
    expect(m.store.pairs.size).toBe(0);
  });

  it('a copy that died mid-push (no answer, no listing) is not made: the quorum comes from another backend', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const b2 = m.backends.get('b2')!;
    const dies = (mm: M, id: string): CopyForward => {
      land(mm, id, PUSH);
      b2.listRefs = async () => {
        throw new BackendUnavailableError('connection refused', 'b2', { bytesSent: false });
      };
      return { ending: 'unknown', reason: 'connection reset' };
    };
    const out = await session(m, fanForward(m, 'accept', { b2: dies }));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    const state = await m.store.read(R);
    expect(state.versions.get('b2')).toBe(3);
    expect(state.versions.get('b3')).toBe(4);
    expect(m.relayed).toEqual(['b3']);
    expect(m.ctx.health.isHealthy('b2')).toBe(false);
    expect(state.drift.size).toBe(0);
    expect(m.store.pairs.size).toBe(0);
  });

  it('the target rejects and a copy accepted: the copy is brought back, the outcome is unchanged, nothing drifts', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const out = await session(m, fanForward(m, 'reject', { b2: 'accept' }));
    expect(out).toEqual({ kind: 'unchanged', backend: 'b1' });
    expect(refsOf(m, 'b2')).toEqual(REFS);
    const state = await m.store.read(R);
    expect(state.writing).toBeUndefined();
    expect(state.drift.size).toBe(0);
    expect([...state.versions.values()]).toEqual([3, 3, 3]);
    expect(m.store.pairs.size).toBe(0);
  });

  it('the target rejects and a copy that may hold the push cannot be listed: interrupted, the marker stays naming it', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    m.backends.get('b2')!.listRefs = async () => {
      throw new BackendUnavailableError('connection refused', 'b2', { bytesSent: false });
    };
    const out = await session(m, fanForward(m, 'reject', { b2: 'die' }));
    await expectLeftForResolver(m, out);
  });

  it('a copy off its record beyond the push is drifted and repaired; the push is acknowledged from the quorum elsewhere', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    // b2 holds a ref its record lacks (a restore, a change behind githa's back).
    m.backends.get('b2')!.refs.get(R)!.set('refs/heads/rogue', C);
    const out = await session(m, fanForward(m, 'accept', { b2: 'accept' }));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    const state = await m.store.read(R);
    expect(state.versions.get('b3')).toBe(4);
    expect(state.versions.get('b2')).toBe(3);
    expect(state.drift.has('b2')).toBe(true);
    expect(m.repairs).toEqual(['b2']);
    // Not overwritten: it still holds what only it has.
    expect(refsOf(m, 'b2')['refs/heads/rogue']).toBe(C);
  });

  it('the target rejects and a copy is off its record beyond the push: interrupted, the marker stays until the resolver drifts it (never a leader with unrecorded refs)', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    m.backends.get('b2')!.refs.get(R)!.set('refs/heads/rogue', C);
    const out = await session(m, fanForward(m, 'reject', { b2: 'accept' }));
    await expectLeftForResolver(m, out);
  });

  it('the target is off its record and a copy took the push: interrupted, the marker stays naming the copy', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    // b1 lost a ref its record has (a rollback): the push lands on a target off its record.
    m.backends.get('b1')!.refs.get(R)!.delete('refs/heads/dev');
    const out = await session(m, fanForward(m, 'main-only', { b2: 'accept' }));
    await expectLeftForResolver(m, out);
  });

  it('a transport that returns no copies map: every named copy counts as cut and is relayed to', async () => {
    const m = setup(['b1', 'b2', 'b3', 'b4'], 3);
    const seen: Seen = {};
    const out = await session(m, fanForward(m, 'accept', {}, seen, false));
    expect(seen.copies).toEqual(['b2', 'b3']);
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(m.relayed.sort()).toEqual(['b2', 'b3']);
    const state = await m.store.read(R);
    expect(['b1', 'b2', 'b3', 'b4'].map((id) => state.versions.get(id))).toEqual([4, 4, 4, 3]);
  });

  it('fanOut false: no copies in the hooks, no copy named before the push, the relay makes the quorum', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2, { fanOut: false });
    const seen: Seen = {};
    const out = await session(m, fanForward(m, 'accept', {}, seen));
    expect(seen).toEqual({ copies: [], marker: undefined, pairs: [] });
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(m.relayed).toEqual(['b2']);
    expect(m.copyOutcomes).toEqual(['copied']);
  });

  it('does not fan out to a copy whose pair lock is held elsewhere: the next leader takes its place', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    m.store.pairs.set(`${R}\0b2`, 'someone-else');
    const seen: Seen = {};
    const out = await session(m, fanForward(m, 'accept', { b2: 'accept', b3: 'accept' }, seen));
    expect(seen.copies).toEqual(['b3']);
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(m.relayed).toEqual([]);
    expect(refsOf(m, 'b2')).toEqual(REFS);
    expect((await m.store.read(R)).versions.get('b3')).toBe(4);
  });

  it('frees the fan-out pair locks when the session throws (the target\'s listing fails)', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    m.backends.get('b1')!.listRefs = async () => {
      throw new BackendUnavailableError('connection refused', 'b1', { bytesSent: false });
    };
    await expect(session(m, fanForward(m, 'accept', { b2: 'accept' }))).rejects.toThrow(BackendUnavailableError);
    expect(m.store.pairs.size).toBe(0);
  });

  it('a target nothing reached while a copy took the push: the marker stays (no other leader takes the push over it)', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const forward = async (_t: { id: string }, _s: AbortSignal, hooks: ForwardHooks): Promise<ForwardResult> => {
      for (const b of hooks.copies) land(m, b.id, PUSH);
      throw new BackendUnavailableError('connection refused', 'b1', { bytesSent: false });
    };
    await expect(session(m, forward)).rejects.toThrow(WriteInterruptedError);
    expect((await m.store.read(R)).writing?.copies).toEqual(['b2']);
    expect(m.store.pairs.size).toBe(0);
  });
  it('tells the transport whether the marker holds the commands (an SSH push): false when Redis failed to record them, so no copy takes the pack', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const answers: boolean[] = [];
    const fan = fanForward(m, 'accept', { b2: 'cut' });
    const forward = async (t: { id: string }, signal: AbortSignal, hooks: ForwardHooks): Promise<ForwardResult> => {
      m.store.failNext('markCommands');
      answers.push(await hooks.commands(PUSH));
      return fan(t, signal, hooks);
    };
    await m.ctx.writeLocks.withLock(R, async (lock) => {
      const state = await m.store.read(R);
      // SSH: the commands are learned while forwarding, not known at the marker.
      return new WriteSession(m.ctx, { repo: R, user: 'u', transport: 'ssh' }, lock, state, m.directory.backend('b1')).run(forward);
    });
    expect(answers).toEqual([false]);
    const ok: boolean[] = [];
    await m.ctx.writeLocks.withLock(R, async (lock) => {
      const state = await m.store.read(R);
      return new WriteSession(m.ctx, { repo: R, user: 'u', transport: 'ssh' }, lock, state, m.directory.backend('b1')).run(async (t, signal, hooks) => {
        ok.push(await hooks.commands([{ oldOid: B, newOid: A, ref: 'refs/heads/main' }]));
        return { ending: 'complete', report: { unpackOk: true, refs: [] }, commands: [] };
      });
    });
    expect(ok).toEqual([true]);
  });

  it('never fans out a command list the marker cannot hold (over its cap): an interruption would leave every copy changed blind', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const many: RefCommand[] = Array.from({ length: 150 }, (_, i) => ({ oldOid: ZERO_OID, newOid: B, ref: `refs/heads/t${i}` }));
    const seen: Seen = {};
    await m.ctx.writeLocks.withLock(R, async (lock) => {
      const state = await m.store.read(R);
      return new WriteSession(m.ctx, { repo: R, user: 'u', transport: 'http', commands: many }, lock, state, m.directory.backend('b1')).run(async (_t, _signal, hooks) => {
        seen.copies = hooks.copies.map((b) => b.id);
        return { ending: 'complete', report: { unpackOk: true, refs: [] }, commands: many };
      });
    });
    expect(seen.copies).toEqual([]);
  });
});
