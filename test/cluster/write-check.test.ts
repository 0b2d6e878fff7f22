import { describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import type { Forward, ForwardResult } from '../../src/cluster/types.js';
import { checksumBefore, undoCommands } from '../../src/cluster/write-check.js';
import { WriteSession } from '../../src/cluster/write-session.js';
import { CopyContradictsRecordError } from '../../src/errors.js';
import { ZERO_OID } from '../../src/protocol/receive-pack-request.js';
import { decodeCommands, encodeCommands, MARKER_COMMANDS_MAX } from '../../src/state/marker-commands.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * Writes are checked against the record (docs/architecture.md "Verified
 * copies"): the target's post-push listing with the push's commands undone
 * must be its recorded pre-push listing, or nothing is recorded.
 */

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const D = 'd'.repeat(40);
const R = 'team/app.git';
const recorded = { 'refs/heads/main': A, 'refs/heads/dev': C };
const before = refsChecksum(Object.entries(recorded).map(([name, oid]) => ({ name, oid })));
const topic = { oldOid: ZERO_OID, newOid: B, ref: 'refs/heads/topic' };

function setup(writeQuorum = 2) {
  const ids = ['b1', 'b2', 'b3'];
  const m = memoryCluster(ids, { writeQuorum });
  for (const id of ids) m.backends.get(id)!.set(R, { ...recorded });
  m.store.seed(R, Object.fromEntries(ids.map((id) => [id, [3, before] as [number, string]])));
  const repairs: [string, string, string][] = [];
  const ctx: ClusterContext = { ...m.ctx, repairs: { schedule: (repo, backend, why) => void repairs.push([repo, backend, why]) } };
  return { ...m, ctx, repairs };
}

/** Pushes a new branch `topic` to b1 as receive-pack would, over a transport that reports or not. */
function pushTopic(m: ReturnType<typeof setup>, reported = true): (target: { id: string }) => Promise<ForwardResult> {
  return async (target) => {
    m.backends.get(target.id)!.refs.get(R)!.set(topic.ref, topic.newOid);
    if (!reported) return { ending: 'complete', commands: [topic] };
    return { ending: 'complete', report: { unpackOk: true, refs: [{ ref: topic.ref, ok: true }] }, commands: [topic] };
  };
}

function session(m: ReturnType<typeof setup>, forward: Forward, commands?: typeof topic[]) {
  return m.ctx.writeLocks.withLock(R, async (lock) => {
    const state = await m.store.read(R);
    return new WriteSession(m.ctx, { repo: R, user: 'u', transport: 'http', ...(commands ? { commands } : {}) }, lock, state, m.directory.backend('b1')).run(forward);
  });
}

describe('undoCommands', () => {
  it('puts back what landed: an update to its old id, a create removed, a delete restored; what did not land stays', () => {
    const live = [
      { name: 'HEAD', oid: B },
      { name: 'refs/heads/main', oid: B },
      { name: 'refs/heads/new', oid: C },
      { name: 'refs/heads/other', oid: D },
    ];
    const undone = undoCommands(live, [
      { oldOid: A, newOid: B, ref: 'refs/heads/main' },
      { oldOid: ZERO_OID, newOid: C, ref: 'refs/heads/new' },
      { oldOid: C, newOid: ZERO_OID, ref: 'refs/heads/gone' },
      { oldOid: A, newOid: C, ref: 'refs/heads/other' },
    ]);
    expect(Object.fromEntries(undone.map((r) => [r.name, r.oid]))).toEqual({ 'refs/heads/main': A, 'refs/heads/gone': C, 'refs/heads/other': D });
    expect(checksumBefore(live, [])).toBe(refsChecksum(live));
  });
});

describe('marker commands', () => {
  it('round-trip, and a list over the cap is not kept at all (unknown, never half)', () => {
    expect(decodeCommands(encodeCommands([topic]))).toEqual([topic]);
    expect(encodeCommands(Array.from({ length: MARKER_COMMANDS_MAX + 1 }, () => topic))).toBeUndefined();
    expect(encodeCommands([{ ...topic, ref: `refs/heads/${'x'.repeat(17_000)}` }])).toBeUndefined();
    expect(decodeCommands(undefined)).toBeUndefined();
  });
});

describe('a push checked against the record', () => {
  it('commits when the target held its record: outside the push, its refs are the recorded ones', async () => {
    const m = setup();
    const out = await session(m, pushTopic(m));
    expect(out).toMatchObject({ kind: 'committed', version: 4, backend: 'b1' });
    expect(m.repairs).toEqual([]);
  });

  it('refuses when the target lost a recorded ref update: nothing recorded, no copy made, the copy drifted and repaired', async () => {
    const m = setup();
    // A crash rolled b1's main back from A to D: the record says A.
    m.backends.get('b1')!.refs.get(R)!.set('refs/heads/main', D);
    const err = await session(m, pushTopic(m)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyContradictsRecordError);
    expect((err as Error).message).toMatch(/not acknowledged.*nothing was recorded.*push again/);
    const state = await m.store.read(R);
    expect(state.writing).toBeUndefined();
    expect([...state.versions.values()]).toEqual([3, 3, 3]);
    expect(state.drift.get('b1')?.checksum).toBe(refsChecksum([...m.backends.get('b1')!.refs.get(R)!].map(([name, oid]) => ({ name, oid }))));
    expect(m.repairs).toEqual([[R, 'b1', 'push found the copy off its record']]);
    // The rolled-back main was not spread: the other copies keep the acknowledged A.
    for (const id of ['b2', 'b3']) expect(m.backends.get(id)!.refs.get(R)!.get('refs/heads/main')).toBe(A);
    // The client's commit stays on b1 for the repair to keep.
    expect(m.backends.get('b1')!.refs.get(R)!.get(topic.ref)).toBe(B);
  });

  it('refuses a push whose reported update the target lost before githa listed it (never acknowledged from it)', async () => {
    const m = setup();
    const update = { oldOid: A, newOid: B, ref: 'refs/heads/main' };
    const forward = async (target: { id: string }): Promise<ForwardResult> => {
      const refs = m.backends.get(target.id)!.refs.get(R)!;
      refs.set(update.ref, update.newOid);
      // receive-pack reported the update, then a crash (or a restore) took it back: the copy holds its record, not the push.
      refs.set(update.ref, update.oldOid);
      return { ending: 'complete', report: { unpackOk: true, refs: [{ ref: update.ref, ok: true }] }, commands: [update] };
    };
    const err = await session(m, forward).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyContradictsRecordError);
    expect([...(await m.store.read(R)).versions.values()]).toEqual([3, 3, 3]);
    expect(m.repairs.map((r) => r[1])).toEqual(['b1']);
  });

  it('refuses a push whose answer had no report when the target was off its record', async () => {
    const m = setup();
    m.backends.get('b1')!.refs.get(R)!.delete('refs/heads/dev');
    const err = await session(m, pushTopic(m, false), [topic]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyContradictsRecordError);
    expect((await m.store.read(R)).versions.get('b1')).toBe(3);
    expect(m.repairs.map((r) => r[1])).toEqual(['b1']);
  });

  it('commits a push without a report when the target held its record', async () => {
    const m = setup();
    const out = await session(m, pushTopic(m, false), [topic]);
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
  });
});

describe('a write\'s commands in its marker', () => {
  it('HTTP: the marker holds them from the start', async () => {
    const m = setup(1);
    let seen: unknown;
    await session(m, async (t) => {
      seen = (await m.store.read(R)).writing?.commands;
      return pushTopic(m)(t);
    }, [topic]);
    expect(seen).toEqual([topic]);
  });

  it('SSH/git://: recorded when the transport hands them over, and kept when the answer is lost', async () => {
    const m = setup(1);
    let seen: unknown;
    const out = await session(m, async (_t, _signal, hooks) => {
      await hooks.commands([topic]);
      seen = (await m.store.read(R)).writing?.commands;
      return { ending: 'unknown' };
    });
    expect(seen).toEqual([topic]);
    expect(out.kind).toBe('interrupted');
    expect((await m.store.read(R)).writing?.commands).toEqual([topic]);
  });

  it('a lost answer that named its commands leaves them in the marker', async () => {
    const m = setup(1);
    await session(m, async () => ({ ending: 'unknown', commands: [topic] }));
    expect((await m.store.read(R)).writing?.commands).toEqual([topic]);
  });
});

describe('undoCommands with a symbolic ref besides HEAD', () => {
  const main = { oldOid: A, newOid: B, ref: 'refs/heads/main' };
  it('moves an alias of a pushed branch back with it', () => {
    const live = [
      { name: 'refs/heads/main', oid: B },
      { name: 'refs/heads/master', oid: B, symrefTarget: 'refs/heads/main' },
      { name: 'refs/heads/dev', oid: C },
    ];
    expect(checksumBefore(live, [main])).toBe(refsChecksum([{ name: 'refs/heads/main', oid: A }, { name: 'refs/heads/master', oid: A }, { name: 'refs/heads/dev', oid: C }]));
  });
  it('drops an alias whose target the push created (a dangling symbolic ref is not listed)', () => {
    const live = [
      { name: 'refs/heads/main', oid: B },
      { name: 'refs/heads/master', oid: B, symrefTarget: 'refs/heads/main' },
    ];
    expect(undoCommands(live, [{ oldOid: ZERO_OID, newOid: B, ref: 'refs/heads/main' }])).toEqual([]);
  });
  it('leaves an alias of a branch the push did not touch, and a real ref that happens to be at the pushed id', () => {
    const live = [
      { name: 'refs/heads/main', oid: B },
      { name: 'refs/heads/dev', oid: B },
      { name: 'refs/heads/stable', oid: D, symrefTarget: 'refs/heads/release' },
    ];
    expect(undoCommands(live, [main])).toEqual([
      { name: 'refs/heads/main', oid: A },
      { name: 'refs/heads/dev', oid: B },
      { name: 'refs/heads/stable', oid: D },
    ]);
  });
});
