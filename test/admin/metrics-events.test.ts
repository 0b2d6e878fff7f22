/**
 * The metrics issue 21 asked for, driven through the code paths that report
 * them (in-memory store and fake backends: no Redis, no Git server) and read
 * back from the registry: per-backend request counts with a bounded backend
 * label, catch-up failures by reason, and pushes that missed their quorum.
 */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/admin/metrics.js';
import { catchUp } from '../../src/cluster/catch-up.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { ForwardResult } from '../../src/cluster/types.js';
import { WriteSession } from '../../src/cluster/write-session.js';
import { BackendUnavailableError, QuorumNotReachedError } from '../../src/errors.js';
import { memoryCluster } from '../support/memory-cluster.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const D = 'd'.repeat(40);
const R = 'team/app.git';
const at = (refs: Record<string, string>): string => refsChecksum(Object.entries(refs).map(([name, oid]) => ({ name, oid })));

/** Every sample of a metric, as `labels → value` (labels joined `k=v,…`). */
async function samples(m: Metrics, name: string): Promise<Record<string, number>> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`${name} is not registered`);
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) {
    out[Object.entries(v.labels).map(([k, x]) => `${k}=${String(x)}`).join(',')] = v.value;
  }
  return out;
}

describe('githa_backend_requests_total', () => {
  it('counts requests by the configured backend that served them; any other value is `other`, none is not counted', async () => {
    const m = new Metrics({ backends: ['b1', 'b2'] });
    const base = { transport: 'http' as const, service: 'git-upload-pack', seconds: 0.01, bytes: 10 };
    m.request({ ...base, outcome: 'ok', backend: 'b1' });
    m.request({ ...base, outcome: 'ok', backend: 'b1' });
    m.request({ ...base, transport: 'ssh', service: 'git-receive-pack', outcome: 'committed', backend: 'b2' });
    m.request({ ...base, outcome: 'ok', backend: 'team/secret repo' });
    m.request({ ...base, outcome: 'GITHA_ERR_NO_LEADER' });
    expect(await samples(m, 'githa_backend_requests_total')).toEqual({
      'backend=b1,transport=http,service=git-upload-pack,outcome=ok': 2,
      'backend=b2,transport=ssh,service=git-receive-pack,outcome=committed': 1,
      'backend=other,transport=http,service=git-upload-pack,outcome=ok': 1,
    });
    const { body } = await m.scrape();
    expect(body).not.toContain('secret');
  });
});

describe('githa_catchup_failures_total', () => {
  /** b1 leads at version 4, b2 is stale at 3; catchUp reports to a real Metrics. */
  function setup() {
    const m = memoryCluster(['b1', 'b2']);
    const v3 = { 'refs/heads/main': A };
    const v4 = { 'refs/heads/main': B };
    m.backends.get('b1')!.set(R, v4);
    m.backends.get('b2')!.set(R, v3);
    m.store.seed(R, { b1: [4, at(v4)], b2: [3, at(v3)] });
    const metrics = new Metrics({ backends: ['b1', 'b2'] });
    const ctx = { ...m.ctx, observer: metrics, repairs: { schedule: () => {} } };
    const req = { repo: R, source: m.ctx.backends.client('b1'), target: m.ctx.backends.client('b2'), version: 4, checksum: at(v4) };
    const failures = async (): Promise<Record<string, number>> =>
      Object.fromEntries(Object.entries(await samples(metrics, 'githa_catchup_failures_total')).filter(([, n]) => n > 0));
    return { m, ctx, req, metrics, failures };
  }

  it('exports every reason at 0 from the start, and counts no success', async () => {
    const { ctx, req, metrics, failures } = setup();
    expect((await catchUp(ctx, req)).status).toBe('ok');
    expect(await failures()).toEqual({});
    const all = await samples(metrics, 'githa_catchup_failures_total');
    expect(Object.keys(all)).toContain('reason=target-missing');
    expect(Object.keys(all)).toContain('reason=contradicts');
  });

  it('splits copies not recorded by reason: contradicts, current, mismatch', async () => {
    const contradicts = setup();
    contradicts.m.backends.get('b2')!.refs.get(R)!.set('refs/heads/main', D);
    expect(await catchUp(contradicts.ctx, contradicts.req)).toEqual({ status: 'not-recorded', reason: 'contradicts' });
    expect(await contradicts.failures()).toEqual({ 'reason=contradicts': 1 });

    const current = setup();
    current.m.store.seed(R, { b1: [4, current.req.checksum], b2: [4, current.req.checksum] });
    expect(await catchUp(current.ctx, current.req)).toEqual({ status: 'not-recorded', reason: 'current' });
    expect(await current.failures()).toEqual({ 'reason=current': 1 });

    // The source no longer holds the checksum to copy: its explanation is free text, the label is `mismatch`.
    const mismatch = setup();
    mismatch.m.backends.get('b1')!.refs.get(R)!.set('refs/heads/main', D);
    const out = await catchUp(mismatch.ctx, mismatch.req);
    expect(out.status === 'not-recorded' && out.reason).toMatch(/no longer matches/);
    expect(await mismatch.failures()).toEqual({ 'reason=mismatch': 1 });
  });

  it('splits failed catch-ups by the error that ended them', async () => {
    const cases: [string, (s: ReturnType<typeof setup>) => void][] = [
      ['target-missing', (s) => s.m.backends.get('b2')!.refs.delete(R)],
      ['source-missing', (s) => s.m.backends.get('b1')!.refs.delete(R)],
      // Another push lands on the target between githa's advertisement and its push: receive-pack refuses the stale old id.
      ['refused', (s) => (s.m.backends.get('b2')!.onPush = () => void s.m.backends.get('b2')!.refs.get(R)!.set('refs/heads/main', D))],
      [
        'backend-unavailable',
        (s) =>
          (s.m.backends.get('b1')!.listRefs = async () => {
            throw new BackendUnavailableError('connect ECONNREFUSED', 'b1');
          }),
      ],
    ];
    for (const [reason, arrange] of cases) {
      const s = setup();
      arrange(s);
      await expect(catchUp(s.ctx, s.req), reason).rejects.toThrow();
      expect(await s.failures(), reason).toEqual({ [`reason=${reason}`]: 1 });
      expect(await samples(s.metrics, 'githa_catchup_duration_seconds')).toHaveProperty(['le=+Inf,outcome=failed'], 1);
    }
  });
});

describe('githa_pushes_quorum_missed_total', () => {
  function setup() {
    const m = memoryCluster(['b1', 'b2', 'b3'], { writeQuorum: 2 });
    for (const id of ['b1', 'b2', 'b3']) m.backends.get(id)!.set(R, { 'refs/heads/main': A });
    m.store.seed(R, { b1: [3, at({ 'refs/heads/main': A })], b2: [3, at({ 'refs/heads/main': A })], b3: [3, at({ 'refs/heads/main': A })] });
    const metrics = new Metrics({ backends: ['b1', 'b2', 'b3'] });
    const ctx = { ...m.ctx, observer: metrics };
    const forward = async (target: { id: string }): Promise<ForwardResult> => {
      m.backends.get(target.id)!.refs.get(R)!.set('refs/heads/main', B);
      return { ending: 'complete', report: { unpackOk: true, refs: [{ ref: 'refs/heads/main', ok: true }] }, commands: [{ oldOid: A, newOid: B, ref: 'refs/heads/main' }] };
    };
    const push = () =>
      ctx.writeLocks.withLock(R, async (lock) => new WriteSession(ctx, { repo: R, user: 'u', transport: 'http' }, lock, await m.store.read(R), m.directory.backend('b1')).run(forward));
    const missed = async (): Promise<number> => (await samples(metrics, 'githa_pushes_quorum_missed_total'))[''] ?? NaN;
    return { m, push, missed, metrics };
  }

  it('stays 0 while pushes reach their quorum', async () => {
    const s = setup();
    expect(await s.missed()).toBe(0);
    expect(await s.push()).toMatchObject({ kind: 'committed' });
    expect(await s.missed()).toBe(0);
  });

  it('counts a push recorded with fewer copies than writeQuorum', async () => {
    const s = setup();
    for (const id of ['b2', 'b3']) {
      s.m.backends.get(id)!.onPush = () => {
        throw new Error('disk full');
      };
    }
    await expect(s.push()).rejects.toBeInstanceOf(QuorumNotReachedError);
    // Recorded on b1 alone: the push is not lost, it missed its quorum.
    expect((await s.m.store.read(R)).versions.get('b1')).toBe(4);
    expect(await s.missed()).toBe(1);
    expect(await samples(s.metrics, 'githa_quorum_copies_total')).toEqual({ 'outcome=failed': 2 });
  });
});
