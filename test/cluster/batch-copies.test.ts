/**
 * BatchCopies (src/cluster/batch-copies.ts): one admin `refs` call per
 * backend per batch; the Git protocol for backends without admin, for `ask`
 * answers and for a backend whose call failed; a fresh listing once the
 * repository has a record (it may have been written since the batch).
 */
import { describe, expect, it } from 'vitest';
import type { AdminRefs, RefTip } from '../../src/backends/types.js';
import { BatchCopies } from '../../src/cluster/batch-copies.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { BackendAdminError } from '../../src/errors.js';

const A: RefTip[] = [{ name: 'refs/heads/main', oid: 'a'.repeat(40) }];
const B: RefTip[] = [{ name: 'refs/heads/main', oid: 'b'.repeat(40) }];

function setup(o: { admins: Record<string, (repos: readonly string[]) => Promise<AdminRefs>>; protocol: Record<string, RefTip[] | null>; recorded?: boolean }) {
  const listRefs: string[] = [];
  const refsCalls: string[] = [];
  const ids = ['b1', 'b2', 'b3'];
  const ctx = {
    repos: { read: async () => ({ versions: new Map(o.recorded ? [['b1', 1]] : []), gone: undefined }) },
    backends: {
      activeBackends: () => ids.map((id) => ({ id })),
      admin: (id: string) => {
        const f = o.admins[id];
        return f
          ? {
              refs: async (repos: readonly string[]) => {
                refsCalls.push(`${id}:${repos.join(',')}`);
                return f(repos);
              },
            }
          : undefined;
      },
      client: (id: string) => ({
        listRefs: async (repo: string) => {
          listRefs.push(`${id}:${repo}`);
          return o.protocol[id] ?? null;
        },
      }),
    },
    health: { markDown: () => {} },
    log: { warn: () => {} },
  };
  const fallback = { compareCopies: async () => ({ copies: new Map([['fresh', 'x']]), missing: [], unreachable: [] }) };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a fake context: only what BatchCopies reads
  return { copies: new BatchCopies(ctx as any, fallback), listRefs, refsCalls };
}

describe('BatchCopies', () => {
  it('answers from one admin call per backend, the protocol where there is no admin or the admin says ask', async () => {
    const { copies, listRefs, refsCalls } = setup({
      admins: {
        b1: async () => new Map<string, RefTip[] | null | undefined>([['x.git', A], ['y.git', null]]),
        b2: async () => new Map<string, RefTip[] | null | undefined>([['x.git', undefined], ['y.git', A]]),
      },
      protocol: { b2: B, b3: A },
    });
    await copies.load(['x.git', 'y.git']);
    expect(refsCalls).toEqual(['b1:x.git,y.git', 'b2:x.git,y.git']);
    const x = await copies.compareCopies('x.git');
    expect(Object.fromEntries(x.copies)).toEqual({ b1: refsChecksum(A), b2: refsChecksum(B), b3: refsChecksum(A) });
    const y = await copies.compareCopies('y.git');
    expect(Object.fromEntries(y.copies)).toEqual({ b2: refsChecksum(A), b3: refsChecksum(A) });
    expect(y.missing).toEqual(['b1']);
    expect(listRefs.sort()).toEqual(['b2:x.git', 'b3:x.git', 'b3:y.git']);
  });

  it('a failed admin call: that backend over the protocol', async () => {
    const { copies, listRefs } = setup({
      admins: {
        b1: async () => {
          throw new BackendAdminError('backend b1: refs failed', 'b1');
        },
      },
      protocol: { b1: A, b2: A, b3: A },
    });
    await copies.load(['x.git']);
    expect(new Set((await copies.compareCopies('x.git')).copies.values())).toEqual(new Set([refsChecksum(A)]));
    expect(listRefs.sort()).toEqual(['b1:x.git', 'b2:x.git', 'b3:x.git']);
  });

  it('a repository recorded since the batch was read is listed afresh', async () => {
    const { copies } = setup({ admins: { b1: async () => new Map([['x.git', A]]) }, protocol: {}, recorded: true });
    await copies.load(['x.git']);
    expect([...(await copies.compareCopies('x.git')).copies.keys()]).toEqual(['fresh']);
  });
});
