/**
 * An in-memory RepositoryAdmin (src/backends/types.ts) for unit tests of the
 * lifecycle, inventory and fill decisions: repositories and trash entries (`bin`)
 * in maps, every call recorded in `calls`. `unreachable` makes each call
 * fail as an unreachable backend does.
 */
import { BackendAdminError, BackendUnavailableError } from '../../src/errors.js';
import type { AdminListing, RepositoryAdmin, TrashEntry } from '../../src/backends/types.js';

export class MemoryAdmin implements RepositoryAdmin {
  /** Canonical names of the repositories there. */
  readonly repos = new Set<string>();
  /** Paths the listing reports as invalid. */
  readonly invalid: string[] = [];
  readonly bin: TrashEntry[] = [];
  readonly calls: string[] = [];
  unreachable = false;
  /** Makes the next call of this operation fail with BackendAdminError. */
  failNext?: string;

  constructor(readonly backend: string, repos: readonly string[] = []) {
    for (const r of repos) this.repos.add(r);
  }

  private call(op: string, ...args: string[]): void {
    this.calls.push([op, ...args].join(' '));
    if (this.unreachable) throw new BackendUnavailableError(`backend ${this.backend}: unreachable (memory admin)`, this.backend);
    if (this.failNext === op) {
      this.failNext = undefined;
      throw new BackendAdminError(`backend ${this.backend}: ${op} failed (memory admin)`, this.backend);
    }
  }

  async list(): Promise<AdminListing> {
    this.call('list');
    return { repositories: [...this.repos].sort(), invalid: [...this.invalid] };
  }

  async create(repo: string): Promise<'created' | 'exists'> {
    this.call('create', repo);
    if (this.repos.has(repo)) return 'exists';
    this.repos.add(repo);
    return 'created';
  }

  async trash(repo: string, stamp: string): Promise<'trashed' | 'absent'> {
    this.call('trash', repo, stamp);
    if (!this.repos.delete(repo)) return 'absent';
    this.bin.push({ stamp, repo });
    return 'trashed';
  }

  async restore(repo: string, stamp?: string): Promise<{ status: 'restored' | 'absent' | 'exists'; stamp?: string }> {
    this.call('restore', repo, ...(stamp ? [stamp] : []));
    const entries = this.bin.filter((e) => e.repo === repo && (stamp === undefined || e.stamp === stamp)).sort((a, b) => a.stamp.localeCompare(b.stamp));
    const entry = entries.at(-1);
    if (!entry) return { status: 'absent' };
    if (this.repos.has(repo)) return { status: 'exists', stamp: entry.stamp };
    this.bin.splice(this.bin.indexOf(entry), 1);
    this.repos.add(repo);
    return { status: 'restored', stamp: entry.stamp };
  }

  async rename(from: string, to: string): Promise<'renamed' | 'absent' | 'exists'> {
    this.call('rename', from, to);
    if (!this.repos.has(from)) return 'absent';
    if (this.repos.has(to)) return 'exists';
    this.repos.delete(from);
    this.repos.add(to);
    return 'renamed';
  }

  async trashed(): Promise<TrashEntry[]> {
    this.call('trashed');
    return [...this.bin].sort((a, b) => a.stamp.localeCompare(b.stamp) || a.repo.localeCompare(b.repo));
  }

  async purge(before: string, repo?: string): Promise<TrashEntry[]> {
    this.call('purge', before, ...(repo ? [repo] : []));
    const gone = this.bin.filter((e) => e.stamp < before && (repo === undefined || e.repo === repo));
    for (const e of gone) this.bin.splice(this.bin.indexOf(e), 1);
    return gone;
  }

  async close(): Promise<void> {}
}
