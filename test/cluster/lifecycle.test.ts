import { describe, expect, it } from 'vitest';
import { EMPTY_CHECKSUM, refsChecksum } from '../../src/cluster/checksum.js';
import { Lifecycle } from '../../src/cluster/lifecycle.js';
import { fillRefusal } from '../../src/cluster/fill.js';
import { createByHand, renameByHand, trashByHand } from '../../src/cluster/manual-commands.js';
import { Adoption } from '../../src/cluster/adoption.js';
import { BackendAdminError, BackendNotManagedError, BackendUnavailableError, RepositoryExistsError, RepositoryGoneError, RepositoryNotFoundError } from '../../src/errors.js';
import { LinkedAdmin } from '../support/linked-admin.js';
import { memoryCluster } from '../support/memory-cluster.js';

/*
 * The lifecycle's decisions (docs/operations.md "Repository lifecycle") on
 * the in-memory store, admin accounts and Git clients: what is refused
 * before anything changes, what each command moves and records, and how a
 * rerun finishes an interrupted one.
 */

const R = 'team/app.git';
const S = 'team/renamed.git';
const C = 'c'.repeat(40);
const NOW = new Date('2026-12-06T07:47:00.123Z');
const by = { by: 'alice', via: 'cli' };

/** The checksum of a copy as githa's Git client sees it. */
let checksumOf: (repo: string, id: string) => string;

function setup(ids = ['b1', 'b2', 'b3'], managed = ids) {
  let admins = new Map<string, LinkedAdmin>();
  const m = memoryCluster(ids, { admins: new Proxy(new Map(), { get: (_t, p) => (p === 'get' ? (id: string) => admins.get(id) : undefined) }) });
  admins = new Map(managed.map((id) => [id, new LinkedAdmin(m.backends.get(id)!)]));
  for (const a of admins.values()) for (const [repo] of m.backends.get(a.backend)!.refs) a.repos.add(repo);
  const life = new Lifecycle(m.ctx, () => NOW);
  checksumOf = (repo, id) => refsChecksum([...(m.backends.get(id)!.refs.get(repo) ?? new Map<string, string>())].map(([name, oid]) => ({ name, oid })));
  /** A copy with one commit on a backend (its admin sees it too). */
  const put = (id: string, repo: string, refs: Record<string, string> = { 'refs/heads/main': C }): void => {
    m.backends.get(id)!.set(repo, refs);
    admins.get(id)?.repos.add(repo);
  };
  const calls = (): string[] => [...admins.values()].flatMap((a) => a.calls.filter((c) => c !== 'list').map((c) => `${a.backend} ${c}`));
  return { ...m, admins, life, put, calls, adoption: new Adoption(m.ctx) };
}

describe('Lifecycle.create', () => {
  it('creates the repository on every enabled backend and records each at version 1 with the empty checksum', async () => {
    const t = setup();
    const r = await t.life.create(R, by, { description: 'the app' });
    expect(r).toEqual({ repo: R, status: 'created', backends: ['b1', 'b2', 'b3'], pending: [] });
    const s = await t.store.read(R);
    expect(Object.fromEntries(s.versions)).toEqual({ b1: 1, b2: 1, b3: 1 });
    expect(new Set(s.checksums.values())).toEqual(new Set([EMPTY_CHECKSUM]));
    expect(t.store.repo(R).log).toEqual([{ version: 1, event: 'create', user: 'alice', via: 'cli', backends: 'b1,b2,b3' }]);
    expect(t.calls()).toEqual([`b1 create ${R}`, `b2 create ${R}`, `b3 create ${R}`]);
    expect(t.store.locks.size).toBe(0);
  });

  it('refuses a repository that is recorded, deleted or has refs on some backend, before any backend is touched', async () => {
    const t = setup();
    t.store.seed(R, { b1: [2, 'x'] });
    await expect(t.life.create(R, by)).rejects.toThrow(new RepositoryExistsError(`repository ${R} exists already`));
    const u = setup();
    u.store.repo(R).gone = { kind: 'deleted', at: '1', by: 'bob', stamp: '20261201T000000Z' };
    await expect(u.life.create(R, by)).rejects.toThrow(/was deleted: restore it \(githa restore team\/app\.git\)/);
    const v = setup();
    v.put('b2', R);
    await expect(v.life.create(R, by)).rejects.toThrow(`repository ${R} exists already on b2 (not recorded: githa inventory --track ${R} adopts it)`);
    for (const x of [t, u, v]) expect(x.calls()).toEqual([]);
    expect((await v.store.read(R)).versions.size).toBe(0);
  });

  it('refuses when an enabled backend has no admin, naming the commands to run there, and changes nothing', async () => {
    const t = setup(['b1', 'b2', 'b3'], ['b1']);
    const err = (await t.life.create(R, by).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(BackendNotManagedError);
    expect(err.message).toBe(
      `cannot create ${R} on b2, b3: githa may not manage these backends (no "admin" in its configuration); run by hand, then run the command again:\n` +
        `  on b2: git init --bare --initial-branch=main '<repository root of b2>/${R}' && git --git-dir='<repository root of b2>/${R}' config http.receivepack 'true'\n` +
        `  on b3: git init --bare --initial-branch=main '<repository root of b3>/${R}' && git --git-dir='<repository root of b3>/${R}' config http.receivepack 'true'`,
    );
    expect(t.calls()).toEqual([]);
    expect((await t.store.read(R)).versions.size).toBe(0);
    // The operator ran them: the rerun creates the rest and records every copy.
    t.put('b2', R, {});
    t.put('b3', R, {});
    expect(await t.life.create(R, by)).toEqual({ repo: R, status: 'created', backends: ['b1', 'b2', 'b3'], pending: [] });
    expect(t.calls()).toEqual([`b1 create ${R}`]);
  });

  it('leaves an unreachable backend for the fill, and a rerun after an interrupted create keeps the empty copies it made', async () => {
    const t = setup();
    t.admins.get('b3')!.unreachable = true;
    expect(await t.life.create(R, by)).toEqual({ repo: R, status: 'created', backends: ['b1', 'b2'], pending: ['b3'] });
    expect([...(await t.store.read(R)).versions.keys()].sort()).toEqual(['b1', 'b2']);

    const u = setup();
    u.put('b1', R, {}); // an interrupted create's empty copy, never recorded
    expect((await u.life.create(R, by)).backends).toEqual(['b1', 'b2', 'b3']);
  });
});

describe('Lifecycle.delete', () => {
  it('tombstones the repository, trashes every copy under one UTC stamp and retires the record into the tombstone', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [4, 'x'], b2: [4, 'x'], b3: [3, 'y'] });
    expect(await t.life.delete(R, by)).toEqual({ repo: R, status: 'deleted', stamp: '20261206T074700Z', trashed: ['b1', 'b2', 'b3'], pending: [] });
    const s = await t.store.read(R);
    expect(s.versions.size).toBe(0);
    expect(s.gone).toMatchObject({ kind: 'deleted', stamp: '20261206T074700Z', by: 'alice', at: NOW.getTime() });
    expect(Object.fromEntries(s.gone!.record!.versions)).toEqual({ b1: 4, b2: 4, b3: 3 });
    expect(t.calls()).toEqual(['b1', 'b2', 'b3'].map((b) => `${b} trash ${R} 20261206T074700Z`));
    await expect(t.adoption.known(R, s)).rejects.toThrow(new RepositoryGoneError(`repository ${R} was deleted (an operator can restore it: githa restore ${R})`));
    expect(t.store.repo(R).log.at(-1)).toEqual({ event: 'delete', user: 'alice', stamp: '20261206T074700Z', trashed: 'b1,b2,b3' });
  });

  it('a rerun trashes the copy of a backend that was unreachable, with the same stamp', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [1, 'x'], b2: [1, 'x'], b3: [1, 'x'] });
    t.admins.get('b3')!.unreachable = true;
    expect((await t.life.delete(R, by)).pending).toEqual(['b3']);
    t.admins.get('b3')!.unreachable = false;
    const later = new Lifecycle(t.ctx, () => new Date('2026-12-07T00:00:00Z'));
    expect(await later.delete(R, by)).toEqual({ repo: R, status: 'deleted', stamp: '20261206T074700Z', trashed: ['b3'], pending: [] });
    expect(Object.fromEntries((await t.store.read(R)).gone!.record!.versions)).toEqual({ b1: 1, b2: 1, b3: 1 });
  });

  it('refuses while an unmanaged backend holds a copy, naming the move into the trash, and changes nothing', async () => {
    const t = setup(['b1', 'b2'], ['b1']);
    t.put('b1', R);
    t.put('b2', R);
    t.store.seed(R, { b1: [1, 'x'], b2: [1, 'x'] });
    await expect(t.life.delete(R, by)).rejects.toThrow(`on b2: mkdir -p '<repository root of b2>/.githa-trash/20261206T074700Z/team' && mv '<repository root of b2>/${R}' '<repository root of b2>/.githa-trash/20261206T074700Z/${R}'`);
    expect((await t.store.read(R)).gone).toBeUndefined();
    expect(t.calls()).toEqual([]);
  });

  it('refuses a repository that exists nowhere, and a renamed one with the new name', async () => {
    const t = setup();
    await expect(t.life.delete(R, by)).rejects.toThrow(RepositoryNotFoundError.missing(R));
    t.store.repo(R).gone = { kind: 'renamed', to: S, at: '1', by: 'bob' };
    await expect(t.life.delete(R, by)).rejects.toThrow(`repository ${R} was renamed to ${S}`);
  });
});

describe('Lifecycle.restore', () => {
  it('moves the copies back, restores the saved record and removes the tombstone', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [4, 'x'], b2: [4, 'x'], b3: [3, 'y'] });
    await t.life.delete(R, by);
    expect(await t.life.restore(R, by)).toEqual({ repo: R, status: 'restored', stamp: '20261206T074700Z', backends: ['b1', 'b2', 'b3'], missing: [] });
    const s = await t.store.read(R);
    expect(s.gone).toBeUndefined();
    expect(Object.fromEntries(s.versions)).toEqual({ b1: 4, b2: 4, b3: 3 });
    expect(t.backends.get('b1')!.refs.get(R)).toEqual(new Map([['refs/heads/main', C]]));
    expect(t.store.repo(R).log.at(-1)).toEqual({ event: 'restore', user: 'alice', stamp: '20261206T074700Z', backends: 'b1,b2,b3' });
  });

  it('refuses while a backend cannot be reached, recording nothing; the rerun restores; a copy whose trash is gone is left out of the record', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [2, 'x'], b2: [2, 'x'], b3: [2, 'x'] });
    await t.life.delete(R, by);
    t.admins.get('b2')!.bin.splice(0); // b2's trash was purged
    t.admins.get('b3')!.unreachable = true;
    await expect(t.life.restore(R, by)).rejects.toThrow(BackendUnavailableError);
    expect((await t.store.read(R)).gone?.kind).toBe('deleted');
    t.admins.get('b3')!.unreachable = false;
    expect(await t.life.restore(R, by)).toMatchObject({ backends: ['b1', 'b3'], missing: ['b2'] });
    expect(Object.fromEntries((await t.store.read(R)).versions)).toEqual({ b1: 2, b3: 2 });
  });

  it('refuses a repository that is not deleted', async () => {
    const t = setup();
    t.store.seed(R, { b1: [1, 'x'] });
    await expect(t.life.restore(R, by)).rejects.toThrow(`repository ${R} is not deleted: nothing to restore`);
    await expect(t.life.restore(S, by)).rejects.toThrow(RepositoryNotFoundError.missing(S));
  });
});

describe('Lifecycle.rename', () => {
  it('renames every copy, gives the new name the record and tells clients of the old one where it went', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [5, 'x'], b2: [5, 'x'], b3: [4, 'y'] });
    expect(await t.life.rename(R, S, by)).toEqual({ repo: R, status: 'renamed', to: S, backends: ['b1', 'b2', 'b3'], pending: [] });
    expect(Object.fromEntries((await t.store.read(S)).versions)).toEqual({ b1: 5, b2: 5, b3: 4 });
    const old = await t.store.read(R);
    expect(old.versions.size).toBe(0);
    await expect(t.adoption.known(R, old)).rejects.toThrow(`repository ${R} was renamed to ${S}: point your remote at it`);
    expect(t.backends.get('b1')!.refs.has(S)).toBe(true);
    expect(t.store.repo(S).log).toEqual([{ event: 'rename', user: 'alice', from: R, backends: 'b1,b2,b3' }]);
    expect(t.store.locks.size).toBe(0);
  });

  it('refuses when the new name is taken anywhere (a copy, a record, a tombstone), changing nothing', async () => {
    const t = setup();
    t.put('b1', R);
    t.store.seed(R, { b1: [1, 'x'] });
    t.put('b3', S);
    await expect(t.life.rename(R, S, by)).rejects.toThrow(`cannot rename ${R} to ${S}: ${S} exists already on b3`);
    t.backends.get('b3')!.refs.delete(S);
    t.store.seed(S, { b2: [1, 'y'] });
    await expect(t.life.rename(R, S, by)).rejects.toThrow(`${S} exists already`);
    t.store.repos.delete(S);
    t.store.repo(S).gone = { kind: 'deleted', at: '1', by: 'x' };
    await expect(t.life.rename(R, S, by)).rejects.toThrow(`${S} is a tombstone (deleted)`);
    expect((await t.store.read(R)).gone).toBeUndefined();
    expect(t.calls()).toEqual([]);
  });

  it('a rename interrupted half-way is finished by a rerun', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [2, 'x'], b2: [2, 'x'], b3: [2, 'x'] });
    t.admins.get('b2')!.failNext = 'rename';
    await expect(t.life.rename(R, S, by)).rejects.toThrow(BackendAdminError);
    const mid = await t.store.read(R);
    expect(mid.gone).toMatchObject({ kind: 'renaming', to: S });
    await expect(t.adoption.known(R, mid)).rejects.toThrow(`repository ${R} is being renamed to ${S}; try again in a moment`);
    expect(await t.life.rename(R, S, by)).toMatchObject({ status: 'renamed', backends: ['b2'] });
    expect(Object.fromEntries((await t.store.read(S)).versions)).toEqual({ b1: 2, b2: 2, b3: 2 });
    expect((await t.store.read(R)).gone).toMatchObject({ kind: 'renamed', to: S });
  });

  it('refuses when an unmanaged backend holds a copy, naming the move', async () => {
    const t = setup(['b1', 'b2'], ['b1']);
    t.put('b1', R);
    t.put('b2', R);
    t.store.seed(R, { b1: [1, 'x'], b2: [1, 'x'] });
    await expect(t.life.rename(R, S, by)).rejects.toThrow(`on b2: mkdir -p '<repository root of b2>/team' && mv '<repository root of b2>/${R}' '<repository root of b2>/${S}'`);
    expect((await t.store.read(R)).gone).toBeUndefined();
    // The operator moved b2's copy by hand: the rerun renames the rest (b2's S is R's copy: its recorded checksum).
    const b2 = t.backends.get('b2')!;
    b2.refs.set(S, b2.refs.get(R)!);
    b2.refs.delete(R);
    t.store.seed(R, { b1: [1, checksumOf(R, 'b1')], b2: [1, checksumOf(R, 'b1')] });
    expect(await t.life.rename(R, S, by)).toMatchObject({ status: 'renamed', backends: ['b1'] });
    expect(Object.fromEntries((await t.store.read(S)).versions)).toEqual({ b1: 1, b2: 1 });
  });
});

describe('Lifecycle.purge', () => {
  it('removes trash older than the retention, and the tombstone of a delete that old: the name is free again', async () => {
    const t = setup(['b1']);
    t.put('b1', R);
    t.store.seed(R, { b1: [1, 'x'] });
    const old = new Lifecycle(t.ctx, () => new Date('2026-10-01T00:00:00Z'));
    await old.delete(R, by);
    t.put('b1', S);
    t.store.seed(S, { b1: [1, 'x'] });
    await t.life.delete(S, by);
    const r = await t.life.purge(by);
    expect(r).toEqual({ before: '20261106T074700Z', purged: [{ backend: 'b1', stamp: '20261001T000000Z', repo: R }], freed: [R], skipped: [] });
    expect((await t.store.read(R)).gone).toBeUndefined();
    expect((await t.store.read(S)).gone?.kind).toBe('deleted');
    expect((await t.life.create(R, by)).status).toBe('created');
  });
});

describe('commands by hand', () => {
  it('use the backend\'s root from its ssh or admin URL', () => {
    const repos = { trashDir: '.githa-trash', initialBranch: 'trunk', gitConfig: { 'http.receivepack': 'true' }, shared: 'group' };
    expect(createByHand({ id: 'b2', ssh: 'ssh://git@h:2222/srv/git' }, R, repos, "it's")).toBe(
      `on b2: git init --bare --initial-branch=trunk --shared=group /srv/git/${R} && git --git-dir=/srv/git/${R} config http.receivepack 'true' && printf '%s\\n' 'it'\\''s' > /srv/git/${R}/description`,
    );
    expect(trashByHand({ id: 'b2', admin: 'ssh://adm@h/data/repos', ssh: 'ssh://git@h/srv/git' }, 'app.git', '20261206T074700Z', repos)).toBe(
      'on b2: mkdir -p /data/repos/.githa-trash/20261206T074700Z && mv /data/repos/app.git /data/repos/.githa-trash/20261206T074700Z/app.git',
    );
    expect(renameByHand({ id: 'b2', ssh: 'ssh://git@h/srv/git' }, 'a.git', 'x/b.git')).toBe('on b2: mkdir -p /srv/git/x && mv /srv/git/a.git /srv/git/x/b.git');
  });
});

describe('Lifecycle.purge and leftovers (review)', () => {
  it('does not free the name of a deleted repository while a backend still holds a copy (a leftover) nor while one cannot be asked: a read would adopt that old copy', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    t.store.seed(R, { b1: [1, 'x'], b2: [1, 'x'], b3: [1, 'x'] });
    const old = new Lifecycle(t.ctx, () => new Date('2026-10-01T00:00:00Z'));
    t.admins.get('b3')!.unreachable = true;
    expect((await old.delete(R, by)).pending).toEqual(['b3']);
    t.admins.get('b3')!.unreachable = false;
    // b3 came back with its copy of R (a leftover); the retention passes.
    const r = await t.life.purge(by);
    expect(r.purged.map((p) => p.backend).sort()).toEqual(['b1', 'b2']);
    expect(r.freed).toEqual([]);
    const s = await t.store.read(R);
    expect(s.gone?.kind).toBe('deleted');
    await expect(t.adoption.known(R, s)).rejects.toThrow(RepositoryGoneError);
  });
});

describe('Lifecycle.rename with a backend whose admin account cannot be reached (review)', () => {
  it('records nothing under the new name until every copy moved: the fill never creates the new name next to the old copy, and the rerun finishes', async () => {
    const t = setup();
    for (const id of ['b1', 'b2', 'b3']) t.put(id, R);
    // b3 alone holds version 5.
    t.store.seed(R, { b1: [4, 'x'], b2: [4, 'x'], b3: [5, 'y'] });
    t.admins.get('b3')!.unreachable = true;
    await expect(t.life.rename(R, S, by)).rejects.toThrow(BackendUnavailableError);
    // Until then S has no record (a fill creates nothing for it) and R stays unreachable with its record.
    const s = await t.store.read(S);
    expect(s.versions.size).toBe(0);
    expect(fillRefusal(s, 'b3', { managed: true, enabled: true })?.reason).toBe('unrecorded');
    expect((await t.store.read(R)).gone).toMatchObject({ kind: 'renaming', to: S });
    t.admins.get('b3')!.unreachable = false;
    expect(await t.life.rename(R, S, by)).toMatchObject({ status: 'renamed', backends: ['b3'], pending: [] });
    expect(Object.fromEntries((await t.store.read(S)).versions)).toEqual({ b1: 4, b2: 4, b3: 5 });
    expect(t.backends.get('b3')!.refs.has(S)).toBe(true);
    expect(t.backends.get('b3')!.refs.has(R)).toBe(false);
  });
});

describe('Lifecycle: nesting and disabled backends', () => {
  it('refuses to create or rename into a name that lies inside another repository', async () => {
    const t = setup();
    t.store.seed('team.git', { b1: [1, EMPTY_CHECKSUM] });
    await expect(t.life.create(R, by)).rejects.toThrow(new RepositoryExistsError(`cannot make ${R}: it would lie inside repository team.git`));
    const u = setup();
    // Not recorded, but a backend serves it (a plain `team` directory).
    u.put('b2', 'team.git');
    await expect(u.life.create(R, by)).rejects.toThrow(/inside repository team\.git/);
    u.put('b1', 'solo.git');
    u.put('b2', 'solo.git');
    u.put('b3', 'solo.git');
    u.store.seed('solo.git', { b1: [1, checksumOf('solo.git', 'b1')], b2: [1, checksumOf('solo.git', 'b2')], b3: [1, checksumOf('solo.git', 'b3')] });
    await expect(u.life.rename('solo.git', R, by)).rejects.toThrow(/inside repository team\.git/);
    for (const x of [t, u]) expect(x.calls()).toEqual([]);
    expect((await u.store.read('solo.git')).gone).toBeUndefined();
  });

  it('a rename gives the new name the record of the copies that move only; refused when the newest version is only on a disabled backend', async () => {
    const t = setup();
    for (const b of ['b1', 'b2', 'b3']) t.put(b, R);
    const sum = checksumOf(R, 'b1');
    t.store.seed(R, { b1: [3, sum], b2: [3, sum], b3: [3, sum] });
    t.directory.setOverrides(new Map([['b3', { enabled: false }]]));
    const r = await t.life.rename(R, S, by);
    expect(r.backends).toEqual(['b1', 'b2']);
    // b3 keeps R's copy (a leftover); S's record has no version there, so b3 is filled when it returns, never trusted.
    expect(Object.fromEntries((await t.store.read(S)).versions)).toEqual({ b1: 3, b2: 3 });

    const u = setup();
    for (const b of ['b1', 'b2', 'b3']) u.put(b, R);
    u.store.seed(R, { b1: [2, 'old'], b2: [2, 'old'], b3: [3, checksumOf(R, 'b3')] });
    u.directory.setOverrides(new Map([['b3', { enabled: false }]]));
    const err = (await u.life.rename(R, S, by).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(BackendNotManagedError);
    expect(err.message).toMatch(/the newest version \(3\) is only on b3, which is disabled/);
    expect(u.calls()).toEqual([]);
    expect((await u.store.read(R)).gone).toBeUndefined();
  });
});
