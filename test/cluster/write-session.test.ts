import { describe, expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { WriteSession, TargetUnreachable } from '../../src/cluster/write-session.js';
import { repoFlags } from '../../src/cluster/routing.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { BackendUnavailableError, ClusterStateUnavailableError } from '../../src/errors.js';
import type { ForwardResult } from '../../src/cluster/types.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * The write path's decisions (docs/architecture.md "A push"), on the
 * in-memory RepositoryStore and fake backends: no Redis, no Git server.
 */

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const R = 'team/app.git';
const before = refsChecksum([{ name: 'refs/heads/main', oid: A }]);

function setup(ids = ['b1', 'b2', 'b3'], writeQuorum = 1) {
  const m = memoryCluster(ids, { writeQuorum });
  for (const id of ids) m.backends.get(id)!.set(R, { 'refs/heads/main': A });
  m.store.seed(R, Object.fromEntries(ids.map((id) => [id, [3, before] as [number, string]])));
  return m;
}

/** A forward that lands `main` → B on the target, as a real receive-pack would, and reports it. */
function pushMain(m: ReturnType<typeof setup>): (target: { id: string }) => Promise<ForwardResult> {
  return async (target) => {
    m.backends.get(target.id)!.refs.get(R)!.set('refs/heads/main', B);
    return { ending: 'complete', report: { unpackOk: true, refs: [{ ref: 'refs/heads/main', ok: true }] }, commands: [{ oldOid: A, newOid: B, ref: 'refs/heads/main' }] };
  };
}

async function session(m: ReturnType<typeof setup>, forward: (t: { id: string }) => Promise<ForwardResult>) {
  return m.ctx.writeLocks.withLock(R, async (lock) => {
    const state = await m.store.read(R);
    return new WriteSession(m.ctx, { repo: R, user: 'u', transport: 'http' }, lock, state, m.directory.backend('b1')).run(forward);
  });
}

describe('WriteSession', () => {
  it('commits a push that changed refs at max + 1 and removes the marker', async () => {
    const m = setup();
    const out = await session(m, pushMain(m));
    expect(out).toEqual({ kind: 'committed', version: 4, backend: 'b1' });
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(4);
    expect(state.versions.get('b2')).toBe(3);
    expect(state.writing).toBeUndefined();
    expect(m.store.repo(R).log.at(-1)).toMatchObject({ event: 'push', version: 4, refs: `${A} ${B} refs/heads/main` });
  });

  it('bumps no version when the report says no ref changed', async () => {
    const m = setup();
    const out = await session(m, async () => ({ ending: 'complete', report: { unpackOk: true, refs: [{ ref: 'refs/heads/main', ok: false, reason: 'non-fast-forward' }] } }));
    expect(out.kind).toBe('unchanged');
    expect((await m.store.read(R)).versions.get('b1')).toBe(3);
    expect((await m.store.read(R)).writing).toBeUndefined();
  });

  it('leaves the marker when the answer was lost (whether refs changed is unknown)', async () => {
    const m = setup();
    const out = await session(m, async () => ({ ending: 'unknown' }));
    expect(out.kind).toBe('interrupted');
    expect((await m.store.read(R)).writing?.backend).toBe('b1');
  });

  it('verifies a cut push against the pre-write checksum: unchanged refs clear the marker', async () => {
    const m = setup();
    const out = await session(m, async () => ({ ending: 'cut' }));
    expect(out.kind).toBe('unchanged');
    expect((await m.store.read(R)).writing).toBeUndefined();
  });

  it('gives way to the next leader when nothing reached the target, clearing its marker', async () => {
    const m = setup();
    const err = await session(m, async () => {
      throw new BackendUnavailableError('refused', 'b1', { bytesSent: false });
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetUnreachable);
    expect((await m.store.read(R)).writing).toBeUndefined();
    expect(m.ctx.health.isHealthy('b1')).toBe(false);
  });

  it('takes the marker back when Redis wrote it but its replicas did not confirm (issue 15 item 6)', async () => {
    const m = setup();
    m.store.failNext('beginWrite');
    let forwarded = false;
    const err = await session(m, async (t) => {
      forwarded = true;
      return pushMain(m)(t);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClusterStateUnavailableError);
    expect(forwarded).toBe(false);
    // No marker left behind: no freeze, no suspect backend for a write that never started.
    expect((await m.store.read(R)).writing).toBeUndefined();
  });

  it('copies to exactly writeQuorum − 1 backends, each named in the marker before its copy starts (issue 15 item 2)', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const namedAtPush: string[][] = [];
    for (const id of ['b2', 'b3']) {
      m.backends.get(id)!.onPush = () => namedAtPush.push([id, ...(m.store.repo(R).writing.copies ?? '').split(' ')]);
    }
    const out = await session(m, pushMain(m));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    // One copy, to one backend, which the marker named when the copy arrived.
    expect(namedAtPush).toHaveLength(1);
    const [copied, ...named] = namedAtPush[0]!;
    expect(named).toContain(copied);
    const state = await m.store.read(R);
    expect(state.versions.get(copied!)).toBe(4);
    const other = copied === 'b2' ? 'b3' : 'b2';
    expect(state.versions.get(other)).toBe(3);
    expect(m.backends.get(other)!.refs.get(R)!.get('refs/heads/main')).toBe(A);
  });

  it('a failed quorum copy gives its turn to the next backend, named before it starts', async () => {
    const m = setup(['b1', 'b2', 'b3'], 2);
    const order: string[] = [];
    m.backends.get('b2')!.onPush = () => {
      order.push(`b2:${m.store.repo(R).writing.copies}`);
      throw new Error('disk full');
    };
    m.backends.get('b3')!.onPush = () => order.push(`b3:${m.store.repo(R).writing.copies}`);
    const out = await session(m, pushMain(m));
    expect(out).toMatchObject({ kind: 'committed', version: 4 });
    expect(order).toEqual(['b2:b2', 'b3:b2 b3']);
    expect((await m.store.read(R)).versions.get('b3')).toBe(4);
  });
});

describe('repoFlags', () => {
  it('reads avoid the marker\'s backend and every quorum-copy target it names', () => {
    const m = setup();
    const flags = repoFlags({
      versions: new Map([['b1', 3], ['b2', 3], ['b3', 3]]),
      checksums: new Map(),
      suspect: new Map(),
      drift: new Map(),
      writing: { id: 'w', backend: 'b1', proxy: 'p', user: 'u', transport: 'http', started: 0, heartbeat: 0, preChecksum: '', copies: ['b2'] },
    });
    expect([...(flags.avoid ?? [])].sort()).toEqual(['b1', 'b2']);
    expect(m).toBeDefined();
  });
});

describe('WriteSession, a backend answer without a report', () => {
  it('records no version when the backend answered (a 5xx) and its refs are unchanged', async () => {
    const m = setup();
    const out = await session(m, async () => ({ ending: 'complete' }));
    expect(out.kind).toBe('unchanged');
    const state = await m.store.read(R);
    expect(state.versions.get('b1')).toBe(3);
    expect(state.writing).toBeUndefined();
  });
});

describe('reads during a live push (issue 15 item 2)', () => {
  it('are never served by a backend the live marker names; with no other leader they wait for the commit', async () => {
    const m = setup(['b1', 'b2', 'b3'], 1);
    // Only b1 leads: b2 and b3 are a version behind.
    m.store.seed(R, { b2: [2, before], b3: [2, before] });
    const cluster = new Cluster(m.ctx, m.directory);
    let routed: string[] | undefined;
    let read: Promise<unknown> | undefined;
    await session(m, async (target) => {
      const r = await pushMain(m)(target);
      // The push landed on b1, its marker names b1, its commit has not run: a read must wait, not see it.
      read = cluster.routeRead(R).then((route) => {
        routed = route.candidates.map((b) => b.id);
      });
      await new Promise((t) => setTimeout(t, 100));
      if (routed !== undefined) throw new Error(`a read was routed to ${routed.join(',')} before the push was recorded`);
      return r;
    });
    await read;
    expect(routed).toEqual(['b1']);
    expect((await m.store.read(R)).versions.get('b1')).toBe(4);
  });

  it('wait too when the only leaders the marker spares have no endpoint for the transport (an HTTP read, b2 and b3 SSH-only)', async () => {
    const m = setup(['b1', 'b2', 'b3'], 1);
    const cluster = new Cluster(m.ctx, m.directory);
    const httpOnly = (b: { id: string }): boolean => b.id === 'b1';
    let routed: string[] | undefined;
    let read: Promise<unknown> | undefined;
    await session(m, async (target) => {
      const r = await pushMain(m)(target);
      read = cluster.routeRead(R, httpOnly).then(
        (route) => {
          routed = route.candidates.map((b) => b.id);
        },
        (err: unknown) => {
          routed = [`error: ${(err as Error).message}`];
        },
      );
      await new Promise((t) => setTimeout(t, 100));
      if (routed !== undefined) throw new Error(`a read was answered (${routed.join(',')}) before the push was recorded`);
      return r;
    });
    await read;
    expect(routed).toEqual(['b1']);
  });
});
