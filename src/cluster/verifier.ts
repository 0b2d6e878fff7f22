import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { BackendUnavailableError } from '../errors.js';
import { scopedState } from './assignment.js';
import { refsChecksum } from './checksum.js';
import type { ClusterContext } from './context.js';
import { liveKind } from './repair.js';

export interface VerifyReport {
  repo: string;
  /** Backends whose live checksum matched the recorded one. */
  ok: string[];
  /** Backends whose live checksum differs: drift, recorded in Redis. */
  drifted: string[];
  /** Backends that could not be compared (unreachable, or a write moved them meanwhile). */
  skipped: string[];
}

/** What one sweep did and cost. */
export interface SweepStats {
  /** Repositories in the index. */
  repositories: number;
  /** Those this githa claimed and verified (the others were another githa's this interval). */
  verified: number;
  /** Backend ref listings (each paced by verify.perSecond). */
  listings: number;
  ms: number;
}

/**
 * The verifier (issue 5, item 6): compares each backend's live checksum with
 * its recorded one and records drift, an out-of-band change on a backend.
 * A drifted copy stops being a leader and its repair is scheduled
 * (src/cluster/repair.ts: what only it has is kept, then it is refilled), or
 * the copy goes back to its recorded refs. Rate-limited to verify.perSecond ref listings, and one githa
 * per repository per interval (a short Redis lock), so a large installation
 * is not hammered by every githa at once.
 */
export class Verifier {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private nextSlot = 0;
  /** Ref listings asked for so far (one per slot). */
  private listings = 0;
  private readonly log: Logger;

  constructor(private readonly ctx: ClusterContext) {
    this.log = ctx.log.child({ component: 'verifier' });
  }

  start(): void {
    const every = this.ctx.config.verify.intervalMs;
    if (every <= 0 || this.running) return;
    this.running = true;
    // The first sweep comes after a random part of the interval: githa processes started together do not verify together.
    this.schedule(Math.random() * Math.min(every, 60_000));
  }

  stop(): void {
    this.running = false;
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /**
   * Sweeps start every verify.intervalMs, or as soon as the previous one ends
   * when it took longer (a sweep is paced by verify.perSecond): drift on an
   * idle repository is found within about one interval, or one sweep's time
   * (docs/config.md "verify").
   */
  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      const began = performance.now();
      void this.sweepOnce()
        .then(
          () => undefined,
          (err: unknown) => this.log.warn({ err: (err as Error).message }, 'verification sweep failed'),
        )
        .finally(() => {
          if (this.running) this.schedule(Math.max(0, this.ctx.config.verify.intervalMs - (performance.now() - began)));
        });
    }, delayMs);
    this.timer.unref();
  }

  /**
   * One sweep over every known repository: each one this githa claims (one
   * githa per repository per interval, so several githas share the work) is
   * verified now. Returns what it cost (tools/bench/verify-cost.ts measures it).
   */
  async sweepOnce(): Promise<SweepStats> {
    const intervalMs = this.ctx.config.verify.intervalMs;
    // The claim ends a little before the next sweep reaches the repository again, so no sweep skips it.
    const claimMs = Math.max(1, Math.floor(intervalMs * 0.9));
    const began = performance.now();
    const listings = this.listings;
    const stats = { repositories: 0, verified: 0, listings: 0, ms: 0 };
    pages: for await (const page of this.ctx.index.repositories()) {
      for (const repo of page) {
        if (this.stopped) break pages;
        stats.repositories++;
        if (!(await this.ctx.index.claimVerify(repo, claimMs))) continue;
        stats.verified++;
        await this.verify(repo);
      }
    }
    return { ...stats, listings: this.listings - listings, ms: performance.now() - began };
  }

  /** One ref listing per verify.perSecond-th of a second, across the whole githa. */
  private async slot(): Promise<void> {
    this.listings++;
    const gap = 1000 / this.ctx.config.verify.perSecond;
    const now = performance.now();
    const at = Math.max(now, this.nextSlot);
    this.nextSlot = at + gap;
    if (at > now) await sleep(at - now);
  }

  /** Verifies every recorded copy of `repo` now. */
  async verify(repo: string): Promise<VerifyReport> {
    const { repos, pairs } = this.ctx;
    const report: VerifyReport = { repo, ok: [], drifted: [], skipped: [] };
    const before = await repos.read(repo);
    // Only assigned copies are verified (docs/architecture.md "Replication factor").
    for (const [backend, version] of scopedState(before).versions) {
      const recorded = before.checksums.get(backend);
      // A suspect copy is verified when its grace period ends (the resolver's settle), not taken for drift before.
      const busy = before.writing?.backend === backend || before.writing?.copies.includes(backend) || before.suspect.has(backend);
      if (!recorded || !this.ctx.backends.isEnabled(backend) || busy) {
        report.skipped.push(backend);
        continue;
      }
      await this.slot();
      // The pair lock keeps a catch-up into this copy from landing between our listing and the record; renewed while the listing runs.
      const held = await pairs.acquire(repo, backend, this.ctx.config.catchUp.pairLockMs);
      if (!held) {
        report.skipped.push(backend);
        continue;
      }
      try {
        // githa's own copy that a superseded catch-up could not record (src/state/scripts/copy.ts Standing.unrecorded).
        const own = held.standing.version === version ? held.standing.unrecorded : undefined;
        await this.compare(repo, backend, version, recorded, before.drift.has(backend), report, held.lease.signal, own);
      } finally {
        await held.lease.release();
      }
    }
    return report;
  }

  private async compare(repo: string, backend: string, version: number, recorded: string, wasDrifted: boolean, report: VerifyReport, signal: AbortSignal, own?: string): Promise<void> {
    const { repos } = this.ctx;
    {
      let live: string;
      try {
        const refs = await this.ctx.backends.client(backend).listRefs(repo, signal);
        // A repository missing on the backend contradicts its record like any other listing (docs/architecture.md "Verified copies").
        live = refs === null ? 'missing' : refsChecksum(refs);
      } catch (err) {
        if (err instanceof BackendUnavailableError) this.ctx.health.markDown(backend);
        report.skipped.push(backend);
        return;
      }
      // A listing that outlived its copy lock may have raced a catch-up: not evidence either way.
      if (signal.aborted) {
        report.skipped.push(backend);
        return;
      }
      if (live === recorded) {
        report.ok.push(backend);
        if (wasDrifted) {
          await repos.clearDrift(repo, backend);
          this.log.info({ repo, backend }, 'drift resolved: the copy matches its recorded checksum again');
        }
        return;
      }
      // A newer state githa copied there itself and could not record (its version was superseded): no drift; the
      // replicator catches the copy up, and its fence accepts that state too (docs/architecture.md "Catch-up relay").
      if (own !== undefined && live === own) {
        report.skipped.push(backend);
        this.log.debug({ repo, backend, version, live }, 'copy holds githa\'s own unrecorded catch-up; left to the replicator');
        return;
      }
      // Only drift if the record did not move meanwhile (a push or catch-up committing now is no drift).
      const status = await repos.markDrift(repo, backend, version, recorded, live, liveKind(live));
      if (status === 'ok') {
        report.drifted.push(backend);
        if (!wasDrifted) {
          this.log.error({ repo, backend, version, recorded, live }, 'DRIFT: a backend copy changed outside githa; it leads no more until repaired');
        }
        // The repair keeps what only this copy has, then refills it (src/cluster/repair.ts); a no-op while one runs.
        this.ctx.repairs.schedule(repo, backend, 'verifier: drift');
      } else {
        report.skipped.push(backend);
      }
    }
  }
}
