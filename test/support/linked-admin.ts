/**
 * A MemoryAdmin (test/support/memory-admin.ts) tied to a FakeBackend
 * (test/support/memory-cluster.ts): what it creates, trashes, restores and
 * renames is what githa's Git client of that backend then sees.
 */
import { MemoryAdmin } from './memory-admin.js';
import type { FakeBackend } from './memory-cluster.js';

export class LinkedAdmin extends MemoryAdmin {
  readonly trashRefs = new Map<string, Map<string, string>>();
  constructor(private readonly git: FakeBackend) {
    super(git.id);
  }
  override async create(repo: string): Promise<'created' | 'exists'> {
    const r = await super.create(repo);
    if (r === 'created') this.git.set(repo, {});
    return r;
  }
  override async trash(repo: string, stamp: string): Promise<'trashed' | 'absent'> {
    const r = await super.trash(repo, stamp);
    if (r === 'trashed') {
      this.trashRefs.set(`${stamp} ${repo}`, this.git.refs.get(repo)!);
      this.git.refs.delete(repo);
    }
    return r;
  }
  override async restore(repo: string, stamp?: string): Promise<{ status: 'restored' | 'absent' | 'exists'; stamp?: string }> {
    const r = await super.restore(repo, stamp);
    if (r.status === 'restored') this.git.refs.set(repo, this.trashRefs.get(`${r.stamp} ${repo}`)!);
    return r;
  }
  override async rename(from: string, to: string): Promise<'renamed' | 'absent' | 'exists'> {
    const r = await super.rename(from, to);
    if (r === 'renamed') {
      this.git.refs.set(to, this.git.refs.get(from)!);
      this.git.refs.delete(from);
    }
    return r;
  }
}

