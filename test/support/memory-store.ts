import { randomUUID } from 'node:crypto';
import { ClusterStateUnavailableError, CommitRefusedError, RepositoryFrozenError } from '../../src/errors.js';
import type { RefCommand } from '../../src/protocol/receive-pack-request.js';
import { Lease, type Held } from '../../src/state/lease.js';
import type { WriteLockService } from '../../src/state/lock.js';
import type { PairLease, PairLocks, Standing } from '../../src/state/pair-locks.js';
import { parseRepoState, type DriftKind, type FreezeReason, type Gone, type RepoState, type SavedRecord } from '../../src/state/repo-state.js';
import { workReason } from '../../src/state/needs-work.js';
import { memCreate, memMarkGone, memRetire, memRevive, memTransfer } from './memory-lifecycle.js';
import {
  suspectEntryCommands,
  type CatchUpRecord,
  type CommitCatchUpResult,
  type CommitWrite,
  type CreateOptions,
  type LogFields,
  type MarkerFields,
  type RepositoryStore,
  type SettleStatus,
  type Versioned,
} from '../../src/state/repository-store.js';
import type { ResolveArgs, SettleArgs } from '../../src/state/scripts/repair.js';

type Hash = Record<string, string>;

interface Repo {
  versions: Hash;
  checksums: Hash;
  writing: Hash;
  frozen: Hash;
  suspect: Hash;
  drift: Hash;
  /** backend → "<until>\n<commands>" (docs/redis.md `suspect-writes`). */
  suspectWrites: Hash;
  /** The tombstone (docs/redis.md `gone`; test/support/memory-lifecycle.ts). */
  gone: Hash;
  /** backend → ms since assigned (docs/redis.md `assigned`); empty: every backend. */
  assigned: Hash;
  /** `factor` of `githa repo factor` / create (docs/redis.md `meta`). */
  meta: Hash;
  log: Record<string, string | number>[];
}

/**
 * The RepositoryStore in memory, with the guarded scripts' rules (the
 * model of Praefect's in-memory RepositoryStore): unit tests of the cluster's
 * decisions run on it without Redis. `failNext` makes the next call of a
 * method run and then throw, as a script whose WAIT failed does.
 */
export class MemoryStore implements RepositoryStore {
  readonly repos = new Map<string, Repo>();
  /** repo → the write-lock token held. */
  readonly locks = new Map<string, string>();
  /** `${repo}\0${backend}` → copy-lock token. */
  readonly pairs = new Map<string, string>();
  /** The repositories the lifecycle put in the index (created, transferred, restored; not retired). */
  readonly index = new Set<string>();
  private failing = new Set<string>();

  failNext(method: keyof RepositoryStore): void {
    this.failing.add(method);
  }

  private after(method: string): void {
    if (this.failing.delete(method)) throw new ClusterStateUnavailableError('cluster state unavailable: 0 of the 1 Redis replica(s) confirmed the change');
  }

  repo(name: string): Repo {
    let r = this.repos.get(name);
    if (!r) this.repos.set(name, (r = { versions: {}, checksums: {}, writing: {}, frozen: {}, suspect: {}, drift: {}, suspectWrites: {}, gone: {}, assigned: {}, meta: {}, log: [] }));
    return r;
  }

  seed(name: string, copies: Record<string, [number, string]>): void {
    const r = this.repo(name);
    for (const [b, [v, c]] of Object.entries(copies)) {
      r.versions[b] = String(v);
      r.checksums[b] = c;
    }
  }

  /** Each backend's use (docs/redis.md `placement`). */
  readonly usage = new Map<string, { repos: number; bytes: number }>();

  async placementUsage(): Promise<ReadonlyMap<string, { repos: number; bytes: number }>> {
    return new Map([...this.usage].map(([b, u]) => [b, { ...u }]));
  }

  async notePlacement(deltas: readonly { backend: string; repos?: number; bytes?: number }[]): Promise<void> {
    for (const d of deltas) {
      const u = this.usage.get(d.backend) ?? { repos: 0, bytes: 0 };
      this.usage.set(d.backend, { repos: u.repos + (d.repos ?? 0), bytes: u.bytes + (d.bytes ?? 0) });
    }
  }

  async reassign(repo: string, token: string, factor: number, add: readonly string[], remove: readonly string[], log: LogFields): Promise<'ok' | 'lock' | 'unsettled'> {
    if (this.locks.get(repo) !== token) return 'lock';
    const r = this.repo(repo);
    if (remove.some((b) => r.drift[b] !== undefined || r.suspect[b] !== undefined)) return 'unsettled';
    const recorded = Object.keys(r.assigned).length > 0;
    for (const b of add) {
      if (recorded && r.assigned[b] === undefined) for (const h of [r.versions, r.checksums, r.drift, r.suspect]) delete h[b];
      r.assigned[b] = String(Date.now());
    }
    for (const b of remove) for (const h of [r.assigned, r.versions, r.checksums, r.drift, r.suspect]) delete h[b];
    r.meta.factor = String(factor);
    r.log.push(log);
    await this.notePlacement([...add.map((backend) => ({ backend, repos: 1 })), ...remove.map((backend) => ({ backend, repos: -1 }))]);
    return 'ok';
  }

  /** Records the assignment (docs/redis.md `assigned`), as the create and move scripts do. */
  assign(name: string, backends: readonly string[]): void {
    this.repo(name).assigned = Object.fromEntries(backends.map((b) => [b, String(Date.now())]));
  }

  private max(r: Repo): number {
    return Math.max(0, ...Object.values(r.versions).map(Number));
  }

  async read(repo: string): Promise<RepoState> {
    const r = this.repo(repo);
    return parseRepoState({ ...r, locked: this.locks.has(repo), epoch: 'mem' });
  }

  async beginWrite(repo: string, token: string, m: MarkerFields): Promise<void> {
    const r = this.repo(repo);
    if (this.locks.get(repo) !== token) throw new CommitRefusedError('lock lost');
    if (r.frozen.reason) throw new RepositoryFrozenError('frozen', 'unknown');
    if (r.writing.id) throw new RepositoryFrozenError('writing', 'write-interrupted');
    r.writing = Object.fromEntries(Object.entries({ ...m, heartbeat: Date.now() }).map(([k, v]) => [k, String(v)]));
    this.after('beginWrite');
  }

  private guard(repo: string, token: string, writeId: string): Repo | undefined {
    const r = this.repo(repo);
    return this.locks.get(repo) === token && r.writing.id === writeId ? r : undefined;
  }

  async heartbeat(repo: string, token: string, writeId: string): Promise<boolean> {
    return this.guard(repo, token, writeId) !== undefined;
  }

  async markCopies(repo: string, token: string, writeId: string, copies: readonly string[]): Promise<boolean> {
    const r = this.guard(repo, token, writeId);
    if (r) r.writing.copies = copies.join(' ');
    return r !== undefined;
  }

  async markCommands(repo: string, token: string, writeId: string, commands: string): Promise<boolean> {
    const r = this.guard(repo, token, writeId);
    if (r) r.writing.commands = commands;
    this.after('markCommands');
    return r !== undefined;
  }

  async abortWrite(repo: string, token: string, writeId: string): Promise<boolean> {
    const r = this.guard(repo, token, writeId);
    if (r) r.writing = {};
    return r !== undefined;
  }

  async commitWrite(repo: string, c: CommitWrite): Promise<number> {
    const r = this.guard(repo, c.token, c.writeId);
    if (!r) throw new CommitRefusedError('refused');
    const version = this.max(r) + 1;
    for (const b of [c.backend, ...c.copies]) {
      r.versions[b] = String(version);
      r.checksums[b] = c.checksum;
    }
    r.log.push({ version, backend: c.backend, copies: c.copies.join(','), ...c.log });
    r.writing = {};
    return version;
  }

  async commitCatchUp(repo: string, c: CatchUpRecord): Promise<CommitCatchUpResult> {
    const r = this.repo(repo);
    if (r.writing.backend === c.target) return { kind: 'writing' };
    if (!c.moveTarget && Object.keys(r.assigned).length > 0 && r.assigned[c.target] === undefined) return { kind: 'unassigned' };
    const current = Number(r.versions[c.target] ?? -1);
    if (current >= c.version) return { kind: 'current', version: current };
    if (!Object.keys(r.versions).some((b) => Number(r.versions[b]) === c.version && r.checksums[b] === c.checksum)) return { kind: 'moved' };
    r.versions[c.target] = String(c.version);
    r.checksums[c.target] = c.checksum;
    return { kind: 'ok', version: c.version };
  }

  async adopt(repo: string, copies: ReadonlyMap<string, string>, placed?: { assigned: readonly string[]; factor: number }): Promise<boolean> {
    const r = this.repo(repo);
    if (Object.keys(r.versions).length > 0) return false;
    for (const [b, c] of copies) this.seed(repo, { [b]: [1, c] });
    if (placed) this.assign(repo, placed.assigned);
    if (placed) r.meta.factor = String(placed.factor);
    return true;
  }

  async resolveInterrupted(repo: string, a: Omit<ResolveArgs, 'logMax'>): Promise<Versioned<'ok' | 'lock' | 'marker'>> {
    const r = this.repo(repo);
    if (this.locks.get(repo) !== a.token) return { status: 'lock', version: 0 };
    if (r.writing.id !== a.writeId) return { status: 'marker', version: 0 };
    const backend = r.writing.backend!;
    let version = 0;
    if (a.action === 'adopt') {
      version = this.max(r) + 1;
      r.versions[backend] = String(version);
      r.checksums[backend] = a.checksum;
    }
    if (a.action === 'drift') r.drift[backend] = `${a.checksum} ${Date.now()}`;
    for (const b of [backend, ...(r.writing.copies ?? '').split(' ').filter(Boolean)]) {
      r.suspect[b] = String(a.suspectUntil);
      if (r.writing.commands !== undefined) r.suspectWrites[b] = `${a.suspectUntil}\n${r.writing.commands}`;
      else delete r.suspectWrites[b];
    }
    r.log.push({ version, backend, event: `${a.action}-interrupted`, ...a.log });
    r.writing = {};
    return { status: 'ok', version };
  }

  async settleSuspect(repo: string, a: Omit<SettleArgs, 'logMax'>): Promise<Versioned<SettleStatus>> {
    const r = this.repo(repo);
    if (this.locks.get(repo) !== a.token) return { status: 'lock', version: 0 };
    if (r.suspect[a.backend] !== String(a.until)) return { status: 'renewed', version: 0 };
    delete r.suspect[a.backend];
    delete r.suspectWrites[a.backend];
    const recorded = r.checksums[a.backend];
    if (recorded === a.liveChecksum) {
      delete r.drift[a.backend];
      return { status: 'cleared', version: 0 };
    }
    const version = this.max(r) + 1;
    if (Number(r.versions[a.backend] ?? 0) < version - 1) return { status: 'stale', version: 0 };
    if (a.baseChecksum === '' || recorded !== a.baseChecksum) {
      r.drift[a.backend] = `${a.liveChecksum} ${Date.now()}`;
      return { status: 'drifted', version: 0 };
    }
    r.versions[a.backend] = String(version);
    r.checksums[a.backend] = a.liveChecksum;
    delete r.drift[a.backend];
    r.log.push({ version, backend: a.backend, event: 'adopt-late-write' });
    return { status: 'adopted', version };
  }

  async suspectCommands(repo: string, backend: string, until: number): Promise<readonly RefCommand[] | undefined> {
    return suspectEntryCommands(this.repo(repo).suspectWrites[backend], until);
  }

  async markDrift(repo: string, backend: string, version: number, checksum: string, live: string, kind?: DriftKind): Promise<'ok' | 'writing' | 'moved'> {
    const r = this.repo(repo);
    if (r.writing.id) return 'writing';
    if (r.versions[backend] !== String(version) || r.checksums[backend] !== checksum) return 'moved';
    if (!r.drift[backend]) r.log.push({ version, backend, event: 'drift', checksum: live });
    r.drift[backend] = `${live} ${Date.now()}${kind ? ` ${kind}` : ''}`;
    return 'ok';
  }

  async noteDrift(repo: string, backend: string, live: string, kind: DriftKind): Promise<'ok' | 'gone'> {
    const r = this.repo(repo);
    const v = r.drift[backend];
    if (v === undefined) return 'gone';
    r.drift[backend] = `${live} ${v.split(' ')[1] ?? '0'} ${kind}`;
    return 'ok';
  }

  async clearDrift(repo: string, backend: string): Promise<void> {
    delete this.repo(repo).drift[backend];
  }

  async recover(): Promise<Versioned<'ok' | 'ambiguous' | 'lock'>> {
    throw new Error('not used by these unit tests');
  }

  async assignments(names: readonly string[]): Promise<Map<string, string[]>> {
    return new Map(names.map((n) => [n, Object.keys(this.repos.get(n)?.assigned ?? {}).sort()] as const).filter(([, a]) => a.length > 0));
  }

  /** The work index's judgement (src/state/scripts/work.ts; memoryWorkIndex in memory-work.ts lists the index). */
  async reindex(repo: string): Promise<boolean> {
    return workReason(await this.read(repo), []) !== 'none';
  }

  async freeze(repo: string, reason: FreezeReason, detail: string, backends: readonly string[]): Promise<void> {
    const r = this.repo(repo);
    if (!r.frozen.reason) r.frozen = { reason, detail, since: String(Date.now()), backends: backends.join(' ') };
  }

  async create(repo: string, backends: readonly string[], log: LogFields, opts: CreateOptions = {}): Promise<'ok' | 'exists' | 'gone'> {
    const status = memCreate(this, repo, backends, log, opts);
    if (status === 'ok' && opts.assigned) await this.notePlacement(opts.assigned.map((backend) => ({ backend, repos: 1 })));
    return status;
  }
  async markGone(repo: string, token: string, gone: Gone): Promise<'ok' | 'lock'> {
    return memMarkGone(this, repo, token, gone);
  }
  async retire(repo: string, token: string, gone: Gone, log: LogFields): Promise<'ok' | 'lock'> {
    return memRetire(this, repo, token, gone, log);
  }
  async revive(repo: string, token: string, log: LogFields, record?: SavedRecord): Promise<'ok' | 'lock' | 'exists'> {
    const status = memRevive(this, repo, token, log, record);
    if (status === 'ok' && record?.assigned) this.assign(repo, record.assigned);
    return status;
  }
  async transfer(repo: string, token: string, v: ReadonlyMap<string, number>, c: ReadonlyMap<string, string>, log: LogFields, assigned?: readonly string[]): Promise<'ok' | 'exists' | 'lock'> {
    const status = memTransfer(this, repo, token, v, c, log);
    if (status === 'ok' && assigned) this.assign(repo, assigned);
    return status;
  }
}

/** A lease that never needs renewing in a unit test's span. */
function memoryLease(token: string, release: () => void, what: string, outer?: AbortSignal): Lease {
  return new Lease(token, { extend: async () => true, release: async () => release() }, 60_000, performance.now(), { outer, lostError: () => new Error(`${what} lost`) });
}

export class MemoryWriteLocks implements WriteLockService {
  constructor(private readonly store: MemoryStore) {}

  async withLock<T>(repo: string, fn: (lock: Held) => Promise<T>): Promise<T> {
    if (this.store.locks.has(repo)) throw new Error(`${repo} is locked`);
    const token = randomUUID();
    this.store.locks.set(repo, token);
    const lease = memoryLease(token, () => this.store.locks.delete(repo), `write lock on ${repo}`);
    try {
      return await fn(lease);
    } finally {
      await lease.release();
    }
  }
}

export class MemoryPairLocks implements PairLocks {
  constructor(private readonly store: MemoryStore) {}

  private standing(repo: string, backend: string): Standing {
    const r = this.store.repo(repo);
    return { version: Number(r.versions[backend] ?? 0), writing: r.writing.backend === backend, checksum: r.checksums[backend] ?? '' };
  }

  async acquire(repo: string, backend: string, _ttlMs: number, outer?: AbortSignal): Promise<PairLease | null> {
    const key = `${repo}\0${backend}`;
    if (this.store.pairs.has(key)) return null;
    const token = randomUUID();
    this.store.pairs.set(key, token);
    const lease = memoryLease(token, () => this.store.pairs.delete(key), `copy lock on ${repo} → ${backend}`, outer);
    return { lease, standing: this.standing(repo, backend) };
  }

  async fence(repo: string, backend: string, held: Lease): Promise<Standing | null> {
    if (this.store.pairs.get(`${repo}\0${backend}`) !== held.token) return null;
    return this.standing(repo, backend);
  }
}
