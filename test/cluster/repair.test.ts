import { describe, expect, it } from 'vitest';
import { refsChecksum } from '../../src/cluster/checksum.js';
import { candidateTips, keptRefName } from '../../src/cluster/kept.js';
import { CopyRepairer, createCommand, type CommitSync } from '../../src/cluster/repair.js';
import { memoryCluster } from '../support/memory-cluster.js';
import { waitFor } from '../support/wait.js';

/*
 * The repair's decisions (docs/architecture.md "Verified copies"), on the
 * in-memory RepositoryStore and fake backends: which copy is drift, what is
 * kept, what is refilled and recorded.
 */

const R = 'team/app.git';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const X = 'c'.repeat(40);
const Y = 'd'.repeat(40);
const O = 'e'.repeat(40);
const recordedRefs = { 'refs/heads/main': B, 'refs/heads/dev': A };
const recorded = refsChecksum(Object.entries(recordedRefs).map(([name, oid]) => ({ name, oid })));
const checksumOf = (refs: Map<string, string> | undefined): string => refsChecksum([...(refs ?? [])].map(([name, oid]) => ({ name, oid })));

function setup() {
  const m = memoryCluster(['b1', 'b2', 'b3']);
  for (const id of ['b1', 'b2', 'b3']) {
    m.backends.get(id)!.set(R, recordedRefs);
    m.backends.get(id)!.objects.set(R, new Set([O])); // an older commit every copy has
  }
  m.store.seed(R, { b1: [3, recorded], b2: [3, recorded], b3: [3, recorded] });
  // SYNC_COMMIT's rules: the target takes the source's version and checksum, and its drift entry goes.
  const syncs: Record<string, unknown>[] = [];
  const commitSync: CommitSync = async (repo, token, target, version, checksum, source, log) => {
    if (m.store.locks.get(repo) !== token) return 'LOCK';
    const r = m.store.repo(repo);
    r.versions[target] = String(version);
    r.checksums[target] = checksum;
    delete r.drift[target];
    syncs.push({ target, version, source, ...log });
    return 'OK';
  };
  const repairer = new CopyRepairer(m.ctx, commitSync);
  return { ...m, repairer, syncs, commitSync, b3: m.backends.get('b3')! };
}

describe('candidateTips', () => {
  it('names the copy\'s refs whose object differs from the leader\'s and is none of its tips', () => {
    const leader = [{ name: 'refs/heads/main', oid: B }, { name: 'refs/heads/dev', oid: A }];
    const copy = [{ name: 'HEAD', oid: X }, { name: 'refs/heads/main', oid: X }, { name: 'refs/heads/dev', oid: B }, { name: 'refs/tags/v1', oid: A }, { name: 'refs/heads/new', oid: Y }];
    expect(candidateTips(leader, copy)).toEqual([{ name: 'refs/heads/main', oid: X }, { name: 'refs/heads/new', oid: Y }]);
  });

  it('names kept refs by backend, UTC second and the ref without refs/', () => {
    expect(keptRefName('b3', new Date('2026-12-06T04:50:35.123Z'), 'refs/heads/main')).toBe('refs/githa/kept/b3/20261206T045035Z/heads/main');
  });
});

describe('CopyRepairer', () => {
  it('does nothing to a copy that holds what its record says', async () => {
    const m = setup();
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r.outcome).toBe('agrees');
    expect((await m.store.read(R)).drift.size).toBe(0);
    expect(m.syncs).toEqual([]);
  });

  it('refills a copy whose ref went back to a commit the leaders have, keeping nothing', async () => {
    const m = setup();
    m.b3.refs.get(R)!.set('refs/heads/main', O);
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r).toMatchObject({ outcome: 'repaired', kind: 'behind', kept: [], source: 'b1', version: 3 });
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(recordedRefs);
    expect(m.backends.get('b1')!.refs.get(R)!.size).toBe(2);
    const state = await m.store.read(R);
    expect(state.drift.size).toBe(0);
    expect(state.versions.get('b3')).toBe(3);
    expect(m.store.repo(R).log.filter((e) => e.event === 'drift')).toHaveLength(1);
    expect(m.syncs).toEqual([expect.objectContaining({ target: 'b3', version: 3, source: 'b1', user: 'githa', by: 'repair', kind: 'behind' })]);
  });

  it('refills an empty (re-initialised) copy', async () => {
    const m = setup();
    m.b3.set(R, {});
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r).toMatchObject({ outcome: 'repaired', kind: 'empty', kept: [] });
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(recordedRefs);
  });

  it('keeps the commits only a divergent copy has on a leader, as a new version, before refilling it', async () => {
    const m = setup();
    m.b3.refs.get(R)!.set('refs/heads/main', X);
    m.b3.refs.get(R)!.set('refs/heads/oob', Y);
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r.outcome).toBe('repaired');
    expect(r.kind).toBe('divergent');
    expect(r.kept.map((k) => [k.original, k.oid])).toEqual([['refs/heads/main', X], ['refs/heads/oob', Y]]);
    for (const k of r.kept) expect(k.ref).toMatch(/^refs\/githa\/kept\/b3\/\d{8}T\d{6}Z\/heads\/(main|oob)$/);
    // The pack came from b3: want its lacking tips, have the leader's.
    expect(m.b3.fetches).toEqual([{ repo: R, wants: [X, Y], haves: expect.arrayContaining([A, B]) }]);
    // The keeping write is a push on b1 at max + 1 by githa; b3 is refilled to it and leads again.
    const b1 = m.backends.get('b1')!.refs.get(R)!;
    for (const k of r.kept) expect(b1.get(k.ref)).toBe(k.oid);
    expect(m.store.repo(R).log.find((e) => e.event === 'push')).toMatchObject({ version: 4, backend: 'b1', user: 'githa', transport: 'repair' });
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(Object.fromEntries(b1));
    const state = await m.store.read(R);
    expect(state.versions.get('b3')).toBe(4);
    expect(state.checksums.get('b3')).toBe(checksumOf(b1));
    expect(state.drift.size).toBe(0);
  });

  it('leaves a missing repository drifted as missing, with the command that creates it', async () => {
    const m = setup();
    m.b3.refs.delete(R);
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r).toMatchObject({ outcome: 'missing', kind: 'missing', command: createCommand(R, 'b3') });
    expect(r.command).toContain(`git init --bare --initial-branch=main /srv/git/${R}`);
    const drift = (await m.store.read(R)).drift.get('b3');
    expect(drift).toMatchObject({ checksum: 'missing', kind: 'missing' });
    expect(m.syncs).toEqual([]);
  });

  it('demotes the only leader when it lost its copy (empty or missing): the copies at the next version lead again', async () => {
    for (const lost of ['empty', 'missing'] as const) {
      const m = setup();
      // b3 alone at version 4 (a push recorded without its write quorum), then its copy was lost.
      m.store.seed(R, { b3: [4, 'f'.repeat(64)] });
      if (lost === 'empty') m.b3.set(R, {});
      else m.b3.refs.delete(R);
      const demoted: unknown[] = [];
      const repairer = new CopyRepairer(m.ctx, async () => 'OK', async (repo, token, backend, version, max) => {
        demoted.push([backend, version, max]);
        const r = m.store.repo(repo);
        if (m.store.locks.get(repo) !== token) return 'LOCK';
        delete r.versions[backend];
        delete r.checksums[backend];
        delete r.drift[backend];
        return 'OK';
      });
      const r = await repairer.repair(R, 'b3', 'test');
      expect(r, lost).toMatchObject({ outcome: 'demoted', kind: lost, version: 3 });
      expect(demoted).toEqual([['b3', 4, 4]]);
      expect((await m.store.read(R)).versions.has('b3')).toBe(false);
    }
  });

  it('leaves the only leader for an operator when it holds anything', async () => {
    const m = setup();
    m.store.seed(R, { b3: [4, 'f'.repeat(64)] });
    m.b3.refs.get(R)!.set('refs/heads/main', X);
    const repairer = new CopyRepairer(m.ctx, async () => 'OK', async () => {
      throw new Error('must not demote a copy that holds commits');
    });
    expect((await repairer.repair(R, 'b3', 'test')).outcome).toBe('failed');
  });

  it('marks no drift while a write is landing on the copy', async () => {
    const m = setup();
    m.b3.refs.get(R)!.set('refs/heads/main', X);
    m.store.repo(R).writing = { id: 'w', backend: 'b3', copies: '' };
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r.outcome).toBe('skipped');
    expect((await m.store.read(R)).drift.size).toBe(0);
    expect(m.b3.refs.get(R)!.get('refs/heads/main')).toBe(X);
  });

  it('overwrites nothing when the commits could not be kept', async () => {
    const m = setup();
    m.b3.refs.get(R)!.set('refs/heads/oob', Y);
    m.backends.get('b1')!.pushPack = async () => ({ unpackOk: false, unpackError: 'index-pack failed', refs: [] });
    m.backends.get('b2')!.pushPack = m.backends.get('b1')!.pushPack;
    const r = await m.repairer.repair(R, 'b3', 'test').catch((err: Error) => err);
    expect(r).toBeInstanceOf(Error);
    expect(m.b3.refs.get(R)!.get('refs/heads/oob')).toBe(Y);
    expect((await m.store.read(R)).drift.has('b3')).toBe(true);
  });

  it('runs one repair per copy at a time however often it is scheduled', async () => {
    const m = setup();
    m.b3.refs.get(R)!.set('refs/heads/main', O);
    let listings = 0;
    const list = m.b3.listRefs.bind(m.b3);
    m.b3.listRefs = async (repo) => {
      listings++;
      return list(repo);
    };
    for (let i = 0; i < 5; i++) m.repairer.schedule(R, 'b3', 'read');
    await m.repairer.idle();
    expect(m.syncs).toHaveLength(1);
    expect(listings).toBe(4); // the check, the listing under the lock, the copy's advertisement and its check after the push
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(recordedRefs);
  });
});

describe('CopyRepairer retries', () => {
  it('tries a failed repair again by itself after the cooldown, with nobody asking again', async () => {
    const m = setup();
    m.b3.refs.get(R)!.set('refs/heads/main', O);
    let refusals = 1;
    // The first record of the refill is refused (as when Redis failed over during the repair), the next one lands.
    const flaky: CommitSync = async (...args) => (refusals-- > 0 ? 'LOCK' : m.commitSync(...args));
    const repairer = new CopyRepairer(m.ctx, flaky, undefined, undefined, { cooldownMs: 50 });
    repairer.schedule(R, 'b3', 'test');
    await repairer.idle();
    expect((await m.store.read(R)).drift.has('b3')).toBe(true);
    // No one schedules it again: the repairer's own retry repairs it.
    await waitFor('the retried repair', async () => !(await m.store.read(R)).drift.has('b3'));
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(recordedRefs);
    repairer.stop();
  });
});
