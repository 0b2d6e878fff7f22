import type { RedisClient } from '../state/redis.js';
import type { Logger } from 'pino';
import { BackendUnavailableError, CopyTargetMissingError, GithaError } from '../errors.js';
import { redisReady } from '../state/redis.js';
import type { RepoState } from '../state/repo-state.js';
import { catchUp, type CatchUpOutcome } from './catch-up.js';
import type { ClusterContext, StateReader } from './context.js';
import { EventFeed } from './event-feed.js';
import type { CopyFiller } from './fill.js';
import type { InterruptionResolver } from './interruptions.js';
import { scoped, scopedState } from './assignment.js';
import { leadership, repoFlags } from './routing.js';
import type { RepositoryIndex } from '../state/repo-index.js';
import type { WorkSweep } from './work-sweep.js';

export interface ReplicatorOptions {
  concurrency: number;
  scanIntervalMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** A dedicated connection for the blocking XREADGROUP on githa:events. */
  events: RedisClient;
  /** The events stream's key (Keys.events()). */
  eventsKey: string;
  /** How long one XREADGROUP blocks (must stay under the connection's command timeout). */
  blockMs?: number;
  /** An event another githa took and did not acknowledge for this long is taken over (default 10 s). */
  claimIdleMs?: number;
  /** Creates a copy a catch-up found missing, on a backend githa may manage (src/cluster/fill.ts); without it the catch-up fails and backs off. */
  fill?: Pick<CopyFiller, 'fill'>;
  /** The work index the scan reads (src/state/scripts/work.ts). */
  work: Pick<RepositoryIndex, 'work'>;
  /** The shared full sweep that rebuilds the index (src/cluster/work-sweep.ts); tried at start and every sweepIntervalMs. */
  sweep?: Pick<WorkSweep, 'maybeSweep'>;
  sweepIntervalMs?: number;
}

/** The consumer group of githa:events every githa's replicator reads in; consumers are named by proxyId (docs/redis.md). */
export const EVENTS_GROUP = 'replicators';
const CLAIM_IDLE_MS = 10_000;

interface Backoff {
  delay: number;
  due: number;
}

/**
 * Background replication in every githa (docs/architecture.md "Background
 * replication"): takes its share of githa:events through the consumer group
 * (src/cluster/event-feed.ts: each event goes to one githa and is acknowledged
 * once its repository was looked at), scans the work index (the repositories
 * that need work, kept by the scripts: src/state/scripts/work.ts) at start and
 * every scanIntervalMs, and catches every stale (repository, backend) pair up from
 * a leader with the catch-up relay. The per-pair lock in Redis keeps two
 * githa processes from copying the same pair at once; a failing pair backs
 * off exponentially; at most `concurrency` repositories are worked on at once.
 * It also resolves interrupted writes of dead owners and settles suspect
 * backends, which put the repository in the index too. A visit from the scan
 * that finds nothing to copy judges the repository again (REINDEX), so an entry
 * leaves the index once nothing is left to do; the rare shared full sweep
 * (src/cluster/work-sweep.ts) repairs what no script could know.
 */
export class Replicator {
  private readonly queue = new Set<string>();
  private readonly active = new Set<string>();
  private readonly backoff = new Map<string, Backoff>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = false;
  private scanning: Promise<void> | undefined;
  private rescan = false;
  private unsubscribe: (() => void)[] = [];
  private readonly log: Logger;
  /** When each repository's newest version seen on githa:events was committed (the event id's time), for the lag metric. */
  private readonly committed = new Map<string, { version: number; at: number }>();
  /** githa:events entries per queued repository, acknowledged once a pass over it has run. */
  private readonly delivered = new Map<string, string[]>();
  /** Repositories queued by the scan (found in the work index): judged again after a visit with nothing to copy. */
  private readonly fromIndex = new Set<string>();
  private feed: EventFeed | undefined;

  constructor(
    private readonly ctx: ClusterContext,
    /** The regression-checked state (Cluster.state): a copy is never planned from Redis gone back in time. */
    private readonly states: StateReader,
    private readonly resolver: Pick<InterruptionResolver, 'resolve' | 'settleSuspects'>,
    private readonly opts: ReplicatorOptions,
  ) {
    this.log = ctx.log.child({ component: 'replicator' });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // The start-up scan runs once the consumer group exists (in follow): events before it are the scan's, events after it the group's.
    void this.follow();
    const every = setInterval(() => this.scan(), this.opts.scanIntervalMs);
    every.unref();
    this.timers.add(every);
    if (this.opts.sweep) {
      const sweeps = setInterval(() => void this.sweep(), this.opts.sweepIntervalMs ?? 3_600_000);
      sweeps.unref();
      this.timers.add(sweeps);
    }
    // A backend that comes back (up again, or enabled or made writable by an operator) is caught up at once, not at the next scan.
    this.unsubscribe = [
      this.ctx.health.onChange((id, up) => {
        if (up) this.returned(id, 'backend is up; scanning for what it missed');
      }),
      this.ctx.backends.onReturn((id, how) => this.returned(id, `backend ${how} by an operator; scanning for what it missed`)),
    ];
  }

  private returned(id: string, msg: string): void {
    this.log.info({ backend: id }, msg);
    for (const key of this.backoff.keys()) if (key.endsWith(`\0${id}`)) this.backoff.delete(key);
    this.scan();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.clear();
    this.fromIndex.clear();
    // Unacknowledged events stay pending: re-read at our next start, or taken over by another githa.
    this.delivered.clear();
    this.opts.events.disconnect();
  }

  /** Number of repositories waiting or being worked on (for status and metrics). */
  backlog(): number {
    return this.queue.size + this.active.size;
  }

  /** Queues a repository; it is looked at as soon as a slot is free. */
  enqueue(repo: string): void {
    if (!this.running) return;
    this.queue.add(repo);
    this.pump();
  }

  /** The shared full sweep, when it is this githa's turn; a sweep is followed by a scan of what it found. */
  private async sweep(): Promise<void> {
    try {
      if (await this.opts.sweep?.maybeSweep()) this.scan();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'work index sweep failed; retrying at the next interval');
    }
  }

  /** Queues every repository of the work index; asked for during a scan, another follows it. */
  scan(): void {
    if (!this.running) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.rescan = false;
    this.scanning = (async () => {
      try {
        for await (const page of this.opts.work.work()) {
          for (const repo of page) {
            if (!this.running) return;
            this.fromIndex.add(repo);
            this.enqueue(repo);
          }
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'scan failed; retrying at the next interval');
      } finally {
        this.scanning = undefined;
        if (this.rescan) this.scan();
      }
    })();
  }

  private async follow(): Promise<void> {
    const feed = new EventFeed({
      redis: this.opts.events,
      key: this.opts.eventsKey,
      group: EVENTS_GROUP,
      consumer: this.ctx.config.proxyId,
      blockMs: this.opts.blockMs ?? 2_000,
      claimIdleMs: this.opts.claimIdleMs ?? CLAIM_IDLE_MS,
    });
    this.feed = feed;
    let scanned = false;
    while (this.running) {
      try {
        // A connection still connecting fails at once (no offline queue): wait for it rather than a full retry delay.
        if (this.opts.events.status !== 'ready') await redisReady(this.opts.events, 1_000);
        if (!scanned) {
          await feed.open();
          scanned = true;
          this.scan();
          void this.sweep();
        }
        for (const e of await feed.next()) {
          if (!this.running) return;
          // Several events of one repository: one pass, then all are acknowledged.
          const ids = this.delivered.get(e.repo);
          if (ids) ids.push(e.id);
          else this.delivered.set(e.repo, [e.id]);
          this.noteCommitted(e.repo, e.version, e.at);
          this.enqueue(e.repo);
        }
      } catch (err) {
        if (!this.running) return;
        // Redis unreachable: what is written meanwhile stays in the group for us (or another githa) to read.
        this.log.debug({ err: (err as Error).message }, 'reading githa:events failed; retrying');
        await new Promise((r) => setTimeout(r, 1_000).unref());
      }
    }
  }

  /**
   * The first queued repository no pass is working on, in queue order. Walks the Set in place: at most the
   * `concurrency` repositories in both come first, so a free slot costs O(concurrency), where copying the queue
   * (`[...queue].find`) made every slot O(N) and a scan of N repositories O(N²).
   */
  private nextQueued(): string | undefined {
    for (const repo of this.queue) if (!this.active.has(repo)) return repo;
    return undefined;
  }

  private pump(): void {
    while (this.running && this.active.size < this.opts.concurrency) {
      const next = this.nextQueued();
      if (next === undefined) return;
      this.queue.delete(next);
      this.active.add(next);
      // Events delivered from here on are acknowledged after the next pass, which sees their versions.
      const delivered = this.delivered.get(next);
      this.delivered.delete(next);
      const indexed = this.fromIndex.delete(next);
      this.replicate(next, indexed)
        .catch((err: unknown) => {
          const level = err instanceof GithaError ? 'warn' : 'error';
          this.log[level]({ repo: next, err: (err as Error).message }, 'replication of repository failed');
        })
        .finally(() => {
          // Done with, not necessarily copied: a pair still stale retries from its timer here, or by the scan.
          if (delivered) this.feed?.ack(delivered);
          this.active.delete(next);
          this.pump();
        });
    }
  }

  /** Brings every stale, healthy, enabled backend of `repo` up to its leaders. */
  private async replicate(repo: string, indexed: boolean): Promise<void> {
    let state = await this.states.state(repo);
    if (state.writing && !state.locked) {
      const r = await this.resolver.resolve(repo);
      if (r === 'waiting' || r === 'unreachable' || r === 'left-frozen') this.retry(repo, '\0marker', true);
      state = await this.states.state(repo);
    }
    if (state.suspect.size > 0) {
      await this.resolver.settleSuspects(repo, state);
      if ([...state.suspect.values()].some((until) => until > Date.now())) this.retryAt(repo, Math.min(...state.suspect.values()) - Date.now());
    }
    const pairs = state.frozen?.reason === 'ambiguous' || state.versions.size === 0 ? [] : this.stalePairs(state);
    // Nothing to copy for an entry of the index: judged again, so a repository made whole by no script (a backend
    // removed from the config, a drift cleared) leaves it; one still needing work (a target down) stays.
    if (pairs.length === 0 && indexed) await this.ctx.repos.reindex(repo);
    await Promise.all(pairs.map(({ target, source }) => this.copy(repo, state, source, target)));
  }

  /** Only assigned backends are copied from or filled (docs/architecture.md "Replication factor"). */
  private stalePairs(all: RepoState): { target: string; source: string }[] {
    const state = scopedState(all);
    const flags = repoFlags(state);
    const { max, leaders } = leadership(state.versions, flags.notLeaders);
    const health = this.ctx.health;
    const sources = leaders.filter((b) => this.ctx.backends.isEnabled(b) && health.isHealthy(b));
    const preferred = [...sources.filter((b) => !flags.avoid?.has(b)), ...sources.filter((b) => flags.avoid?.has(b))];
    const source = preferred[0];
    if (!source) return [];
    return scoped(state, this.ctx.backends.activeBackends())
      .filter((b) => health.isHealthy(b.id))
      .filter((b) => (state.versions.get(b.id) ?? 0) < max && !state.drift.has(b.id) && state.writing?.backend !== b.id)
      .map((b) => ({ target: b.id, source }));
  }

  private async copy(repo: string, state: RepoState, source: string, target: string): Promise<void> {
    const key = `${repo}\0${target}`;
    const b = this.backoff.get(key);
    if (b && b.due > performance.now()) return this.retryAt(repo, b.due - performance.now());
    const version = state.versions.get(source)!;
    const checksum = state.checksums.get(source)!;
    const run = (): Promise<CatchUpOutcome> =>
      catchUp(
        { ...this.ctx, log: this.log },
        { repo, source: this.ctx.backends.client(source), target: this.ctx.backends.client(target), version, checksum, pairLockMs: this.ctx.config.catchUp.pairLockMs },
      );
    const { fill } = this.opts;
    try {
      // A new or replaced backend has no repository yet: created (on a managed backend), then copied, in one of the fill's slots.
      const outcome = await run().catch((err: unknown) => {
        if (err instanceof CopyTargetMissingError && fill) return fill.fill(repo, target, source, run);
        throw err;
      });
      if (outcome.status === 'ok') {
        this.backoff.delete(key);
        const c = this.committed.get(repo);
        if (c?.version === version) this.ctx.observer.replicationLag(Math.max(0, Date.now() - c.at) / 1000);
        return;
      }
      // Busy: another githa copies this pair now. Not recorded: the source moved on, look again.
      this.retry(repo, target, outcome.status === 'busy');
    } catch (err) {
      if (err instanceof BackendUnavailableError) this.ctx.health.markDown(err.backendId);
      this.log.warn({ repo, source, target, err: (err as Error).message }, 'catch-up failed; backing off');
      this.retry(repo, target, false);
    }
  }

  private noteCommitted(repo: string, version: number, at: number): void {
    if (!Number.isFinite(version) || !Number.isFinite(at)) return;
    if (this.committed.size >= 10_000 && !this.committed.has(repo)) this.committed.delete(this.committed.keys().next().value as string);
    this.committed.set(repo, { version, at });
  }

  /** Looks at the repository again later, doubling the pair's delay each time it fails. */
  private retry(repo: string, target: string, gentle: boolean): void {
    const key = `${repo}\0${target}`;
    const prev = this.backoff.get(key);
    const delay = gentle ? this.opts.retryMinMs : Math.min(this.opts.retryMaxMs, prev ? prev.delay * 2 : this.opts.retryMinMs);
    this.backoff.set(key, { delay, due: performance.now() + delay });
    this.retryAt(repo, delay);
  }

  private retryAt(repo: string, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.enqueue(repo);
    }, Math.max(10, ms));
    t.unref();
    this.timers.add(t);
  }
}
