import type { Logger } from 'pino';
import type { RepositoryAdmin } from '../backends/types.js';
import type { Config } from '../config/schema.js';
import { BackendNotManagedError, BackendUnavailableError, RepositoryExistsError, RepositoryFrozenError, RepositoryGoneError, RepositoryNotFoundError } from '../errors.js';
import { freezeRemedy } from './messages.js';
import type { Held } from '../state/lease.js';
import type { WriteLockService } from '../state/lock.js';
import type { Gone, RepoState } from '../state/repo-state.js';
import type { RepositoryStore } from '../state/repository-store.js';
import { goneError } from './adoption.js';
import type { BackendDirectory } from './backends.js';
import { EMPTY_CHECKSUM, refsChecksum } from './checksum.js';
import type { Health } from './health.js';
import { createByHand, renameByHand, restoreByHand, trashByHand } from './manual-commands.js';
import { only, outerRepository, renameRecord, settled } from './lifecycle-checks.js';
import { placeNew } from './placer.js';
import { trashStamp } from '../backends/admin.js';

export { trashStamp } from '../backends/admin.js';
import type { Backend } from './types.js';

export type CreateResult = { repo: string; status: 'created'; backends: string[]; pending: string[] };
export type DeleteResult = { repo: string; status: 'deleted'; stamp: string; trashed: string[]; pending: string[] };
export type RestoreResult = { repo: string; status: 'restored'; stamp: string; backends: string[]; missing: string[] };
export type RenameResult = { repo: string; status: 'renamed'; to: string; backends: string[]; pending: string[] };
export type PurgeResult = {
  before: string;
  purged: { backend: string; stamp: string; repo: string }[];
  /** Tombstones removed with their last trash: those names are free again. */
  freed: string[];
  /** Backends not listed (no admin, or unreachable). */
  skipped: string[];
};

/** The parts of a ClusterContext the lifecycle needs. */
export interface LifecycleParts {
  readonly config: Pick<Config, 'repositories' | 'backends' | 'replication'>;
  readonly log: Logger;
  readonly repos: RepositoryStore;
  readonly writeLocks: WriteLockService;
  readonly backends: Pick<BackendDirectory, 'activeBackends' | 'client' | 'admin' | 'isEnabled' | 'isDraining'>;
  readonly health: Pick<Health, 'markDown' | 'isHealthy'>;
}

export interface Who {
  /** The operator's user name, or the pushing user (create on push). */
  by: string;
  /** 'cli' or 'push'. */
  via?: string;
}

/** Copies of `repo` found with githa's own Git client on each backend. */
interface Survey {
  copies: Map<string, string>;
  unreachable: string[];
}

/**
 * Creating, deleting, restoring and renaming repositories on every backend
 * at once (docs/operations.md "Repository lifecycle"). Each change runs under
 * the repository's write lock; a delete or rename first writes the
 * tombstone, so every read and push is refused from that moment, then moves
 * the copies over the backends' admin accounts, then retires the record.
 * Every command is safe to run again: a rerun finishes what an interrupted
 * one began. Backends without `admin` are never touched: a command that
 * needs one is refused before anything changes, naming what to run there.
 */
export class Lifecycle {
  private readonly log: Logger;

  constructor(
    private readonly ctx: LifecycleParts,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.log = ctx.log.child({ component: 'lifecycle' });
  }

  private get settings(): Config['repositories'] {
    return this.ctx.config.repositories;
  }

  /** The enabled backends (of `only`, when given: a new repository's assignment), split by whether githa may manage them. */
  private split(only?: readonly string[]): { managed: [Backend, RepositoryAdmin][]; unmanaged: Backend[] } {
    const managed: [Backend, RepositoryAdmin][] = [];
    const unmanaged: Backend[] = [];
    for (const b of this.ctx.backends.activeBackends().filter((x) => !only || only.includes(x.id))) {
      const admin = this.ctx.backends.admin(b.id);
      if (admin) managed.push([b, admin]);
      else unmanaged.push(b);
    }
    return { managed, unmanaged };
  }

  private async survey(repo: string, backends: readonly Backend[]): Promise<Survey> {
    const copies = new Map<string, string>();
    const unreachable: string[] = [];
    await settled(
      backends.map(async (b) => {
        try {
          const refs = await this.ctx.backends.client(b.id).listRefs(repo);
          if (refs) copies.set(b.id, refsChecksum(refs));
        } catch (err) {
          if (!(err instanceof BackendUnavailableError)) throw err;
          this.ctx.health.markDown(b.id);
          unreachable.push(b.id);
        }
      }),
    );
    return { copies, unreachable: unreachable.sort() };
  }

  /** Runs an admin operation; an unreachable backend is noted and answers undefined (a rerun finishes its part). */
  private async reach<T>(b: Backend, op: () => Promise<T>): Promise<T | undefined> {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      this.ctx.health.markDown(b.id);
      this.log.warn({ backend: b.id, err: err.message }, 'backend unreachable: its part is left for a rerun');
      return undefined;
    }
  }

  private notManaged(what: string, commands: string[]): BackendNotManagedError {
    return new BackendNotManagedError(`${what}: githa may not manage ${commands.length > 1 ? 'these backends' : 'this backend'} (no "admin" in its configuration); run by hand, then run the command again:\n  ${commands.join('\n  ')}`);
  }

  /**
   * A new, empty repository on every enabled backend (with `replication.factor`:
   * on the backends placement chooses, docs/architecture.md "Placement"; their
   * assignment is recorded with the versions), recorded at version 1.
   * Refused when it has a record, a tombstone, or a copy with refs anywhere
   * (an empty copy is one an interrupted create made: it is kept).
   */
  async create(repo: string, who: Who, o: { description?: string | undefined } = {}): Promise<CreateResult> {
    return this.ctx.writeLocks.withLock(repo, async () => {
      const state = await this.ctx.repos.read(repo);
      if (state.gone) throw this.goneForCreate(repo, state.gone);
      if (state.versions.size > 0 || state.frozen) throw new RepositoryExistsError(`repository ${repo} exists already`);
      await this.refuseNested(repo);
      const placed = await placeNew(this.ctx, repo);
      if (placed && placed.assigned.length === 0) throw new BackendUnavailableError(`cannot create ${repo}: no backend can take a new repository (each is disabled, drained or down)`, '');
      const { managed, unmanaged } = this.split(placed?.assigned);
      const found = await this.survey(repo, this.ctx.backends.activeBackends());
      const full = [...found.copies].filter(([, c]) => c !== EMPTY_CHECKSUM).map(([b]) => b).sort();
      if (full.length > 0) throw new RepositoryExistsError(`repository ${repo} exists already on ${full.join(', ')} (not recorded: githa inventory --track ${repo} adopts it)`);
      // An unmanaged backend is fine once an operator created the (empty) copy by hand.
      const byHand = unmanaged.filter((b) => !found.copies.has(b.id));
      if (byHand.length > 0) throw this.notManaged(`cannot create ${repo} on ${byHand.map((b) => b.id).join(', ')}`, byHand.map((b) => createByHand(b, repo, this.settings, o.description)));
      const created: string[] = [];
      const pending: string[] = [];
      await settled(
        managed.map(async ([b, admin]) => {
          const r = await this.reach(b, () => admin.create(repo, { description: o.description, headBranch: this.settings.initialBranch }));
          if (r === undefined) pending.push(b.id);
          else created.push(b.id);
        }),
      );
      created.push(...unmanaged.map((b) => b.id));
      created.sort();
      if (created.length === 0) throw new BackendUnavailableError(`cannot create ${repo}: no backend could be reached (${pending.join(', ')})`, pending[0] ?? '');
      const log = { event: 'create', user: who.by, via: who.via ?? 'cli', backends: created.join(',') };
      // A chosen backend not reached now (pending) stays assigned: the fill creates its copy (docs/architecture.md "Filling a missing copy").
      const status = await this.ctx.repos.create(repo, created, log, placed ? { assigned: placed.assigned, factor: placed.factor } : {});
      if (status === 'gone') throw new RepositoryGoneError(`repository ${repo} was deleted or renamed meanwhile`);
      if (status === 'exists') throw new RepositoryExistsError(`repository ${repo} exists already`);
      this.log.info({ repo, backends: created, pending, by: who.by, via: who.via }, 'repository created');
      return { repo, status: 'created', backends: created, pending: pending.sort() };
    });
  }

  private goneForCreate(repo: string, gone: Gone): RepositoryGoneError {
    if (gone.kind === 'deleted') {
      return new RepositoryGoneError(`repository ${repo} was deleted: restore it (githa restore ${repo}), or free the name once its trash is purged (githa delete --purge ${repo})`);
    }
    return goneError(repo, gone);
  }

  /** Refuses when a copy sits on an enabled backend githa may not manage; `command` is what to run there instead. */
  private async refuseUnmanagedCopies(repo: string, what: string, command: (b: Backend) => string): Promise<void> {
    const { unmanaged } = this.split();
    if (unmanaged.length === 0) return;
    const { copies, unreachable } = await this.survey(repo, unmanaged);
    const holders = unmanaged.filter((b) => copies.has(b.id) || unreachable.includes(b.id));
    if (holders.length > 0) throw this.notManaged(`cannot ${what} on ${holders.map((b) => b.id).join(', ')}`, holders.map(command));
  }

  /**
   * Makes `repo` unreachable at once (its tombstone), moves every copy into
   * the trash directory stamped with this delete's time, and retires the
   * record (kept in the tombstone for `githa restore`). A rerun uses the same
   * stamp and trashes what is left (a backend that was unreachable).
   */
  async delete(repo: string, who: Who): Promise<DeleteResult> {
    return this.ctx.writeLocks.withLock(repo, async (lock) => {
      const state = await this.ctx.repos.read(repo);
      if (state.gone && state.gone.kind !== 'deleting' && state.gone.kind !== 'deleted') throw goneError(repo, state.gone);
      const stamp = state.gone?.stamp ?? trashStamp(this.now());
      if (!state.gone && state.versions.size === 0 && !state.frozen) {
        const { copies, unreachable } = await this.survey(repo, this.ctx.backends.activeBackends());
        if (copies.size === 0 && unreachable.length === 0) throw RepositoryNotFoundError.missing(repo);
      }
      await this.refuseUnmanagedCopies(repo, `delete ${repo}`, (b) => trashByHand(b, repo, stamp, this.settings));
      const at = state.gone?.at ?? this.now().getTime();
      if (!state.gone) await this.guard(repo, this.ctx.repos.markGone(repo, lock.token, { kind: 'deleting', at, stamp, by: who.by }));
      const trashed: string[] = [];
      const pending: string[] = [];
      await settled(
        this.split().managed.map(async ([b, admin]) => {
          const r = await this.reach(b, () => admin.trash(repo, stamp));
          if (r === undefined) pending.push(b.id);
          else if (r === 'trashed') trashed.push(b.id);
        }),
      );
      trashed.sort();
      await this.guard(repo, this.ctx.repos.retire(repo, lock.token, { kind: 'deleted', at, stamp, by: who.by }, { event: 'delete', user: who.by, stamp, trashed: trashed.join(',') }));
      this.log.info({ repo, stamp, trashed, pending, by: who.by }, 'repository deleted');
      return { repo, status: 'deleted', stamp, trashed, pending: pending.sort() };
    });
  }

  /** A guarded store call: the write lock lost means nothing more may be changed. */
  private async guard<S extends string>(repo: string, call: Promise<S | 'lock'>): Promise<Exclude<S, 'lock'>> {
    const s = await call;
    if (s === 'lock') throw new RepositoryFrozenError(`the write lock on ${repo} was lost; run the command again`, 'unknown');
    return s as Exclude<S, 'lock'>;
  }

  /**
   * Puts a deleted repository back: every trashed copy of its delete moved
   * back, its saved record restored (for the copies that came back) and the
   * tombstone removed in one step. The copies are then checked as usual.
   */
  async restore(repo: string, who: Who): Promise<RestoreResult> {
    return this.ctx.writeLocks.withLock(repo, async (lock) => {
      const state = await this.ctx.repos.read(repo);
      const gone = state.gone;
      if (!gone) {
        if (state.versions.size > 0) throw new RepositoryExistsError(`repository ${repo} is not deleted: nothing to restore`);
        throw RepositoryNotFoundError.missing(repo);
      }
      if (gone.kind === 'renamed' || gone.kind === 'renaming') throw goneError(repo, gone);
      const stamp = gone.stamp ?? '';
      const saved = gone.record;
      const { managed, unmanaged } = this.split();
      // An unmanaged backend of the record is fine once an operator moved its copy back by hand.
      const there = await this.survey(repo, unmanaged.filter((b) => saved?.versions.has(b.id)));
      const byHand = unmanaged.filter((b) => saved?.versions.has(b.id) && !there.copies.has(b.id));
      if (byHand.length > 0) throw this.notManaged(`cannot restore ${repo} on ${byHand.map((b) => b.id).join(', ')}`, byHand.map((b) => restoreByHand(b, repo, stamp, this.settings)));
      const pending: string[] = [];
      await settled(
        managed.map(async ([b, admin]) => {
          if ((await this.reach(b, () => admin.restore(repo, stamp || undefined))) === undefined) pending.push(b.id);
        }),
      );
      // Which backends hold a copy now: the ones moved back, and any a delete never reached (its copy stayed).
      const { copies, unreachable } = await this.survey(repo, this.ctx.backends.activeBackends());
      pending.push(...unreachable.filter((b) => !pending.includes(b)));
      if (pending.length > 0) {
        throw new BackendUnavailableError(`cannot restore ${repo} while ${pending.sort().join(', ')} cannot be reached (its copy may be in its trash); nothing recorded yet: run the command again`, pending[0]!);
      }
      const back = [...copies.keys()].sort();
      const missing = this.ctx.backends.activeBackends().map((b) => b.id).filter((b) => !copies.has(b) && (!saved?.assigned || saved.assigned.includes(b)));
      if (back.length === 0) throw new RepositoryNotFoundError(`no backend has a trashed copy of ${repo} (from ${stamp || 'its delete'}): purged?`);
      const log = { event: 'restore', user: who.by, stamp, backends: back.join(',') };
      const record = gone.kind === 'deleted' && saved ? only(saved, back) : undefined;
      // 'deleting': the delete stopped before retiring the record, which is still there.
      const status = await this.guard(repo, this.ctx.repos.revive(repo, lock.token, log, record && record.versions.size > 0 ? record : undefined));
      if (status === 'exists') throw new RepositoryExistsError(`repository ${repo} has a record again; its tombstone stays (githa inventory)`);
      this.log.info({ repo, stamp, backends: back, missing, by: who.by }, 'repository restored');
      return { repo, status: 'restored', stamp, backends: back, missing: missing.sort() };
    });
  }

  /**
   * Renames `repo` to `to` on every copy, history kept: `to` must be free
   * (no record, tombstone or copy). Clients of the old name are told the new
   * one. Both write locks are held (taken in name order, so two renames never
   * wait for each other); a rerun finishes an interrupted rename.
   */
  async rename(repo: string, to: string, who: Who): Promise<RenameResult> {
    if (repo === to) throw new RepositoryExistsError(`${repo} and ${to} are the same repository`);
    const [first, second] = [repo, to].sort() as [string, string];
    return this.ctx.writeLocks.withLock(first, (a) =>
      this.ctx.writeLocks.withLock(second, (b) => this.renameLocked(repo, to, who, first === repo ? a : b, first === repo ? b : a)),
    );
  }

  private async renameLocked(repo: string, to: string, who: Who, lock: Held, toLock: Held): Promise<RenameResult> {
    const state = await this.ctx.repos.read(repo);
    const resuming = (state.gone?.kind === 'renaming' || state.gone?.kind === 'renamed') && state.gone.to === to;
    if (state.gone && !resuming) throw goneError(repo, state.gone);
    if (!resuming) await this.checkRenamable(repo, to, state);
    await this.refuseUnmanagedCopies(repo, `rename ${repo}`, (b) => renameByHand(b, repo, to));
    const at = state.gone?.at ?? this.now().getTime();
    if (!state.gone) await this.guard(repo, this.ctx.repos.markGone(repo, lock.token, { kind: 'renaming', to, at, by: who.by }));
    const moved: string[] = [];
    const pending: string[] = [];
    const taken: string[] = [];
    await settled(
      this.split().managed.map(async ([b, admin]) => {
        const r = await this.reach(b, () => admin.rename(repo, to));
        if (r === undefined) pending.push(b.id);
        else if (r === 'renamed') moved.push(b.id);
        else if (r === 'exists') taken.push(b.id);
      }),
    );
    if (taken.length > 0) {
      throw new RepositoryExistsError(`cannot rename ${repo}: ${to} exists already on ${taken.sort().join(', ')} next to a copy of ${repo}; ${repo} stays unreachable until that is resolved by hand and the rename runs again`);
    }
    // A copy not moved yet stays R's: recording S now would have the fill create an empty S beside it (and a lone leader's commits left behind in R).
    if (pending.length > 0) {
      throw new BackendUnavailableError(`cannot finish renaming ${repo} to ${to} while ${pending.sort().join(', ')} cannot be reached: ${repo} stays unreachable and ${to} is not recorded yet; run the command again`, pending[0]!);
    }
    const saved = state.versions.size > 0 ? { versions: state.versions, checksums: state.checksums } : state.gone?.record;
    // Only the copies that moved (or were checked to move) go with the new name; see checkRenamable.
    const record = saved ? renameRecord(saved, this.ctx.backends.activeBackends().map((b) => b.id)) : undefined;
    if (typeof record === 'string') throw new BackendNotManagedError(`cannot rename ${repo}: ${record}`);
    if (record && record.versions.size > 0) {
      const log = { event: 'rename', user: who.by, from: repo, backends: moved.sort().join(',') };
      // The new name keeps the old one's assignment (docs/architecture.md "Replication factor").
      const assigned = state.assigned ?? state.gone?.record?.assigned;
      const status = await this.guard(to, this.ctx.repos.transfer(to, toLock.token, record.versions, record.checksums, log, assigned));
      if (status === 'exists' && !resuming) throw new RepositoryExistsError(`repository ${to} was recorded meanwhile; ${repo} stays unreachable: run the rename again once resolved`);
    }
    await this.guard(repo, this.ctx.repos.retire(repo, lock.token, { kind: 'renamed', to, at, by: who.by }, { event: 'rename', user: who.by, to }));
    this.log.info({ repo, to, backends: moved, pending, by: who.by }, 'repository renamed');
    return { repo, status: 'renamed', to, backends: moved, pending: pending.sort() };
  }

  /** A repository inside another one's directory is never made (docs/protocol.md "Repository names"). */
  private async refuseNested(repo: string): Promise<void> {
    const active = this.ctx.backends.activeBackends();
    const outer = await outerRepository(repo, this.ctx.repos, async (name) => (await this.survey(name, active)).copies.size > 0);
    if (outer) throw new RepositoryExistsError(`cannot make ${repo}: it would lie inside repository ${outer}`);
  }

  private async checkRenamable(repo: string, to: string, state: RepoState): Promise<void> {
    if (state.frozen) throw new RepositoryFrozenError(`repository ${repo} is frozen (${state.frozen.reason}): resolve that first; ${freezeRemedy(repo, state.frozen.reason)}`, state.frozen.reason);
    if (state.writing) throw new RepositoryFrozenError(`an interrupted push to ${repo} is not resolved yet: try again once it is (githa status ${repo})`, 'write-interrupted');
    const active = this.ctx.backends.activeBackends();
    if (state.versions.size === 0) {
      const { copies, unreachable } = await this.survey(repo, active);
      if (copies.size === 0 && unreachable.length === 0) throw RepositoryNotFoundError.missing(repo);
    }
    const newest = renameRecord({ versions: state.versions, checksums: state.checksums }, active.map((b) => b.id));
    if (typeof newest === 'string') throw new BackendNotManagedError(`cannot rename ${repo}: ${newest}`);
    await this.refuseNested(to);
    const target = await this.ctx.repos.read(to);
    if (target.gone) throw new RepositoryExistsError(`cannot rename ${repo} to ${to}: ${to} is a tombstone (${target.gone.kind}${target.gone.to ? ` to ${target.gone.to}` : ''})`);
    if (target.versions.size > 0 || target.frozen) throw new RepositoryExistsError(`cannot rename ${repo} to ${to}: ${to} exists already`);
    const { copies: found, unreachable } = await this.survey(to, active);
    // A copy an operator renamed by hand on an unmanaged backend is R's own (its recorded checksum).
    const copies = [...found].filter(([b, c]) => this.ctx.backends.admin(b) !== undefined || c !== state.checksums.get(b));
    if (copies.length > 0) throw new RepositoryExistsError(`cannot rename ${repo} to ${to}: ${to} exists already on ${copies.map(([b]) => b).sort().join(', ')}`);
    if (unreachable.length > 0) throw new BackendUnavailableError(`cannot rename ${repo} to ${to} while ${unreachable.join(', ')} cannot be checked for a copy of ${to}`, unreachable[0]!);
  }

  /**
   * Removes trash entries older than `repositories.trashRetentionDays` (of
   * `repo` only, when given) from every managed backend. A deleted
   * repository whose delete is that old loses its tombstone too: its name is
   * free again.
   */
  async purge(who: Who, repo?: string): Promise<PurgeResult> {
    const before = trashStamp(new Date(this.now().getTime() - this.settings.trashRetentionDays * 86_400_000));
    const { managed, unmanaged } = this.split();
    const purged: PurgeResult['purged'] = [];
    const skipped = unmanaged.map((b) => b.id);
    for (const [b, admin] of managed) {
      const entries = await this.reach(b, () => admin.purge(before, repo));
      if (entries === undefined) skipped.push(b.id);
      else purged.push(...entries.map((e) => ({ backend: b.id, stamp: e.stamp, repo: e.repo })));
    }
    const freed: string[] = [];
    for (const name of [...new Set([...purged.map((p) => p.repo), ...(repo ? [repo] : [])])].sort()) {
      const done = await this.ctx.writeLocks.withLock(name, async (lock) => {
        const g = (await this.ctx.repos.read(name)).gone;
        if (g?.kind !== 'deleted' || !g.stamp || g.stamp >= before) return false;
        // A copy still served (a backend the delete never reached) keeps the tombstone: without it, the first read would adopt that old copy.
        const { copies, unreachable } = await this.survey(name, this.ctx.backends.activeBackends());
        if (copies.size > 0 || unreachable.length > 0) {
          const on = [...copies.keys(), ...unreachable].sort();
          this.log.warn({ repo: name, leftover: [...copies.keys()].sort(), unreachable }, `the name stays taken: a copy may remain on ${on.join(', ')} (githa delete ${name} trashes it)`);
          return false;
        }
        return (await this.ctx.repos.revive(name, lock.token, { event: 'purge', user: who.by, stamp: g.stamp })) === 'ok';
      });
      if (done) freed.push(name);
    }
    if (purged.length > 0 || freed.length > 0) this.log.info({ before, purged: purged.length, freed, skipped, by: who.by }, 'trash purged');
    return { before, purged, freed, skipped: skipped.sort() };
  }
}
