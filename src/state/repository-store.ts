import { createHash, randomUUID } from 'node:crypto';
import { CommitRefusedError, RepositoryFrozenError } from '../errors.js';
import type { RepositoryIndex } from './repo-index.js';
import { decodeCommands } from './marker-commands.js';
import { guarded as guardedCall } from './redis-call.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import { goneFields, readAssignments, readRepoState, type DriftKind, type FreezeReason, type Gone, type RepoState, type SavedRecord } from './repo-state.js';
import type { ScriptRunner } from './script.js';
import { COMMIT_CATCH_UP, type CommitCatchUpResult } from './scripts/copy.js';
import { ADOPT, FREEZE, MARK_DRIFT, NOTE_DRIFT, RECOVER, RESOLVE_INTERRUPTED, SETTLE_SUSPECT, type ResolveArgs, type SettleArgs, type SettleStatus, type Versioned } from './scripts/repair.js';
import type { BackendUsage, PlacementUsage, UsageDelta } from './placement-usage.js';
import { REASSIGN } from './scripts/assignment.js';
import { CREATE, MARK_GONE, RETIRE, REVIVE, TRANSFER } from './scripts/lifecycle.js';
import { REINDEX } from './scripts/reindex.js';
import { ABORT_WRITE, BEGIN_WRITE, COMMIT_WRITE, HEARTBEAT, MARK_COMMANDS, MARK_COPIES, type MarkerFields } from './scripts/write.js';

export type { CommitCatchUpResult } from './scripts/copy.js';
export type { MarkerFields } from './scripts/write.js';
export type { SettleStatus, Versioned } from './scripts/repair.js';

/** The checksum of a repository without refs: SHA-256 of nothing (refsChecksum([]) in src/cluster/checksum.ts; state sits below cluster). */
const EMPTY_CHECKSUM = createHash('sha256').digest('hex');

/** Fields of a push-log entry (one per write attempt, catch-up, adoption). */
export type LogFields = Record<string, string | number>;

export interface CommitWrite {
  token: string;
  writeId: string;
  backend: string;
  checksum: string;
  copies: readonly string[];
  log: LogFields;
}

export interface CatchUpRecord {
  target: string;
  version: number;
  checksum: string;
  source: string;
  /** The target is a move's, outside the assignment on purpose (COMMIT_CATCH_UP records it all the same). */
  moveTarget?: boolean | undefined;
  log: LogFields;
}

/** A create's placement (docs/architecture.md "Placement"): written in the same script as the versions. */
export interface CreateOptions {
  /** The backends that should hold it (docs/redis.md `assigned`); absent: every backend. */
  assigned?: readonly string[] | undefined;
  /** Its replication factor (docs/redis.md `meta` `factor`). */
  factor?: number | undefined;
}

/**
 * The repository state the cluster reads and changes (docs/redis.md), as
 * Praefect's `RepositoryStore`: every read is one round trip, every
 * multi-key change one guarded script. RedisRepositoryStore implements it on
 * Redis; test/support/memory-store.ts in memory, for unit tests of the
 * cluster's decisions. Failures surface as ClusterStateUnavailableError
 * (fail closed).
 */
export interface RepositoryStore {
  read(repo: string): Promise<RepoState>;
  /** Writes the marker; throws RepositoryFrozenError or CommitRefusedError (lock lost). */
  beginWrite(repo: string, token: string, marker: MarkerFields): Promise<void>;
  heartbeat(repo: string, token: string, writeId: string): Promise<boolean>;
  /** Names the write's quorum-copy targets in its marker before any copy starts. */
  markCopies(repo: string, token: string, writeId: string, copies: readonly string[]): Promise<boolean>;
  /** Records the push's command list (encoded: src/state/marker-commands.ts) in its marker. */
  markCommands(repo: string, token: string, writeId: string, commands: string): Promise<boolean>;
  abortWrite(repo: string, token: string, writeId: string): Promise<boolean>;
  /** `backend` and the quorum copies become max + 1; the new version, or CommitRefusedError. */
  commitWrite(repo: string, c: CommitWrite): Promise<number>;
  commitCatchUp(repo: string, c: CatchUpRecord): Promise<CommitCatchUpResult>;
  /** Records a repository found on backends; `placed`: its assignment and factor, in the same step (docs/architecture.md "Placement"). */
  adopt(repo: string, copies: ReadonlyMap<string, string>, placed?: { assigned: readonly string[]; factor: number }): Promise<boolean>;
  resolveInterrupted(repo: string, r: Omit<ResolveArgs, 'logMax'>): Promise<Versioned<'ok' | 'lock' | 'marker'>>;
  settleSuspect(repo: string, s: Omit<SettleArgs, 'logMax'>): Promise<Versioned<SettleStatus>>;
  /** The commands of the interrupted write that made `backend` suspect until `until`; undefined when unknown. */
  suspectCommands(repo: string, backend: string, until: number): Promise<readonly RefCommand[] | undefined>;
  /** `kind`: what the drift is, when the caller knows (DriftKind in repo-state.ts). */
  markDrift(repo: string, backend: string, version: number, checksum: string, live: string, kind?: DriftKind): Promise<'ok' | 'writing' | 'moved'>;
  /** The repairer's findings: a drift entry's live value and kind (kept time); 'gone' when there is no entry. */
  noteDrift(repo: string, backend: string, live: string, kind: DriftKind): Promise<'ok' | 'gone'>;
  clearDrift(repo: string, backend: string): Promise<void>;
  /** `placed`: with a factor, the assignment and factor written with the versions (docs/architecture.md "Placement"); absent: none. */
  recover(repo: string, token: string, copies: ReadonlyMap<string, string>, detail: string, placed?: { assigned: readonly string[]; factor: number }): Promise<Versioned<'ok' | 'ambiguous' | 'lock'>>;
  freeze(repo: string, reason: FreezeReason, detail: string, backends: readonly string[]): Promise<void>;
  /** Judges the repository again for the work index (src/state/scripts/work.ts): entered or taken out; true when it needs work. */
  reindex(repo: string): Promise<boolean>;

  // ---- Lifecycle (docs/operations.md "Repository lifecycle"; src/cluster/lifecycle.ts) ----
  /**
   * Records a repository just created on `backends`: each at version 1 with
   * the empty checksum, a new epoch, in the index. 'exists': a record (or a
   * freeze) is there already; 'gone': a tombstone is (restore or purge it first).
   */
  create(repo: string, backends: readonly string[], log: LogFields, opts?: CreateOptions): Promise<'ok' | 'exists' | 'gone'>;
  /** Each backend's use as placement reads it (docs/redis.md `placement`). */
  placementUsage(): Promise<ReadonlyMap<string, BackendUsage>>;
  /** `githa repo factor`: the assignment gains `add`, loses `remove` (their records go), `meta` takes `factor`. Under the write lock. */
  reassign(repo: string, token: string, factor: number, add: readonly string[], remove: readonly string[], log: LogFields): Promise<'ok' | 'lock' | 'unsettled'>;
  /** Notes a change of use (a hint written after the script that made it; failures ignored). */
  notePlacement(deltas: readonly UsageDelta[]): Promise<void>;
  /** The assignments of `names` (docs/redis.md `assigned`), read together; a name without one is left out (every backend). */
  assignments(names: readonly string[]): Promise<Map<string, string[]>>;
  /** Writes the tombstone, records untouched (a delete or rename begins: every read and push is refused from now). Under the write lock `token`. */
  markGone(repo: string, token: string, gone: Gone): Promise<'ok' | 'lock'>;
  /** Writes the tombstone and removes every record of the repository but its push log (which gets `log`); out of the index. Under the write lock. */
  retire(repo: string, token: string, gone: Gone, log: LogFields): Promise<'ok' | 'lock'>;
  /**
   * Removes the tombstone (a restore, or a delete or rename that could not go on); `log` in the push log. Under the write lock.
   * `record` (a restore): the saved record is put back in the same step, so no read finds the repository with neither
   * (and adopts it afresh); 'exists' when it has a record already.
   */
  revive(repo: string, token: string, log: LogFields, record?: SavedRecord): Promise<'ok' | 'lock' | 'exists'>;
  /**
   * Records `repo` with the given versions and checksums (a rename's new name
   * takes the old one's record), a new epoch, in the index. 'exists': it has a
   * record or a tombstone already. Under the write lock `token` of `repo`.
   */
  transfer(
    repo: string,
    token: string,
    versions: ReadonlyMap<string, number>,
    checksums: ReadonlyMap<string, string>,
    log: LogFields,
    /** The old name's assignment (docs/redis.md `assigned`), taken in the same step. */
    assigned?: readonly string[],
  ): Promise<'ok' | 'exists' | 'lock'>;
}

export class RedisRepositoryStore implements RepositoryStore {
  constructor(
    private readonly scripts: ScriptRunner,
    private readonly index: Pick<RepositoryIndex, 'noteRepository' | 'forget'>,
    /** Push-log entries kept per repository (XADD MAXLEN ~): config pushLog.maxLength. */
    private readonly logMax: number,
    /** Each backend's use for placement (a hint after the scripts; docs/architecture.md "Placement"). */
    private readonly usage?: Pick<PlacementUsage, 'read' | 'note'>,
  ) {}

  /** Each backend's use (docs/redis.md `placement`); empty without a usage store. */
  async reassign(repo: string, token: string, factor: number, add: readonly string[], remove: readonly string[], log: LogFields): Promise<'ok' | 'lock' | 'unsettled'> {
    const status = await this.scripts.run(REASSIGN, repo, { token, now: Date.now(), factor, add, remove, logMax: this.logMax, log });
    if (status === 'ok') await this.notePlacement([...add.map((backend) => ({ backend, repos: 1 })), ...remove.map((backend) => ({ backend, repos: -1 }))]);
    return status;
  }

  async placementUsage(): Promise<ReadonlyMap<string, BackendUsage>> {
    return this.usage ? this.usage.read() : new Map();
  }

  /** Notes a change of use; a hint, so a failure is ignored (`githa placement --recount` repairs the counts). */
  async notePlacement(deltas: readonly UsageDelta[]): Promise<void> {
    await this.usage?.note(deltas).catch(() => {});
  }

  read(repo: string): Promise<RepoState> {
    return readRepoState(this.scripts.redis, this.scripts.keys, repo);
  }

  async beginWrite(repo: string, token: string, marker: MarkerFields): Promise<void> {
    const status = await this.scripts.run(BEGIN_WRITE, repo, token, marker);
    if (status === 'frozen') throw new RepositoryFrozenError(`repository ${repo} is frozen`, 'unknown');
    if (status === 'writing') {
      throw new RepositoryFrozenError(
        `an earlier push to ${repo} was interrupted and is not resolved yet; writes are refused until it is`,
        'write-interrupted',
      );
    }
    if (status !== 'ok') throw new CommitRefusedError(`could not start the write: the write lock on ${repo} was lost`);
  }

  async heartbeat(repo: string, token: string, writeId: string): Promise<boolean> {
    return (await this.scripts.run(HEARTBEAT, repo, token, writeId)) === 'ok';
  }

  async markCopies(repo: string, token: string, writeId: string, copies: readonly string[]): Promise<boolean> {
    return (await this.scripts.run(MARK_COPIES, repo, token, writeId, copies)) === 'ok';
  }

  async markCommands(repo: string, token: string, writeId: string, commands: string): Promise<boolean> {
    return (await this.scripts.run(MARK_COMMANDS, repo, token, writeId, commands)) === 'ok';
  }

  async abortWrite(repo: string, token: string, writeId: string): Promise<boolean> {
    return (await this.scripts.run(ABORT_WRITE, repo, token, writeId)) === 'ok';
  }

  async commitWrite(repo: string, c: CommitWrite): Promise<number> {
    const r = await this.scripts.run(COMMIT_WRITE, repo, { ...c, logMax: this.logMax });
    const bytes = Number(c.log.bytes ?? 0);
    // The pack's bytes, for placement: a hint not waited for (docs/architecture.md "Placement").
    if (r.kind === 'ok' && bytes > 0) void this.notePlacement([c.backend, ...c.copies].map((backend) => ({ backend, bytes })));
    if (r.kind === 'ok') return r.version;
    throw new CommitRefusedError(
      r.kind === 'lock' ? `the write lock on ${repo} expired before the push could be recorded` : `the write marker of ${repo} is no longer this push's`,
    );
  }

  commitCatchUp(repo: string, c: CatchUpRecord): Promise<CommitCatchUpResult> {
    return this.scripts.run(COMMIT_CATCH_UP, repo, { ...c, logMax: this.logMax });
  }

  async adopt(repo: string, copies: ReadonlyMap<string, string>, placed?: { assigned: readonly string[]; factor: number }): Promise<boolean> {
    const status = await this.scripts.run(ADOPT, repo, this.logMax, randomUUID(), Date.now(), copies, placed);
    if (status === 'ok') await this.index.noteRepository(repo, 0);
    if (status === 'ok' && placed) await this.notePlacement(placed.assigned.map((backend) => ({ backend, repos: 1 })));
    return status === 'ok';
  }

  resolveInterrupted(repo: string, r: Omit<ResolveArgs, 'logMax'>): Promise<Versioned<'ok' | 'lock' | 'marker'>> {
    return this.scripts.run(RESOLVE_INTERRUPTED, repo, { ...r, logMax: this.logMax });
  }

  settleSuspect(repo: string, s: Omit<SettleArgs, 'logMax'>): Promise<Versioned<SettleStatus>> {
    return this.scripts.run(SETTLE_SUSPECT, repo, { ...s, logMax: this.logMax });
  }

  async suspectCommands(repo: string, backend: string, until: number): Promise<readonly RefCommand[] | undefined> {
    const { redis, keys } = this.scripts;
    const entry = await guardedCall(() => redis.hget(keys.suspectWrites(repo), backend));
    return suspectEntryCommands(entry, until);
  }

  markDrift(repo: string, backend: string, version: number, checksum: string, live: string, kind?: DriftKind): Promise<'ok' | 'writing' | 'moved'> {
    return this.scripts.run(MARK_DRIFT, repo, { backend, version, checksum, live, now: Date.now(), logMax: this.logMax, kind });
  }

  noteDrift(repo: string, backend: string, live: string, kind: DriftKind): Promise<'ok' | 'gone'> {
    return this.scripts.run(NOTE_DRIFT, repo, backend, live, kind);
  }

  async clearDrift(repo: string, backend: string): Promise<void> {
    const { redis, keys } = this.scripts;
    await guardedCall(() => redis.hdel(keys.drift(repo), backend));
  }

  async recover(
    repo: string,
    token: string,
    copies: ReadonlyMap<string, string>,
    detail: string,
    placed?: { assigned: readonly string[]; factor: number },
  ): Promise<Versioned<'ok' | 'ambiguous' | 'lock'>> {
    // The assignment the script replaces, for the placement counts (a hint: read just before, under the write lock).
    const before = this.usage ? await this.scripts.redis.hkeys(this.scripts.keys.assigned(repo)).catch(() => []) : [];
    const r = await this.scripts.run(RECOVER, repo, { token, logMax: this.logMax, epoch: randomUUID(), now: Date.now(), detail, copies, placed });
    if (r.status !== 'lock') await this.index.noteRepository(repo, 0);
    if (r.status === 'ok') {
      const after = placed?.assigned ?? [];
      await this.notePlacement([
        ...before.filter((b) => !after.includes(b)).map((backend) => ({ backend, repos: -1 })),
        ...after.filter((b) => !before.includes(b)).map((backend) => ({ backend, repos: 1 })),
      ]);
    }
    return r;
  }

  async assignments(names: readonly string[], pageSize = 1_000): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (let i = 0; i < names.length; i += pageSize) {
      const slice = names.slice(i, i + pageSize);
      const rows = await readAssignments(this.scripts.redis, this.scripts.keys, slice);
      slice.forEach((repo, j) => {
        if (rows[j]!.length > 0) out.set(repo, rows[j]!);
      });
    }
    return out;
  }

  async freeze(repo: string, reason: FreezeReason, detail: string, backends: readonly string[]): Promise<void> {
    await this.scripts.run(FREEZE, repo, reason, detail, Date.now(), backends);
    await this.index.noteRepository(repo, 0);
  }

  async reindex(repo: string): Promise<boolean> {
    return (await this.scripts.run(REINDEX, repo)) === 1;
  }

  async create(repo: string, backends: readonly string[], log: LogFields, opts: CreateOptions = {}): Promise<'ok' | 'exists' | 'gone'> {
    const args = { backends, emptyChecksum: EMPTY_CHECKSUM, epoch: randomUUID(), now: Date.now(), logMax: this.logMax, log, ...opts };
    const status = await this.scripts.run(CREATE, repo, args);
    if (status === 'ok') await this.index.noteRepository(repo, Date.now());
    if (status === 'ok' && opts.assigned) await this.notePlacement(opts.assigned.map((backend) => ({ backend, repos: 1 })));
    return status;
  }

  markGone(repo: string, token: string, gone: Gone): Promise<'ok' | 'lock'> {
    return this.scripts.run(MARK_GONE, repo, token, goneFields(gone));
  }

  async retire(repo: string, token: string, gone: Gone, log: LogFields): Promise<'ok' | 'lock'> {
    // The script keeps the record itself (the one in Redis at that moment, or the one saved by an earlier run).
    const { record: _ignored, ...rest } = gone;
    // The assignment the script removes, for the placement counts (a hint: read just before; a retire is rare).
    const assigned = this.usage ? await this.scripts.redis.hkeys(this.scripts.keys.assigned(repo)).catch(() => []) : [];
    const status = await this.scripts.run(RETIRE, repo, { token, gone: goneFields(rest), logMax: this.logMax, log });
    if (status === 'ok') await this.index.forget(repo);
    if (status === 'ok') await this.notePlacement(assigned.map((backend) => ({ backend, repos: -1 })));
    return status;
  }

  async revive(repo: string, token: string, log: LogFields, record?: SavedRecord): Promise<'ok' | 'lock' | 'exists'> {
    const status = await this.scripts.run(REVIVE, repo, { token, record, epoch: randomUUID(), now: Date.now(), logMax: this.logMax, log });
    if (status === 'ok' && record) await this.index.noteRepository(repo, Date.now());
    if (status === 'ok' && record?.assigned) await this.notePlacement(record.assigned.map((backend) => ({ backend, repos: 1 })));
    return status;
  }

  async transfer(
    repo: string,
    token: string,
    versions: ReadonlyMap<string, number>,
    checksums: ReadonlyMap<string, string>,
    log: LogFields,
    assigned?: readonly string[],
  ): Promise<'ok' | 'exists' | 'lock'> {
    const status = await this.scripts.run(TRANSFER, repo, { token, versions, checksums, assigned, epoch: randomUUID(), now: Date.now(), logMax: this.logMax, log });
    if (status === 'ok') await this.index.noteRepository(repo, Date.now());
    if (status === 'ok' && assigned) await this.notePlacement(assigned.map((backend) => ({ backend, repos: 1 })));
    return status;
  }
}

/** The commands of a `suspect-writes` entry ("<until>\n<lines>"), when it belongs to the suspect period ending at `until`. */
export function suspectEntryCommands(entry: string | null | undefined, until: number): RefCommand[] | undefined {
  if (!entry) return undefined;
  const nl = entry.indexOf('\n');
  if (nl < 0 || entry.slice(0, nl) !== String(until)) return undefined;
  return decodeCommands(entry.slice(nl + 1));
}
