import type { Logger } from 'pino';
import type { RepositoryStore } from '../state/repository-store.js';
import { EMPTY_CHECKSUM } from './checksum.js';
import type { Observer } from './observer.js';
import { leadership } from './routing.js';
import type { ReadRoute } from './types.js';

/**
 * What a relayed answer showed of one copy, before any byte of it reached the
 * client (docs/architecture.md "Verified copies"):
 * - `refs`: the whole listing's checksum (src/cluster/checksum.ts);
 * - `missing`: the repository is not there or not exported (404, "repository
 *   not exported", "no such repository");
 * - `failed`: an upload-pack request that followed an advertisement failed
 *   (an ERR packet, "not our ref", a 5xx): weaker evidence, verified apart.
 */
export type LiveCopy = { kind: 'refs'; checksum: string } | { kind: 'missing'; detail: string } | { kind: 'failed'; detail: string };

/**
 * Repairs a copy that contradicts its record (src/cluster/repair.ts): lists
 * it, compares it with the record, keeps the commits the record lacks, and
 * refills it from a leader. `schedule` returns at once; the work runs in the
 * background, once per (repository, backend) at a time.
 */
export interface CopyRepairs {
  schedule(repo: string, backend: string, why: string): void;
}

export const NO_REPAIRS: CopyRepairs = { schedule: () => {} };

/**
 * 'retry': drop this answer, try the next candidate. 'landing': the same, because a push or quorum copy not
 * acknowledged yet is landing on that copy; once it is recorded the copy leads again, so a caller may route again.
 */
export type ReadVerdict = 'serve' | 'retry' | 'landing';

/** Why a read was retried on another leader, for the metric `githa_read_retries_total{reason}` (a bounded set). */
export type RetryReason = 'missing' | 'empty' | 'contradicts' | 'failed' | 'moved' | 'writing';

/**
 * Reads are checked against the record at no extra backend round trip
 * (docs/architecture.md "Verified copies" 1): the transport hands over what
 * the backend's answer showed before relaying it; a listing that agrees with
 * the route's recorded checksum costs nothing more. Anything else costs one
 * Redis read: the record may have moved meanwhile (a push committed on this
 * copy), a write may be landing on the copy (not served: its push is not
 * acknowledged yet), or the copy contradicts its record: then it is marked
 * drifted (it leads no more, guarded by MARK_DRIFT), its repair starts, and
 * the read is retried on another leader.
 */
export class ReadChecker {
  constructor(
    private readonly deps: {
      repos: Pick<RepositoryStore, 'read' | 'markDrift'>;
      log: Logger;
      observer: Pick<Observer, 'readRetried'>;
      repairs: CopyRepairs;
    },
  ) {}

  /** Whether the copy's answer agrees with the route's record: the free, synchronous case. */
  agrees(route: ReadRoute, backend: string, live: LiveCopy): boolean {
    if (live.kind !== 'refs') return false;
    const expected = route.checksums.get(backend);
    return expected === undefined || expected === live.checksum;
  }

  /** Checks a copy's answer (ReadVerdict). */
  async check(route: ReadRoute, backend: string, live: LiveCopy): Promise<ReadVerdict> {
    if (this.agrees(route, backend, live)) return 'serve';
    const reason = await this.judge(route, backend, live).catch((err: unknown) => {
      // Redis unreachable: the copy is not served (it disagreed with what the route read), and nothing is recorded.
      this.deps.log.warn({ repo: route.repo, backend, err: (err as Error).message }, 'could not check a copy against its record');
      return 'contradicts' as const;
    });
    if (reason === 'serve') return 'serve';
    this.deps.observer.readRetried(reason);
    return reason === 'writing' ? 'landing' : 'retry';
  }

  private async judge(route: ReadRoute, backend: string, live: LiveCopy): Promise<RetryReason | 'serve'> {
    const { repo } = route;
    const log = this.deps.log;
    if (live.kind === 'failed') {
      // One failed fetch proves little (the client may want objects of a newer push): the repairer lists the copy and decides.
      log.warn({ repo, backend, detail: live.detail }, 'read failed on a copy; retried on another leader, the copy is verified');
      this.deps.repairs.schedule(repo, backend, `fetch failed: ${live.detail}`);
      return 'failed';
    }
    const state = await this.deps.repos.read(repo);
    const version = state.versions.get(backend);
    const recorded = state.checksums.get(backend);
    const { max } = leadership(state.versions);
    const marked = state.writing !== undefined && (state.writing.backend === backend || state.writing.copies.includes(backend));
    if (live.kind === 'refs' && recorded === live.checksum && version === max && !marked && !state.drift.has(backend)) {
      return 'serve'; // a commit on this copy raced the route: the record now says what the copy holds
    }
    // A push or quorum copy is landing on this copy: not acknowledged yet, so not served, and no drift.
    if (marked) return 'writing';
    if (version === undefined || recorded === undefined) return 'moved';
    if (version < max && !state.drift.has(backend)) return 'moved';
    const reason: RetryReason = live.kind === 'missing' ? 'missing' : live.checksum === EMPTY_CHECKSUM ? 'empty' : 'contradicts';
    const liveValue = live.kind === 'missing' ? 'missing' : live.checksum;
    if (!state.drift.has(backend)) {
      const status = await this.deps.repos.markDrift(repo, backend, version, recorded, liveValue);
      if (status !== 'ok') return status === 'writing' ? 'writing' : 'moved';
      log.error(
        { repo, backend, version, recorded, live: liveValue, reason, ...(live.kind === 'missing' ? { detail: live.detail } : {}) },
        'COPY CONTRADICTS RECORD: a read found it; it leads no more, the read goes to another leader, and its repair starts',
      );
    }
    this.deps.repairs.schedule(repo, backend, reason);
    return reason;
  }
}
