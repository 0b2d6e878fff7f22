import { BackendUnavailableError, NoLeaderError, RepositoryNotFoundError } from '../errors.js';
import type { RepoState } from '../state/store.js';
import { refsChecksum } from './checksum.js';
import type { Cluster } from './cluster.js';
import { leadership } from './routing.js';

/*
 * How githa comes to know a repository (design: "Ambiguous leaders", "Losing
 * Redis"): a repository without a record is adopted when all its copies
 * agree, frozen as ambiguous when they differ; a record whose leaders
 * contradict each other is frozen as ambiguous too.
 */

/**
 * Leaders at one version must hold one checksum. If Redis says otherwise
 * (a bug, or hand-edited state), githa cannot tell which copy is right:
 * frozen as ambiguous (design: "Ambiguous leaders").
 */
async function consistent(cluster: Cluster, repo: string, state: RepoState): Promise<RepoState> {
  const { leaders } = leadership(state.versions);
  const sums = new Set(leaders.map((b) => state.checksums.get(b) ?? ''));
  if (sums.size <= 1) return state;
  const detail = `leaders at one version with different checksums: ${leaders.map((b) => `${b}=${(state.checksums.get(b) ?? '').slice(0, 12)}`).join(' ')}`;
  await cluster.store.freeze(repo, 'ambiguous', detail, [...leaders].sort());
  cluster.log.error({ repo, detail }, 'repository frozen: contradicting checksums');
  return cluster.store.read(repo);
}

/**
 * Every enabled backend's checksum of `repo`: `copies` (backend → checksum),
 * `missing` (no such repository there), `unreachable` (marked down).
 */
export async function compareCopies(cluster: Cluster, repo: string): Promise<{ copies: Map<string, string>; missing: string[]; unreachable: string[] }> {
  const copies = new Map<string, string>();
  const missing: string[] = [];
  const unreachable: string[] = [];
  await Promise.all(
    cluster.activeBackends().map(async (b) => {
      try {
        const refs = await cluster.client(b.id).listRefs(repo);
        if (refs) copies.set(b.id, refsChecksum(refs));
        else missing.push(b.id);
      } catch (err) {
        if (!(err instanceof BackendUnavailableError)) throw err;
        cluster.health.markDown(b.id);
        unreachable.push(b.id);
      }
    }),
  );
  return { copies, missing: missing.sort(), unreachable: unreachable.sort() };
}

/** The state of a repository, adopting it on first sight (all copies agree) or freezing it as ambiguous. */
export async function knownState(cluster: Cluster, repo: string, state: RepoState): Promise<RepoState> {
  if (state.frozen) return state;
  if (state.versions.size > 0) return consistent(cluster, repo, state);
  const { copies: found, unreachable } = await compareCopies(cluster, repo);
  if (found.size === 0 && unreachable.length === 0) throw RepositoryNotFoundError.missing(repo);
  if (unreachable.length > 0) {
    throw new NoLeaderError(
      `githa has no record of ${repo} yet and cannot compare its copies while ${unreachable.join(', ')} ${unreachable.length > 1 ? 'are' : 'is'} unreachable`,
    );
  }
  const distinct = new Set(found.values());
  if (distinct.size === 1) {
    if (await cluster.store.adopt(repo, found)) cluster.log.info({ repo, backends: [...found.keys()] }, 'repository adopted');
  } else {
    const sorted = [...found].sort(([a], [b]) => a.localeCompare(b));
    await cluster.store.freeze(repo, 'ambiguous', `copies differ: ${sorted.map(([b, c]) => `${b}=${c.slice(0, 12)}`).join(' ')}`, sorted.map(([b]) => b));
    cluster.log.warn({ repo }, 'repository frozen: copies differ and no version is recorded');
  }
  return cluster.store.read(repo);
}
