/**
 * Filling a missing copy (docs/architecture.md "Filling a missing copy"): a
 * backend added to the configuration (or replaced by an empty one) has no
 * repository where the record says one belongs. Stock Git servers cannot
 * create a repository over the Git protocol, so a copy into it finds none
 * (CopyTargetMissingError, or the repair's listing finds `missing`). When
 * githa may manage that backend (`backends[].admin`), the repository is
 * created there through its admin account with the leader's HEAD, then the
 * copy proceeds as usual (the fenced catch-up, or the repair's refill).
 * Only a recorded, not tombstoned, not frozen repository is created, and only
 * under its write lock: a delete or rename (which takes that lock to write
 * the tombstone, then moves every copy) either sees the created copy or is
 * seen by the check. At most `repositories.fillConcurrency` fills run at
 * once per githa, so a new backend with thousands of repositories is not
 * sent thousands of SSH execs at once. Without admin, nothing is created:
 * the log names the exact command an operator runs there.
 */
import type { Logger } from 'pino';
import { sshRepositoryPath } from '../backends/ssh-url.js';
import { backendAccount, shellWord } from './manual-commands.js';

export { backendAccount } from './manual-commands.js';
import type { BackendConfig, Config } from '../config/schema.js';
import { BackendAdminError, BackendUnavailableError, CatchUpError } from '../errors.js';
import type { RepoState } from '../state/repo-state.js';
import { isAssigned } from './assignment.js';
import type { ClusterContext } from './context.js';

export type FillRefusal = 'gone' | 'unrecorded' | 'frozen' | 'unassigned' | 'disabled' | 'unmanaged';

export type CreateOutcome = { status: 'created' | 'exists' } | { status: 'refused'; reason: FillRefusal; detail: string };

/** Why the missing copy of a repository in `state` must not be created on `target` now; undefined when it may be. */
export function fillRefusal(state: RepoState, target: string, o: { managed: boolean; enabled: boolean }): { reason: FillRefusal; detail: string } | undefined {
  // A tombstone first: a deleted or renamed repository is never brought back by a fill (docs/operations.md "Repository lifecycle").
  if (state.gone) return { reason: 'gone', detail: `the repository is ${state.gone.kind}${state.gone.to ? ` to ${state.gone.to}` : ''}` };
  if (state.versions.size === 0) return { reason: 'unrecorded', detail: 'the repository has no record' };
  if (state.frozen) return { reason: 'frozen', detail: `the repository is frozen (${state.frozen.reason})` };
  // A backend outside the assignment never gets a copy (docs/architecture.md "Replication factor").
  if (!isAssigned(state, target)) return { reason: 'unassigned', detail: `${target} is not assigned to hold the repository` };
  if (!o.enabled) return { reason: 'disabled', detail: `${target} is disabled` };
  if (!o.managed) return { reason: 'unmanaged', detail: `githa may not manage repositories on ${target} (no backends[].admin)` };
  return undefined;
}

/**
 * The command an operator runs on `backend` to create `repo` by hand
 * (docs/operations.md "A copy is missing"). With the backend's account and
 * root known (its `admin` or `ssh` URL), the exact `git init` and `git
 * config` lines githa's admin account would run; otherwise the generic one
 * for the layout of deploy/systemd/git-backend-setup.sh.
 */
export function createCommand(
  repo: string,
  backend: string,
  head?: string,
  where: { backend?: Pick<BackendConfig, 'ssh' | 'admin'> | undefined; repositories?: Pick<Config['repositories'], 'initialBranch' | 'gitConfig' | 'shared'> | undefined } = {},
): string {
  const branch = head?.startsWith('refs/heads/') ? head.slice('refs/heads/'.length) : (where.repositories?.initialBranch ?? 'main');
  const account = where.backend ? backendAccount(where.backend) : undefined;
  if (!account) {
    const path = `/srv/git/${repo}`;
    return `on ${backend}: sudo -u git git init --bare --initial-branch=${branch} ${path} && sudo git-backend-setup.sh enable-push ${path} (/srv/git: the repository root of ${backend})`;
  }
  const path = shellWord(sshRepositoryPath(account.root, repo));
  const shared = where.repositories?.shared ? ` --shared=${where.repositories.shared}` : '';
  const config = Object.entries(where.repositories?.gitConfig ?? {})
    .map(([key, value]) => ` && git --git-dir=${path} config ${key} ${shellWord(value)}`)
    .join('');
  return `on ${backend} as ${account.user}: git init --bare --initial-branch=${shellWord(branch)}${shared} ${path}${config}`;
}

/** What a fill needs of the cluster. */
export type FillDeps = Pick<ClusterContext, 'config' | 'log' | 'repos' | 'writeLocks' | 'backends' | 'observer'>;

/** Creates missing copies on managed backends, at most `repositories.fillConcurrency` at once (one per githa, shared by the replicator and the repairs). */
export class CopyFiller {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly pendingBy = new Map<string, number>();
  private readonly log: Logger;

  constructor(private readonly ctx: FillDeps) {
    this.log = ctx.log.child({ component: 'fill' });
  }

  /** Fills queued or running, per backend (the githa_fill_pending gauge). */
  pending(): ReadonlyMap<string, number> {
    return this.pendingBy;
  }

  /**
   * The replicator's fill: `repo` was found missing on `target` by a copy
   * from `source`. In a fill slot: under the write lock the record is read and
   * checked, the copy created; then (lock released: the copy takes the pair
   * lock, never the other way round) `copy` runs. Throws a CatchUpError
   * saying why nothing was created; for an unmanaged backend it names the
   * command an operator runs.
   */
  async fill<T>(repo: string, target: string, source: string, copy: () => Promise<T>): Promise<T> {
    if (!this.ctx.backends.admin(target)) {
      throw new CatchUpError(`${repo} does not exist on ${target}, which githa may not manage (no backends[].admin); create it with: ${await this.command(repo, target, source)}`);
    }
    return this.track(target, async () => {
      await this.slot();
      try {
        const made = await this.ctx.writeLocks.withLock(repo, async (lock) => this.createLocked(repo, target, await this.ctx.repos.read(repo), lock.signal, source));
        if (made.status === 'refused') throw new CatchUpError(`${repo} does not exist on ${target} and is not created there: ${made.detail}`);
        return await copy();
      } finally {
        this.release();
      }
    });
  }

  /**
   * Creates the missing copy; the caller holds `repo`'s write lock and read
   * `state` under it (the repair's path, bounded by the repairs' own limit:
   * it holds the write lock already, so waiting for a fill slot here could
   * wait on a fill that waits for this lock).
   */
  async createLocked(repo: string, target: string, state: RepoState, signal: AbortSignal, source: string): Promise<CreateOutcome> {
    const admin = this.ctx.backends.admin(target);
    const refusal = fillRefusal(state, target, { managed: admin !== undefined, enabled: this.ctx.backends.isEnabled(target) });
    if (refusal || !admin) return { status: 'refused', ...(refusal ?? { reason: 'unmanaged', detail: '' }) };
    const headBranch = await this.headBranch(repo, source, signal);
    let status: 'created' | 'exists';
    try {
      status = await admin.create(repo, headBranch ? { headBranch } : {}, signal);
    } catch (err) {
      // The admin account, not the Git endpoint, failed: the backend is not marked down for it.
      if (err instanceof BackendUnavailableError) throw new BackendAdminError(`backend ${target}: creating ${repo} failed: ${err.message}`, target, { cause: err });
      throw err;
    }
    if (status === 'created') this.ctx.observer.copyCreated(target);
    this.log.info({ repo, backend: target, head: headBranch, status }, status === 'created' ? 'missing copy created; it is filled from a leader now' : 'missing copy exists now; it is filled from a leader');
    return { status };
  }

  /** Runs `fn` counted as a fill pending on `target`. */
  async track<T>(target: string, fn: () => Promise<T>): Promise<T> {
    this.count(target, 1);
    try {
      return await fn();
    } finally {
      this.count(target, -1);
    }
  }

  /** The command for an operator, with the leader's default branch when it tells it. */
  async command(repo: string, target: string, source: string | undefined, signal?: AbortSignal): Promise<string> {
    const head = source === undefined ? undefined : await this.headTarget(repo, source, signal);
    return createCommand(repo, target, head, { backend: this.ctx.config.backends.find((b) => b.id === target), repositories: this.ctx.config.repositories });
  }

  private async headTarget(repo: string, source: string, signal?: AbortSignal): Promise<string | undefined> {
    const head = await this.ctx.backends
      .client(source)
      .headTarget?.(repo, signal)
      .catch(() => undefined);
    return head ?? undefined;
  }

  /** The leader's HEAD branch (the new copy must default to the same branch); undefined: the admin account's `repositories.initialBranch`. */
  private async headBranch(repo: string, source: string, signal: AbortSignal): Promise<string | undefined> {
    const head = await this.headTarget(repo, source, signal);
    return head?.startsWith('refs/heads/') ? head.slice('refs/heads/'.length) : undefined;
  }

  private count(target: string, by: number): void {
    const n = (this.pendingBy.get(target) ?? 0) + by;
    if (n > 0) this.pendingBy.set(target, n);
    else this.pendingBy.delete(target);
    this.ctx.observer.fillPending(target, Math.max(0, n));
  }

  private async slot(): Promise<void> {
    if (this.running < this.ctx.config.repositories.fillConcurrency) {
      this.running++;
      return;
    }
    // The slot is handed over by release(): running stays counted.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
