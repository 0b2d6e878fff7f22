import { describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { Cluster } from '../../src/cluster/cluster.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * Reads routed to a copy the transport can use (docs/architecture.md "A
 * read"): when no leader speaks the client's transport (the only one that
 * does is drifted, or stale), a stale copy that does is caught up first and
 * serves, on the in-memory store and fake backends.
 */

const R = 'team/app.git';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const at = (refs: Record<string, string>): string => refsChecksum(Object.entries(refs).map(([name, oid]) => ({ name, oid })));

describe('routeRead', () => {
  it('catches a stale copy up for a transport no leader speaks, and serves from it', async () => {
    const m = memoryCluster(['b1', 'b2', 'b3']);
    const v4 = { 'refs/heads/main': B };
    const v3 = { 'refs/heads/main': A };
    m.backends.get('b1')!.set(R, v4);
    m.backends.get('b2')!.set(R, { 'refs/heads/main': 'c'.repeat(40) });
    m.backends.get('b3')!.set(R, v3);
    // b1 leads (it has no endpoint for this transport), b2 leads too but is drifted, b3 is a version behind.
    m.store.seed(R, { b1: [4, at(v4)], b2: [4, at(v4)], b3: [3, at(v3)] });
    m.store.repo(R).drift.b2 = `${'f'.repeat(64)} ${Date.now()}`;
    const cluster = new Cluster(m.ctx, m.directory);
    const route = await cluster.routeRead(R, (b) => b.id !== 'b1');
    expect(route.candidates.map((b) => b.id)).toEqual(['b3']);
    expect(route.checksums.get('b3')).toBe(at(v4));
    expect(Object.fromEntries(m.backends.get('b3')!.refs.get(R)!)).toEqual(v4);
    expect((await m.store.read(R)).versions.get('b3')).toBe(4);
  });

  it('serves a stale copy another githa is catching up once the record shows it current', async () => {
    const m = memoryCluster(['b1', 'b2']);
    const v4 = { 'refs/heads/main': B };
    m.backends.get('b1')!.set(R, v4);
    m.backends.get('b2')!.set(R, { 'refs/heads/main': A });
    m.store.seed(R, { b1: [4, at(v4)], b2: [3, at({ 'refs/heads/main': A })] });
    // A replicator elsewhere holds b2's copy lock: this githa's catch-up finds it busy.
    const held = await m.ctx.pairs.acquire(R, 'b2', 60_000);
    expect(held).not.toBeNull();
    const cluster = new Cluster(m.ctx, m.directory);
    const routing = cluster.routeRead(R, (b) => b.id === 'b2');
    // The other githa's copy lands and is recorded.
    m.backends.get('b2')!.set(R, v4);
    m.store.seed(R, { b2: [4, at(v4)] });
    const route = await routing;
    await held!.lease.release();
    expect(route.candidates.map((b) => b.id)).toEqual(['b2']);
  });
});
