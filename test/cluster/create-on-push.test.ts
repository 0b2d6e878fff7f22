import { describe, expect, it } from 'vitest';
import { Cluster } from '../../src/cluster/cluster.js';
import { Lifecycle } from '../../src/cluster/lifecycle.js';
import { RepositoryNotFoundError } from '../../src/errors.js';
import { LinkedAdmin } from '../support/linked-admin.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * Create on push (docs/operations.md "Repository lifecycle"): a push that
 * finds its repository on no backend creates it when
 * repositories.createOnPush is on; otherwise it is told how an operator
 * creates it, while reads keep the plain "not found".
 */

const R = 'team/new.git';

function setup(createOnPush: boolean) {
  const admins = new Map<string, LinkedAdmin>();
  const m = memoryCluster(['b1', 'b2'], { admins });
  for (const [id, b] of m.backends) admins.set(id, new LinkedAdmin(b));
  const ctx = { ...m.ctx, config: { ...m.config, repositories: { ...m.config.repositories, createOnPush } } };
  const cluster = new Cluster(ctx, m.directory, undefined, new Lifecycle(ctx));
  return { ...m, admins, cluster };
}

describe('create on push', () => {
  it('on: the push advertisement creates the repository on every backend, records it and routes to it', async () => {
    const t = setup(true);
    const route = await t.cluster.routeWriteAdvertisement(R, () => true, undefined, 'alice');
    expect(route.candidates.map((b) => b.id).sort()).toEqual(['b1', 'b2']);
    expect(Object.fromEntries((await t.store.read(R)).versions)).toEqual({ b1: 1, b2: 1 });
    expect(t.store.repo(R).log[0]).toMatchObject({ event: 'create', user: 'alice', via: 'push' });
    expect(t.backends.get('b1')!.refs.get(R)).toEqual(new Map());
  });

  it('on: a read of a repository that exists nowhere creates nothing', async () => {
    const t = setup(true);
    await expect(t.cluster.routeRead(R)).rejects.toThrow(RepositoryNotFoundError);
    expect(((await t.cluster.routeRead(R).catch((e: unknown) => e)) as Error).message).toBe(`repository ${R} not found`);
    expect([...t.admins.values()].flatMap((a) => a.calls)).toEqual([]);
  });

  it('off: the push is told how an operator creates it; a read keeps the plain message', async () => {
    const t = setup(false);
    await expect(t.cluster.routeWriteAdvertisement(R)).rejects.toThrow(`repository ${R} not found; an operator creates it with: githa create ${R}`);
    await expect(t.cluster.write({ repo: R, user: 'alice', transport: 'ssh' }, async () => ({}) as never)).rejects.toThrow(`an operator creates it with: githa create ${R}`);
    const read = (await t.cluster.routeRead(R).catch((e: unknown) => e)) as Error;
    expect(read.message).toBe(`repository ${R} not found`);
    expect([...t.admins.values()].flatMap((a) => a.calls)).toEqual([]);
  });
});

describe('create on push for a pusher githa has not verified (review)', () => {
  it('an HTTP passthrough push (the name in Authorization is only claimed, the backend has not answered yet) creates nothing', async () => {
    const t = setup(true);
    await expect(t.cluster.write({ repo: R, user: 'mallory', transport: 'http', unverified: true }, async () => ({}) as never)).rejects.toThrow(`an operator creates it with: githa create ${R}`);
    await expect(t.cluster.routeWriteAdvertisement(R, () => true, undefined, undefined)).rejects.toThrow(`an operator creates it with: githa create ${R}`);
    expect([...t.admins.values()].flatMap((a) => a.calls)).toEqual([]);
    expect((await t.store.read(R)).versions.size).toBe(0);
  });
});
