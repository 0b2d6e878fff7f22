import type { SharedHealth } from '../../src/state/backend-health.js';
import type { StoredOverride } from '../../src/state/overrides.js';
import type { Assignment, ReReplicationStore } from '../../src/state/re-replication-store.js';
import { EMPTY_STATE, type RepoState } from '../../src/state/repo-state.js';
import { Lease } from '../../src/state/lease.js';
import type { RoleLeases } from '../../src/state/role-lease.js';
import type { AddReplacementArgs, DropLostArgs } from '../../src/state/scripts/re-replicate.js';

interface Rec {
  versions: Map<string, number>;
  assigned: Set<string>;
  replacing: Map<string, string>;
  drift: Set<string>;
  gone?: boolean;
  log: Record<string, string | number>[];
}

/**
 * Re-replication's store in memory, with the rules of ADD_REPLACEMENT and
 * DROP_LOST (src/state/scripts/re-replicate.ts), and the repositories' state
 * as RepositoryStore.read gives it.
 */
export class MemoryReReplication implements ReReplicationStore {
  readonly repos = new Map<string, Rec>();
  readonly down = new Map<string, number>();
  scans = 0;
  /** githa:re-replicate:backends */
  removed: string | null = null;

  put(repo: string, versions: Record<string, number>, assigned?: string[]): void {
    this.repos.set(repo, { versions: new Map(Object.entries(versions)), assigned: new Set(assigned ?? []), replacing: new Map(), drift: new Set(), log: [] });
  }

  rec(repo: string): Rec {
    return this.repos.get(repo)!;
  }

  assignedOf(repo: string): string[] {
    return [...this.rec(repo).assigned].sort();
  }

  async read(repo: string): Promise<RepoState> {
    const r = this.repos.get(repo);
    if (!r) return EMPTY_STATE;
    const state: RepoState = {
      versions: new Map(r.versions),
      checksums: new Map([...r.versions.keys()].map((b) => [b, 'c'])),
      suspect: new Map(),
      drift: new Map([...r.drift].map((b) => [b, { checksum: 'x', at: 0 }])),
    };
    if (r.assigned.size > 0) state.assigned = [...r.assigned].sort();
    if (r.replacing.size > 0) state.replacing = new Map(r.replacing);
    if (r.gone) state.gone = { kind: 'deleted', at: 0, by: 'op' };
    return state;
  }

  async known(): Promise<number> {
    return this.repos.size;
  }

  async *assignments(): AsyncGenerator<Assignment[]> {
    this.scans++;
    yield [...this.repos].map(([repo, r]) => ({ repo, assigned: [...r.assigned].sort() }));
  }

  async addReplacement(repo: string, a: Omit<AddReplacementArgs, 'logMax'>): Promise<'ok' | 'changed' | 'gone'> {
    const r = this.rec(repo);
    if (r.gone) return 'gone';
    if (this.assignedOf(repo).join(' ') !== [...a.expected].sort().join(' ')) return 'changed';
    if (!r.assigned.has(a.lost) || r.assigned.has(a.target)) return 'changed';
    r.assigned.add(a.target);
    r.replacing.set(a.target, a.lost);
    r.versions.delete(a.target);
    r.log.push(a.log);
    return 'ok';
  }

  async dropLost(repo: string, a: Omit<DropLostArgs, 'logMax'>): Promise<'ok' | 'behind' | 'changed' | 'unsettled'> {
    const r = this.rec(repo);
    if (r.replacing.get(a.replacement) !== a.lost || !r.assigned.has(a.lost) || !r.assigned.has(a.replacement)) return 'changed';
    if (r.drift.has(a.lost)) return 'unsettled';
    const max = Math.max(0, ...[...r.assigned].map((b) => r.versions.get(b) ?? 0));
    const mine = r.versions.get(a.replacement);
    if (mine === undefined || mine < max || r.drift.has(a.replacement)) return 'behind';
    r.assigned.delete(a.lost);
    r.replacing.delete(a.replacement);
    r.versions.delete(a.lost);
    r.log.push({ version: mine, ...a.log });
    return 'ok';
  }

  async removedChecked(): Promise<string | null> {
    return this.removed;
  }

  async setRemovedChecked(list: string): Promise<void> {
    this.removed = list;
  }

  async downSince(): Promise<Map<string, number>> {
    return new Map(this.down);
  }

  async setDownSince(backend: string, since: number | undefined): Promise<void> {
    if (since === undefined) this.down.delete(backend);
    else this.down.set(backend, since);
  }
}

/** One lease per name shared by the githas of a test: the first to ask holds it until released. */
export class MemoryRoleLeases {
  private readonly holders = new Map<string, string>();
  private n = 0;

  /** A githa's view of the leases. */
  forGitha(): RoleLeases {
    return {
      acquire: async (name: string, ttlMs: number) => {
        if (this.holders.has(name)) return undefined;
        const token = `t${++this.n}`;
        this.holders.set(name, token);
        const driver = {
          extend: async () => this.holders.get(name) === token,
          release: async () => {
            if (this.holders.get(name) === token) this.holders.delete(name);
          },
        };
        return new Lease(token, driver, ttlMs, performance.now(), { lostError: (c) => new Error(String(c)) });
      },
    };
  }
}

/** Shared health as a githa reads it: `up` per backend (absent: nobody probes it). */
export function healthOf(up: ReadonlyMap<string, boolean>): { readFresh(ids: readonly string[]): Promise<Map<string, SharedHealth>> } {
  return {
    readFresh: async (ids) => new Map(ids.filter((id) => up.has(id)).map((id) => [id, { id, up: up.get(id)!, at: 0, by: 'p', expires: Number.MAX_SAFE_INTEGER }])),
  };
}

export function overridesOf(o: ReadonlyMap<string, StoredOverride>): { readAll(): Promise<Map<string, StoredOverride>> } {
  return { readAll: async () => new Map(o) };
}
