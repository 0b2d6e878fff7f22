import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { ForwardResult } from '../../src/cluster/types.js';
import type { WaitReport } from '../../src/cluster/wait-report.js';
import type { WriteLockService } from '../../src/state/lock.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * The cluster tells a push's waits to the WaitReporter its front end passed
 * in (docs/architecture.md "What the Git user sees while githa waits"),
 * knowing no transport: in-memory store, fake backends, a fake clock.
 */

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const R = 'team/app.git';
const COMMANDS = [{ oldOid: A, newOid: B, ref: 'refs/heads/main' }];

function setup(ids: string[], writeQuorum: number) {
  const m = memoryCluster(ids, { writeQuorum });
  for (const id of ids) m.backends.get(id)!.set(R, { 'refs/heads/main': A });
  m.store.seed(R, Object.fromEntries(ids.map((id) => [id, [3, refsChecksum([{ name: 'refs/heads/main', oid: A }])] as [number, string]])));
  return m;
}

function pushMain(m: ReturnType<typeof setup>): (target: { id: string }) => Promise<ForwardResult> {
  return async (target) => {
    m.backends.get(target.id)!.refs.get(R)!.set('refs/heads/main', B);
    return { ending: 'complete', report: { unpackOk: true, refs: [{ ref: 'refs/heads/main', ok: true }] }, commands: COMMANDS };
  };
}

describe('a push tells its waits', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports the write lock wait from 1 s on, once a second, and its end', async () => {
    vi.useFakeTimers();
    const m = setup(['b1'], 1);
    let waiting!: () => void;
    const asked = new Promise<void>((resolve) => (waiting = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // Another push holds the lock until the gate opens.
    const writeLocks: WriteLockService = {
      withLock: async (repo, fn) => {
        waiting();
        await gate;
        return m.ctx.writeLocks.withLock(repo, fn);
      },
    };
    const cluster = new Cluster({ ...m.ctx, writeLocks }, m.directory);
    const reports: WaitReport[] = [];
    const done = cluster.write({ repo: R, user: 'u', transport: 'http', commands: COMMANDS, waits: { onWait: (r) => reports.push(r) } }, pushMain(m));
    await asked;
    await vi.advanceTimersByTimeAsync(999);
    expect(reports).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_600);
    open();
    await expect(done).resolves.toMatchObject({ kind: 'committed' });
    expect(reports.map((r) => [r.kind, r.repo, r.done])).toEqual([
      ['lock', R, false],
      ['lock', R, false],
      ['lock', R, true],
    ]);
  });

  it('reports the quorum copies while they keep the push from being acknowledged', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = setup(['b1', 'b2'], 2);
    // Another githa copies into b2 right now: the quorum copy waits for its copy lock.
    const pair = `${R}\0b2`;
    m.store.pairs.set(pair, 'other');
    const cluster = new Cluster(m.ctx, m.directory);
    const reports: WaitReport[] = [];
    const done = cluster.write({ repo: R, user: 'u', transport: 'http', commands: COMMANDS, waits: { onWait: (r) => reports.push(r) } }, pushMain(m));
    for (let i = 0; i < 50 && reports.length === 0; i++) await vi.advanceTimersByTimeAsync(100);
    expect(reports.map((r) => r.kind)).toEqual(['copies']);
    m.store.pairs.delete(pair);
    await vi.advanceTimersByTimeAsync(200);
    await expect(done).resolves.toMatchObject({ kind: 'committed' });
    expect(reports.map((r) => [r.kind, r.backends, r.done])).toEqual([
      ['copies', 1, false],
      ['copies', 1, true],
    ]);
    expect((await m.store.read(R)).versions.get('b2')).toBe(4);
  });
});
