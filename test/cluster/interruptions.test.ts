import { describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import { InterruptionResolver } from '../../src/cluster/interruptions.js';
import { ZERO_OID } from '../../src/protocol/receive-pack-request.js';
import { encodeCommands } from '../../src/state/marker-commands.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * Interrupted writes and suspect copies adopt a changed copy only when its
 * refs outside the write's own commands are the recorded ones
 * (docs/architecture.md "Failures resolved without a human"), on the
 * in-memory RepositoryStore and fake backends.
 */

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const D = 'd'.repeat(40);
const R = 'team/app.git';
const recorded = { 'refs/heads/main': A };
const before = refsChecksum([{ name: 'refs/heads/main', oid: A }]);
const topic = { oldOid: ZERO_OID, newOid: B, ref: 'refs/heads/topic' };

function setup(config: { onInterruptedWrite?: 'adopt' | 'freeze' } = {}) {
  const m = memoryCluster(['b1', 'b2']);
  for (const id of ['b1', 'b2']) m.backends.get(id)!.set(R, { ...recorded });
  m.store.seed(R, { b1: [3, before], b2: [3, before] });
  const repairs: [string, string][] = [];
  const ctx: ClusterContext = {
    ...m.ctx,
    config: { ...m.config, interruptions: { ...m.config.interruptions, staleAfterMs: 0, ...config } },
    repairs: { schedule: (_repo, backend, why) => void repairs.push([backend, why]) },
  };
  return { ...m, ctx, repairs, resolver: new InterruptionResolver(ctx) };
}

/** The marker a githa that died in the middle of a push to b1 leaves, with or without its commands. */
function plant(m: ReturnType<typeof setup>, commands?: readonly (typeof topic)[]): void {
  const old = String(Date.now() - 60_000);
  m.store.repo(R).writing = {
    id: 'dead', backend: 'b1', proxy: 'ghost', user: 'u', transport: 'ssh', started: old, heartbeat: old, preChecksum: before, copies: 'b2',
    ...(commands ? { commands: encodeCommands(commands)! } : {}),
  };
}

const b1 = (m: ReturnType<typeof setup>) => m.backends.get('b1')!.refs.get(R)!;

describe('resolving an interrupted write', () => {
  it('clears it when the copy is unchanged', async () => {
    const m = setup();
    plant(m);
    expect(await m.resolver.resolve(R)).toBe('cleared');
    expect((await m.store.read(R)).versions.get('b1')).toBe(3);
  });

  it('adopts a copy changed by exactly the write\'s commands', async () => {
    const m = setup();
    plant(m, [topic]);
    b1(m).set(topic.ref, B);
    expect(await m.resolver.resolve(R)).toBe('adopted');
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(4);
    expect(state.writing).toBeUndefined();
    expect(m.repairs).toEqual([]);
  });

  it('adopts nothing from a copy off its record outside the write\'s commands: drifted, repaired', async () => {
    const m = setup();
    plant(m, [topic]);
    b1(m).set(topic.ref, B);
    b1(m).set('refs/heads/main', D); // rolled back (or moved) behind githa's back
    expect(await m.resolver.resolve(R)).toBe('drifted');
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(3);
    expect(state.writing).toBeUndefined();
    expect(state.drift.has('b1')).toBe(true);
    expect(m.repairs).toEqual([['b1', 'interrupted write found the copy off its record']]);
  });

  it('adopts nothing from a changed copy when the write\'s commands are unknown: drifted, repaired (the repair keeps its commits)', async () => {
    const m = setup();
    plant(m);
    b1(m).set(topic.ref, B);
    expect(await m.resolver.resolve(R)).toBe('drifted');
    const state = await m.store.read(R);
    expect(state.writing).toBeUndefined();
    expect(state.versions.get('b1')).toBe(3);
    expect(state.drift.has('b1')).toBe(true);
    expect(m.repairs.map(([b]) => b)).toEqual(['b1']);
  });

  it('drifts a copy whose repository is gone as missing, and clears the marker: writes go on on the other leaders', async () => {
    const m = setup();
    plant(m, [topic]);
    m.backends.get('b1')!.refs.delete(R);
    expect(await m.resolver.resolve(R)).toBe('drifted');
    const state = await m.store.read(R);
    expect(state.writing).toBeUndefined();
    expect(state.drift.get('b1')?.checksum).toBe('missing');
    expect(m.repairs.map(([b]) => b)).toEqual(['b1']);
  });
});

describe('settling a suspect copy', () => {
  /** b1 (and b2, the marker's copy target) suspect after a write that was cleared; the grace period over. */
  async function suspectAfterClear(commands?: readonly (typeof topic)[]) {
    const m = setup();
    plant(m, commands);
    expect(await m.resolver.resolve(R)).toBe('cleared');
    const r = m.store.repo(R);
    for (const b of Object.keys(r.suspect)) {
      const until = String(Date.now() - 1);
      if (r.suspectWrites[b]) r.suspectWrites[b] = r.suspectWrites[b]!.replace(/^\d+/, until);
      r.suspect[b] = until;
    }
    return m;
  }

  it('ends the suspect period of an unchanged copy', async () => {
    const m = await suspectAfterClear([topic]);
    await m.resolver.settleSuspects(R, await m.store.read(R));
    const state = await m.store.read(R);
    expect(state.suspect.size).toBe(0);
    expect(state.versions.get('b1')).toBe(3);
  });

  it('adopts late bytes that are exactly the interrupted write\'s commands', async () => {
    const m = await suspectAfterClear([topic]);
    b1(m).set(topic.ref, B);
    await m.resolver.settleSuspects(R, await m.store.read(R));
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(4);
    expect(state.drift.size).toBe(0);
  });

  it('adopts nothing when the copy changed by more than the write: drifted, repaired', async () => {
    const m = await suspectAfterClear([topic]);
    b1(m).set(topic.ref, B);
    b1(m).set('refs/heads/main', D);
    await m.resolver.settleSuspects(R, await m.store.read(R));
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(3);
    expect(state.drift.has('b1')).toBe(true);
    expect(m.repairs).toEqual([['b1', 'suspect copy off its record']]);
  });

  it('adopts nothing when the write\'s commands are unknown: drifted, repaired', async () => {
    const m = await suspectAfterClear();
    b1(m).set(topic.ref, B);
    await m.resolver.settleSuspects(R, await m.store.read(R));
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(3);
    expect(state.drift.has('b1')).toBe(true);
    expect(m.repairs.map((r) => r[0])).toEqual(['b1']);
  });

  it('leaves a changed copy that fell behind the leaders stale: caught up, not adopted', async () => {
    const m = await suspectAfterClear([topic]);
    m.store.repo(R).versions.b2 = '5';
    b1(m).set(topic.ref, B);
    await m.resolver.settleSuspects(R, await m.store.read(R));
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(3);
    expect(state.drift.has('b1')).toBe(false);
    expect(m.repairs).toEqual([]);
  });
});
