/**
 * Re-replication (docs/architecture.md "Re-replication"): a backend down in
 * the shared health for `replication.reReplicateAfterMs`, and not disabled
 * for maintenance, has its repositories copied to other backends, keeping
 * each one's number of copies, as HDFS re-replicates a dead DataNode's blocks
 * and Spokes a lost replica.
 *
 * One githa at a time does it (the `re-replicate` lease). Per loss event it
 * reads every repository's assignment (a paged scan, one HKEYS each), keeps
 * the repositories the lost backend holds, and then visits only those on each
 * tick; while the loss lasts it scans again every RESCAN_TICKS ticks (about
 * `reReplicateAfterMs`), for repositories assigned to the backend since (a
 * placement that read its health before it went down, a move): adds a replacement to the assignment (ADD_REPLACEMENT), has
 * the replicator create and fill it (src/cluster/fill.ts, catch-up), and
 * drops the lost backend once the replacement caught up to the leaders
 * (DROP_LOST). The lost backend's copy is never deleted.
 *
 * A backend id assigned to repositories but absent from `backends` (removed
 * from the configuration) is lost at once: it can never come back as
 * configured. A githa whose configured backends differ from those of the last
 * finished pass over removed backends (`githa:re-replicate:backends`) scans
 * every assignment once, under the lease, and replaces each removed id the
 * same way; a repository whose newest version is on removed backends alone is
 * reported and left as it is (docs/architecture.md "Re-replication").
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Lease } from '../state/lease.js';
import type { SharedHealth } from '../state/backend-health.js';
import type { StoredOverride } from '../state/overrides.js';
import type { ReReplicationStore } from '../state/re-replication-store.js';
import type { RepoState } from '../state/repo-state.js';
import type { RoleLeases } from '../state/role-lease.js';
import { isLost, isRemoved, planRepo, type BackendView } from './re-replication-plan.js';

export const LEASE_NAME = 're-replicate';

export interface ReReplicatorDeps {
  config: Pick<Config, 'backends' | 'replication' | 'proxyId'>;
  log: Logger;
  store: ReReplicationStore;
  repos: { read(repo: string): Promise<RepoState> };
  leases: RoleLeases;
  health: { readFresh(ids: readonly string[]): Promise<Map<string, SharedHealth>> };
  overrides: { readAll(): Promise<Map<string, StoredOverride>> };
  /** The replicator: a queued repository gets its stale and missing assigned copies created and caught up. */
  replicator?: { enqueue(repo: string): void };
  /** The per-backend repository counts placement reads (docs/redis.md `placement`): a hint, written after each step. */
  usage?: { note(deltas: ReadonlyArray<{ backend: string; repos?: number }>): Promise<void> };
  /** Whether an operator is draining a backend (it gets nothing new). */
  draining?: (id: string) => boolean;
  /** Wall clock (ms). */
  now?: () => number;
}

/** Repositories one tick looks at, per lost backend (the rest wait for the next tick). */
const PER_TICK = 200;

/** Ticks between two scans of a lost backend's repositories while its loss lasts (intervalMs is a fifth of reReplicateAfterMs). */
export const RESCAN_TICKS = 5;

interface Job {
  /** The loss event: when the backend was first seen down. */
  since: number;
  pending: Set<string>;
  stuck: Set<string>;
  /** Its end was logged (an empty job is kept, so the same loss event does not start again). */
  finished: boolean;
  /** Ticks since its last scan. */
  sinceScan: number;
  /** The backend is not in the configuration: lost for good, no threshold, no rescans. */
  removed?: boolean;
  /**
   * Repositories of a removed backend left as they are until the configuration changes (`orphaned`, or the removed
   * copy drifted or suspect): not visited again, and the job finishes without them, so they neither starve the
   * others (PER_TICK) nor keep the lease held.
   */
  parked?: Set<string>;
  /** A removed backend another githa still reports up: waited for (logged once). */
  held?: boolean;
}

export class ReReplicator {
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly jobs = new Map<string, Job>();
  /** Assigned repositories per backend, from the last scan (the chooser's "least used"). */
  private usage = new Map<string, number>();
  private readonly log: Logger;
  private readonly now: () => number;
  /** Backends removed from the configuration were looked for and every one replaced (or none was assigned). */
  private removedDone = false;

  constructor(private readonly deps: ReReplicatorDeps) {
    this.log = deps.log.child({ component: 're-replication' });
    this.now = deps.now ?? Date.now;
  }

  /** How often the loop looks: a fifth of the threshold, between 0.2 and 5 s. */
  intervalMs(): number {
    return Math.min(5_000, Math.max(200, Math.floor(this.deps.config.replication.reReplicateAfterMs / 5)));
  }

  /**
   * Before githa listens: whether backends removed from this configuration still need looking for. One GET when
   * the last finished pass had this backend list; with no repository known, nothing can be assigned to a removed
   * backend, and the list is written at once. Otherwise the first tick (at once, not after an interval) looks, so
   * a githa's own start is when it sends these commands, not some later moment while it serves.
   */
  async prepare(): Promise<void> {
    const list = this.configuredList();
    try {
      if ((await this.deps.store.removedChecked()) === list) this.removedDone = true;
      else if ((await this.deps.store.known()) === 0) {
        await this.deps.store.setRemovedChecked(list);
        this.removedDone = true;
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not read whether removed backends were replaced; the next pass looks');
    }
  }

  start(): void {
    if (this.timer) return;
    const loop = (): void => {
      this.ticking = this.tick()
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 're-replication pass failed; retrying'))
        .finally(() => {
          this.ticking = undefined;
          if (this.timer) this.timer = setTimeout(loop, this.intervalMs()).unref();
        });
    };
    this.timer = setTimeout(loop, this.removedDone ? this.intervalMs() : 0).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking;
    await this.lease?.release();
    this.lease = undefined;
  }

  /** One pass (exported for tests): take or keep the lease, find lost backends, advance their repositories. */
  async tick(): Promise<void> {
    const backends = await this.view();
    const anyDown = backends.some((b) => b.up === false);
    // Until the backends removed from this configuration were replaced (by this githa or another with the same list),
    // one more read a tick; afterwards none.
    if (!this.removedDone && !this.lease && (await this.deps.store.removedChecked()) === this.configuredList()) this.removedDone = true;
    // Nothing down and nothing under way: no lease and no Redis command beyond the health and override reads (an idle
    // githa's cost, docs/architecture.md "Re-replication").
    if (!anyDown && !this.lease && this.jobs.size === 0 && this.removedDone) return;
    if (!(await this.holdLease())) return;
    const signal = this.lease!.signal;
    if (!this.removedDone && ![...this.jobs.values()].some((j) => j.removed)) await this.findRemoved();
    const downSince = await this.deps.store.downSince();
    // An entry of a backend no longer configured would never be cleared by the loop below.
    for (const id of downSince.keys()) if (isRemoved(id, backends)) await this.deps.store.setDownSince(id, undefined);
    const now = this.now();
    const after = this.deps.config.replication.reReplicateAfterMs;
    for (const b of backends) {
      if (signal.aborted) return;
      const since = downSince.get(b.id);
      if (b.up === false && since === undefined) await this.deps.store.setDownSince(b.id, now);
      if (b.up !== false && since !== undefined) await this.deps.store.setDownSince(b.id, undefined);
      const lost = isLost(b, since, now, after);
      let job = this.jobs.get(b.id);
      if (lost && since !== undefined && job?.since !== since) {
        this.log.warn({ backend: b.id, downForMs: now - since }, 'backend lost: re-replicating its repositories to other backends');
        job = { since, pending: await this.holding(b.id), stuck: new Set(), finished: false, sinceScan: 0 };
        this.jobs.set(b.id, job);
      } else if (lost && job && ++job.sinceScan >= RESCAN_TICKS) {
        await this.rescan(b.id, job);
      }
      if (job) await this.advance(b.id, job, lost, backends, signal);
    }
    const removed = [...this.jobs].filter(([, j]) => j.removed);
    // A githa that still has the backend in its configuration reports it up (a rolling change of configuration, in
    // either direction): nothing is replaced while one does.
    const probed = removed.length > 0 ? await this.deps.health.readFresh(removed.map(([id]) => id)) : new Map<string, { up: boolean }>();
    for (const [id, job] of removed) {
      if (signal.aborted) return;
      if (probed.get(id)?.up === true) {
        if (!job.held) this.log.warn({ backend: id }, 'a backend not in this configuration is still reported up by another githa: its repositories are not re-replicated while one does');
        job.held = true;
        continue;
      }
      job.held = false;
      await this.advance(id, job, true, backends, signal);
    }
    if (!this.removedDone && !signal.aborted && removed.every(([, j]) => j.finished)) {
      await this.deps.store.setRemovedChecked(this.configuredList());
      this.removedDone = true;
    }
    // Everything is back and every job done (their down-since entries cleared above): the lease goes, so an idle
    // cluster holds none and renews nothing.
    if (!anyDown && !signal.aborted && [...this.jobs.values()].every((j) => j.finished)) {
      this.jobs.clear();
      await this.lease?.release();
      this.lease = undefined;
    }
  }

  private async holdLease(): Promise<boolean> {
    if (this.lease && !this.lease.signal.aborted) return true;
    if (this.lease) {
      this.log.info('re-replication lease lost; another githa may take over');
      this.jobs.clear();
    }
    this.lease = await this.deps.leases.acquire(LEASE_NAME, Math.max(10_000, this.intervalMs() * 4));
    if (this.lease) this.log.info('this githa re-replicates the repositories of lost backends');
    return this.lease !== undefined;
  }

  private async view(): Promise<BackendView[]> {
    const ids = this.deps.config.backends.map((b) => b.id);
    const [health, overrides] = await Promise.all([this.deps.health.readFresh(ids), this.deps.overrides.readAll()]);
    return this.deps.config.backends.map((b) => {
      const o = overrides.get(b.id);
      return {
        id: b.id,
        zone: b.zone,
        host: b.host,
        enabled: o?.enabled ?? b.enabled,
        up: health.get(b.id)?.up,
        maintenance: o?.maintenance === true,
        draining: this.deps.draining?.(b.id) ?? false,
      };
    });
  }

  /** A hint: a failure is logged only (placement's recount repairs it). */
  private noteUsage(backend: string, repos: number): void {
    this.deps.usage?.note([{ backend, repos }]).catch((err: unknown) => this.log.debug({ backend, err: (err as Error).message }, 'could not note the placement usage'));
  }

  private configuredList(): string {
    return this.deps.config.backends
      .map((b) => b.id)
      .sort()
      .join(' ');
  }

  /** Backend → the repositories it is assigned, for the backends `wanted` picks (one paged read of every assignment), counting every backend's for the chooser. */
  private async assignedTo(wanted: (backend: string) => boolean): Promise<Map<string, Set<string>>> {
    const out = new Map<string, Set<string>>();
    const usage = new Map<string, number>();
    for await (const page of this.deps.store.assignments()) {
      for (const { repo, assigned } of page) {
        for (const b of assigned) {
          usage.set(b, (usage.get(b) ?? 0) + 1);
          if (!wanted(b)) continue;
          let repos = out.get(b);
          if (!repos) out.set(b, (repos = new Set()));
          repos.add(repo);
        }
      }
    }
    this.usage = usage;
    return out;
  }

  /** The repositories `lost` is assigned. */
  private async holding(lost: string): Promise<Set<string>> {
    const out = (await this.assignedTo((b) => b === lost)).get(lost) ?? new Set<string>();
    this.log.info({ backend: lost, repositories: out.size }, 'repositories assigned to the lost backend');
    return out;
  }

  /** A job for each backend id assigned somewhere but not in the configuration: lost at once, for good. */
  private async findRemoved(): Promise<void> {
    const configured = this.deps.config.backends;
    for (const [id, pending] of await this.assignedTo((b) => isRemoved(b, configured))) {
      this.log.warn({ backend: id, repositories: pending.size }, 'backend removed from the configuration while repositories are assigned to it: re-replicating them to other backends');
      this.jobs.set(id, { since: 0, pending, stuck: new Set(), finished: false, sinceScan: 0, removed: true, parked: new Set() });
    }
  }

  /** Adds the repositories assigned to `lost` since the last scan (those still pending or done are left as they are). */
  private async rescan(lost: string, job: Job): Promise<void> {
    job.sinceScan = 0;
    const before = job.pending.size;
    for (const repo of await this.holding(lost)) job.pending.add(repo);
    if (job.pending.size > before) job.finished = false;
  }

  private async advance(lost: string, job: Job, mayStart: boolean, backends: readonly BackendView[], signal: AbortSignal): Promise<void> {
    let seen = 0;
    for (const repo of [...job.pending].filter((r) => !job.parked?.has(r))) {
      if (signal.aborted || seen++ >= PER_TICK) return;
      const state = await this.deps.repos.read(repo);
      const step = planRepo(repo, state, lost, { mayStart, backends, usage: this.usage });
      switch (step.kind) {
        case 'done':
          job.pending.delete(repo);
          break;
        case 'hold':
          // The backend came back or is under maintenance before a replacement started: it keeps its place.
          job.pending.delete(repo);
          break;
        case 'stuck':
          if (!job.stuck.has(repo)) this.log.warn({ repo, backend: lost, why: step.why }, 'cannot re-replicate');
          job.stuck.add(repo);
          break;
        case 'orphaned':
          // Kept pending (reported once), so a configured copy brought to the newest version by an operator is picked up.
          if (!job.stuck.has(repo)) {
            this.log.error(
              { repo, backend: lost, version: step.version, reachable: step.reachable },
              'cannot re-replicate: the newest version is only on a backend removed from the configuration; nothing changed (githa dataloss lists it; put the backend back in the configuration to copy it)',
            );
          }
          job.stuck.add(repo);
          job.parked?.add(repo);
          break;
        case 'add': {
          const r = await this.deps.store.addReplacement(repo, {
            expected: state.assigned ?? [],
            lost,
            target: step.target,
            now: this.now(),
            log: { version: Math.max(0, ...state.versions.values()), event: 're-replicate', step: 'add', backend: step.target, lost, proxy: this.deps.config.proxyId },
          });
          if (r === 'ok') {
            this.usage.set(step.target, (this.usage.get(step.target) ?? 0) + 1);
            this.noteUsage(step.target, 1);
            this.log.info({ repo, backend: step.target, lost }, 'replacement assigned; it is created and caught up from a leader');
            this.deps.replicator?.enqueue(repo);
          } else if (r === 'gone') job.pending.delete(repo);
          break;
        }
        case 'wait':
          this.deps.replicator?.enqueue(repo);
          break;
        case 'drop': {
          const r = await this.deps.store.dropLost(repo, { lost, replacement: step.replacement, log: { event: 're-replicate', step: 'drop', backend: step.replacement, lost, proxy: this.deps.config.proxyId } });
          if (r === 'ok') {
            this.log.info({ repo, backend: step.replacement, lost }, 'replacement caught up; the lost backend left the assignment (its copy is left on disk)');
            job.pending.delete(repo);
            this.noteUsage(lost, -1);
          } else if (r === 'unsettled' && job.removed) {
            // No repair or settling can reach a backend that is not configured.
            if (!job.stuck.has(repo)) this.log.error({ repo, backend: lost }, 'the removed backend is drifted or suspect: it stays assigned (put it back in the configuration so it is repaired or settled)');
            job.stuck.add(repo);
            job.parked?.add(repo);
          } else if (r === 'unsettled') {
            this.log.debug({ repo, backend: lost }, 'the lost backend is drifted or suspect: it leaves the assignment once repaired or settled');
          }
          break;
        }
      }
    }
    if (!job.finished && [...job.pending].every((r) => job.parked?.has(r))) {
      job.finished = true;
      this.log.info({ backend: lost, leftAsTheyAre: job.parked?.size ?? 0 }, 're-replication of the lost backend finished');
    }
  }
}
