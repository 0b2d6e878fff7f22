import { describe, expect, it } from 'vitest';
import type { BackendClient } from '../../src/backends/types.js';
import { Backends } from '../../src/cluster/backends.js';
import { catchUp } from '../../src/cluster/catch-up.js';
import { refsChecksum } from '../../src/cluster/checksum.js';
import type { ClusterContext } from '../../src/cluster/context.js';
import { backendAccount, CopyFiller, createCommand, fillRefusal } from '../../src/cluster/fill.js';
import { NO_OBSERVER } from '../../src/cluster/observer.js';
import { CopyRepairer, type CommitSync } from '../../src/cluster/repair.js';
import { CatchUpError, CopyTargetMissingError } from '../../src/errors.js';
import type { Gone, RepoState } from '../../src/state/repo-state.js';
import { MemoryAdmin } from '../support/memory-admin.js';
import { memoryCluster, type FakeBackend } from '../support/memory-cluster.js';

/*
 * Filling a missing copy (docs/architecture.md "Filling a missing copy"), on
 * the in-memory store, fake backends and the in-memory admin account.
 */

const R = 'team/app.git';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const refs = { 'refs/heads/main': A, 'refs/heads/dev': B };
const checksum = refsChecksum(Object.entries(refs).map(([name, oid]) => ({ name, oid })));

/** The admin account of a fake backend: what it creates, the Git client finds (empty); `gate` holds each create until released. */
class LinkedAdmin extends MemoryAdmin {
  readonly heads: (string | undefined)[] = [];
  running = 0;
  most = 0;
  gate: Promise<void> | undefined;

  constructor(private readonly fake: FakeBackend) {
    super(fake.id);
  }

  override async create(repo: string, o?: { headBranch?: string | undefined }): Promise<'created' | 'exists'> {
    this.running++;
    this.most = Math.max(this.most, this.running);
    try {
      await this.gate;
      const status = await super.create(repo);
      this.heads.push(o?.headBranch);
      if (status === 'created') this.fake.set(repo, {});
      return status;
    } finally {
      this.running--;
    }
  }
}

function setup(o: { admin?: boolean; fillConcurrency?: number; repos?: string[] } = {}) {
  const m = memoryCluster(['b1', 'b2', 'b3']);
  const repos = o.repos ?? [R];
  for (const repo of repos) {
    for (const id of ['b1', 'b2']) m.backends.get(id)!.set(repo, refs);
    m.store.seed(repo, { b1: [2, checksum], b2: [2, checksum] });
  }
  const b3 = m.backends.get('b3')!;
  const admin = new LinkedAdmin(b3);
  const config = { ...m.config, repositories: { ...m.config.repositories, fillConcurrency: o.fillConcurrency ?? m.config.repositories.fillConcurrency } };
  const directory = new Backends(config, m.backends as ReadonlyMap<string, BackendClient>, m.ctx.health, o.admin === false ? new Map() : new Map([['b3', admin]]));
  const created: string[] = [];
  const pending: [string, number][] = [];
  const observer = { ...NO_OBSERVER, copyCreated: (b: string) => created.push(b), fillPending: (b: string, n: number) => pending.push([b, n]) };
  const ctx: ClusterContext = { ...m.ctx, config, backends: directory, observer };
  const filler = new CopyFiller(ctx);
  const copy = (repo = R) => () => catchUp(ctx, { repo, source: directory.client('b1'), target: directory.client('b3'), version: 2, checksum });
  return { ...m, ctx, b3, admin, filler, copy, created, pending };
}

/** Makes the store's reads show a tombstone (the lifecycle's markGone is not this module's). */
function tombstone(store: { read(repo: string): Promise<RepoState> }, gone: Gone): void {
  const read = store.read.bind(store);
  store.read = async (repo) => ({ ...(await read(repo)), gone });
}

describe('fillRefusal', () => {
  const state = (s: Partial<RepoState>): RepoState => ({ versions: new Map([['b1', 2]]), checksums: new Map([['b1', checksum]]), suspect: new Map(), drift: new Map(), ...s });
  const ok = { managed: true, enabled: true };

  it('lets a recorded, live, unfrozen repository be created on an enabled, managed backend', () => {
    expect(fillRefusal(state({}), 'b3', ok)).toBeUndefined();
  });

  it('never creates a tombstoned or unrecorded repository, nor on a frozen one, a disabled or an unmanaged backend', () => {
    expect(fillRefusal(state({ gone: { kind: 'deleted', at: 1, by: 'op' } }), 'b3', ok)?.reason).toBe('gone');
    expect(fillRefusal(state({ gone: { kind: 'renaming', to: 'x.git', at: 1, by: 'op' } }), 'b3', ok)?.detail).toBe('the repository is renaming to x.git');
    expect(fillRefusal(state({ versions: new Map(), checksums: new Map() }), 'b3', ok)?.reason).toBe('unrecorded');
    expect(fillRefusal(state({ frozen: { reason: 'ambiguous', detail: '', since: 1 } }), 'b3', ok)?.reason).toBe('frozen');
    expect(fillRefusal(state({}), 'b3', { managed: true, enabled: false })?.reason).toBe('disabled');
    expect(fillRefusal(state({}), 'b3', { managed: false, enabled: true })?.reason).toBe('unmanaged');
  });
});

describe('createCommand', () => {
  const repositories = { initialBranch: 'main', gitConfig: { 'http.receivepack': 'true' } };

  it('names the backend\'s own account and root when its ssh or admin URL gives them', () => {
    expect(createCommand(R, 'b3', 'refs/heads/trunk', { backend: { ssh: 'ssh://git@host:2222/srv/repos' }, repositories })).toBe(
      'on b3 as git: git init --bare --initial-branch=trunk /srv/repos/team/app.git && git --git-dir=/srv/repos/team/app.git config http.receivepack true',
    );
    // An admin account of its own wins over the ssh URL; a root with a space is quoted.
    expect(createCommand(R, 'b3', undefined, { backend: { ssh: 'ssh://git@host/srv', admin: 'ssh://ops@host/data/git repos' }, repositories: { ...repositories, shared: 'group' } })).toBe(
      "on b3 as ops: git init --bare --initial-branch=main --shared=group '/data/git repos/team/app.git' && git --git-dir='/data/git repos/team/app.git' config http.receivepack true",
    );
    expect(backendAccount({ ssh: 'ssh://git@host/~/repos' })).toEqual({ user: 'git', root: '/~/repos' });
    expect(createCommand(R, 'b3', undefined, { backend: { ssh: 'ssh://git@host/~/repos' } })).toBe('on b3 as git: git init --bare --initial-branch=main ~/repos/team/app.git');
  });

  it('falls back to the generic command for a backend without an SSH URL', () => {
    expect(createCommand(R, 'b3', undefined, { backend: {}, repositories })).toContain(`git init --bare --initial-branch=main /srv/git/${R}`);
  });
});

describe('CopyFiller', () => {
  it('creates the missing copy with the leader\'s HEAD branch, then the catch-up fills and records it', async () => {
    const m = setup();
    (m.backends.get('b1') as FakeBackend & { headTarget: () => Promise<string> }).headTarget = async () => 'refs/heads/trunk';
    await expect(m.copy()()).rejects.toBeInstanceOf(CopyTargetMissingError);
    const out = await m.filler.fill(R, 'b3', 'b1', m.copy());
    expect(out.status).toBe('ok');
    expect(m.admin.calls).toEqual([`create ${R}`]);
    expect(m.admin.heads).toEqual(['trunk']);
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(refs);
    const state = await m.store.read(R);
    expect(state.versions.get('b3')).toBe(2);
    expect(state.checksums.get('b3')).toBe(checksum);
    expect(m.created).toEqual(['b3']);
    expect(m.pending).toEqual([['b3', 1], ['b3', 0]]);
    // The write lock was taken for the create and given back.
    expect(m.store.locks.size).toBe(0);
  });

  it('never creates a tombstoned repository', async () => {
    for (const kind of ['deleting', 'deleted', 'renaming', 'renamed'] as const) {
      const m = setup();
      tombstone(m.store, { kind, at: 1, by: 'op', ...(kind.startsWith('renam') ? { to: 'other.git' } : {}) });
      const err = await m.filler.fill(R, 'b3', 'b1', m.copy()).catch((e: unknown) => e);
      expect(err, kind).toBeInstanceOf(CatchUpError);
      expect(String((err as Error).message)).toContain(`is ${kind}`);
      expect(m.admin.calls).toEqual([]);
      expect(m.b3.refs.has(R)).toBe(false);
    }
  });

  it('never creates an unrecorded repository (its record went, e.g. retired by a delete, since the copy was planned)', async () => {
    const m = setup();
    m.store.repos.delete(R);
    await expect(m.filler.fill(R, 'b3', 'b1', m.copy())).rejects.toThrow(/no record/);
    expect(m.admin.calls).toEqual([]);
  });

  it('does not create a copy of a frozen repository', async () => {
    const m = setup();
    m.store.repo(R).frozen = { reason: 'maintenance', detail: 'x', since: '1' };
    await expect(m.filler.fill(R, 'b3', 'b1', m.copy())).rejects.toThrow(/frozen \(maintenance\)/);
    expect(m.admin.calls).toEqual([]);
  });

  it('creates nothing on a backend without admin: the error names the command an operator runs', async () => {
    const m = setup({ admin: false });
    await expect(m.filler.fill(R, 'b3', 'b1', m.copy())).rejects.toThrow(`no backends[].admin); create it with: on b3: sudo -u git git init --bare --initial-branch=main /srv/git/${R}`);
    expect(m.admin.calls).toEqual([]);
    expect(m.pending).toEqual([]);
  });

  it('runs at most repositories.fillConcurrency fills at once, and counts the rest as pending', async () => {
    const repos = Array.from({ length: 6 }, (_, i) => `many/r${i}.git`);
    const m = setup({ fillConcurrency: 2, repos });
    let open!: () => void;
    m.admin.gate = new Promise((r) => (open = r));
    const all = Promise.all(repos.map((repo) => m.filler.fill(repo, 'b3', 'b1', m.copy(repo))));
    // Every fill is queued at once; two creates run, the others wait for a slot.
    await new Promise((r) => setImmediate(r));
    expect(m.filler.pending().get('b3')).toBe(6);
    expect(m.admin.running).toBe(2);
    open();
    const outcomes = await all;
    expect(outcomes.map((o) => o.status)).toEqual(repos.map(() => 'ok'));
    expect(m.admin.most).toBe(2);
    expect(m.filler.pending().size).toBe(0);
    expect(m.pending.at(-1)).toEqual(['b3', 0]);
    expect(Math.max(...m.pending.map(([, n]) => n))).toBe(6);
    for (const repo of repos) expect((await m.store.read(repo)).versions.get('b3')).toBe(2);
  });

  it('does not mark the backend down when its admin account is unreachable', async () => {
    const m = setup();
    m.admin.unreachable = true;
    await expect(m.filler.fill(R, 'b3', 'b1', m.copy())).rejects.toMatchObject({ code: 'GITHA_ERR_BACKEND_ADMIN', backendId: 'b3' });
  });
});

describe('CopyRepairer with a filler', () => {
  function repairSetup(admin: boolean) {
    const m = setup({ admin });
    // b3 is recorded at version 2, but its copy is gone (a replaced, empty disk).
    m.store.seed(R, { b3: [2, checksum] });
    const commitSync: CommitSync = async (repo, token, target, version, sum) => {
      if (m.store.locks.get(repo) !== token) return 'LOCK';
      const r = m.store.repo(repo);
      r.versions[target] = String(version);
      r.checksums[target] = sum;
      delete r.drift[target];
      return 'OK';
    };
    return { ...m, repairer: new CopyRepairer(m.ctx, commitSync, undefined, m.filler) };
  }

  it('creates a missing copy on a managed backend and refills it', async () => {
    const m = repairSetup(true);
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r).toMatchObject({ outcome: 'repaired', kind: 'missing', created: true, source: 'b1', version: 2 });
    expect(m.admin.calls).toEqual([`create ${R}`]);
    expect(Object.fromEntries(m.b3.refs.get(R)!)).toEqual(refs);
    expect((await m.store.read(R)).drift.size).toBe(0);
    expect(m.created).toEqual(['b3']);
  });

  it('reports a missing copy on an unmanaged backend with the command, creating nothing', async () => {
    const m = repairSetup(false);
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r).toMatchObject({ outcome: 'missing', kind: 'missing', command: createCommand(R, 'b3', undefined, { repositories: m.config.repositories }) });
    expect(m.admin.calls).toEqual([]);
    expect((await m.store.read(R)).drift.get('b3')).toMatchObject({ checksum: 'missing', kind: 'missing' });
  });

  it('never creates a tombstoned repository', async () => {
    const m = repairSetup(true);
    m.store.repo(R).drift.b3 = `missing ${Date.now()} missing`;
    tombstone(m.store, { kind: 'deleting', at: 1, by: 'op', stamp: '20261206T074700Z' });
    const r = await m.repairer.repair(R, 'b3', 'test');
    expect(r.outcome).toBe('skipped');
    expect(r.detail).toContain('is deleting');
    expect(m.admin.calls).toEqual([]);
  });
});
