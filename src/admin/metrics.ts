import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CATCH_UP_FAILURES, type CatchUpFailure, type Observer } from '../cluster/observer.js';
import type { ClusterStatus } from '../cluster/cluster-status.js';
import type { WorkCounts } from '../cluster/work-status.js';
import type { RepoHealth } from '../cluster/status.js';
import type { StatusCache } from './status-cache.js';

/** Where the gauges read from at scrape time; set once the parts exist (see src/githa.ts). */
export interface MetricsSources {
  /**
   * The cluster-status snapshot the repository gauges come from (repository states, drift, stale copies): a work-scoped
   * one (src/cluster/work-status.ts: O(work), never all N) in a serving githa.
   */
  status?: StatusCache;
  /** A full snapshot (every listing; refreshed at metrics.inventoryRefreshMs, undefined until the first): the listings' gauges' source when `status` is work-scoped. */
  fullStatus?: () => ClusterStatus | undefined;
  /** This githa's view of each backend's health (Health.snapshot). */
  backendHealth?: () => ReadonlyArray<{ id: string; up: boolean }>;
  /** Repositories queued or being worked on by this githa's replicator. */
  replicationBacklog?: () => number;
  /** What githa holds in memory for clients (src/frontends/held-bytes.ts HeldBytes.stats). */
  heldBytes?: () => { held: number; peak: number; limit: number; refused: Record<string, number> };
  /** Channels open now on githa's pooled SSH connections, per backend (src/backends/channel-pool.ts). */
  sshChannels?: () => ReadonlyArray<{ id: string; busy: number }>;
  /** Whether Redis answers a PING within redis.commandTimeoutMs (what /readyz asks). */
  redisUp?: () => Promise<boolean>;
}

const STATES: readonly RepoHealth[] = ['synchronized', 'partial', 'unsynchronized', 'ambiguous', 'frozen'];
const FREEZE_REASONS = new Set(['write-interrupted', 'leaders-lost', 'ambiguous', 'maintenance']);

/** Label values come from bounded sets (services, error codes); anything else is folded into `other`. */
function label(value: string): string {
  return /^[\w.-]{1,64}$/.test(value) ? value : 'other';
}

/**
 * githa's Prometheus metrics (docs/observability.md): one Registry with the
 * default process metrics and githa's own instruments. It is the cluster's
 * Observer (src/cluster/observer.ts), so nothing outside src/admin imports
 * prom-client. Labels never carry repository names or users.
 */
export class Metrics implements Observer {
  readonly registry = new Registry();
  private sources: MetricsSources = {};
  /** The configured backend ids: the only values the `backend` label of request counts takes. */
  private readonly backendIds: ReadonlySet<string>;

  private readonly requests = new Counter({
    name: 'githa_requests_total',
    help: 'Client requests served, by transport (http, ssh, git), Git service and outcome (ok, committed, unchanged, an error code, ...).',
    labelNames: ['transport', 'service', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly backendRequests = new Counter({
    name: 'githa_backend_requests_total',
    help: 'Client requests relayed to each backend (the backend that served it: a read\'s copy, a push\'s target), by transport, Git service and outcome.',
    labelNames: ['backend', 'transport', 'service', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: 'githa_request_duration_seconds',
    help: 'Duration of client requests, from accept to the last byte.',
    labelNames: ['transport', 'service'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  });
  private readonly requestBytes = new Histogram({
    name: 'githa_request_bytes',
    help: 'Bytes moved by a client request: the answer of a read, the pack of a push.',
    labelNames: ['transport', 'service'] as const,
    buckets: [256, 4096, 65_536, 1_048_576, 16_777_216, 268_435_456, 4_294_967_296],
    registers: [this.registry],
  });
  private readonly lockWaitSeconds = new Histogram({
    name: 'githa_lock_wait_seconds',
    help: 'Time a push (or an interruption resolution) waited for the repository write lock, by outcome (acquired, busy, unavailable).',
    labelNames: ['outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly catchUpSeconds = new Histogram({
    name: 'githa_catchup_duration_seconds',
    help: 'Duration of catch-ups of a stale copy, by outcome (ok, busy, not-recorded, failed).',
    labelNames: ['outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  });
  private readonly catchUpFailures = new Counter({
    name: 'githa_catchup_failures_total',
    help: 'Catch-ups that recorded nothing (outcome not-recorded or failed), by reason (CatchUpFailure in src/cluster/observer.ts: current, writing, moved, mismatch, contradicts, source-missing, target-missing, lock-lost, unsupported, refused, backend-unavailable, backend-protocol, state-unavailable, aborted, other).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly catchUpBytes = new Histogram({
    name: 'githa_catchup_bytes',
    help: 'Pack bytes copied by successful catch-ups.',
    buckets: [0, 4096, 65_536, 1_048_576, 16_777_216, 268_435_456, 4_294_967_296],
    registers: [this.registry],
  });
  private readonly lagSeconds = new Histogram({
    name: 'githa_replication_lag_seconds',
    help: 'For a version caught up by background replication: time from its commit (its githa:events entry) to the copy being recorded.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600],
    registers: [this.registry],
  });
  private readonly quorumCopies = new Counter({
    name: 'githa_quorum_copies_total',
    help: 'Copies made while a push waits for its write quorum, by outcome (copied, mismatch, failed, timeout; fan-out-* verdicts).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly quorumMisses = new Counter({
    name: 'githa_pushes_quorum_missed_total',
    help: 'Pushes recorded with fewer copies than replication.writeQuorum (the client was told; the repository is partial or unsynchronized until replication copies it).',
    registers: [this.registry],
  });
  private readonly readRetries = new Counter({
    name: 'githa_read_retries_total',
    help: 'Reads that dropped a copy\'s answer before the client saw a byte and went to another leader, by reason (missing, empty, contradicts, failed, moved, writing).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly copiesCreated = new Counter({
    name: 'githa_copies_created_total',
    help: 'Missing copies githa created on a backend through its admin account before filling them (a new or replaced backend), by backend.',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  private readonly pushesLimited = new Counter({
    name: 'githa_pushes_limited_total',
    help: 'Pushes stopped or refused by push.* limits, by reason (slow: under push.minBytesPerSecond; too-long: over push.maxTransferMs; user-locks: over push.maxLocksPerUser).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly fillsPending = new Gauge({
    name: 'githa_fill_pending',
    help: 'Fills of missing copies (create, then copy from a leader) queued or running in this githa, by backend.',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  private readonly authFailures = new Counter({
    name: 'githa_auth_failures_total',
    help: 'Refused HTTP logins (auth.http.mode githa), by outcome: wrong (bad credentials, 401), throttled (too many failures from the address or for the user, 429), busy (too many password checks waiting, 503).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly sshRefusals = new Counter({
    name: 'githa_ssh_refused_total',
    help: 'SSH connections, channels, requests and keys refused by a limit, by reason (connections, startups, client-startups, client-connections, sessions, user-requests, ssh-rsa).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(opts: { backends?: readonly string[] } = {}) {
    this.backendIds = new Set(opts.backends ?? []);
    collectDefaultMetrics({ register: this.registry });
    // Every reason from the start: a rate() over a series that appears with its first failure misses that failure.
    for (const reason of CATCH_UP_FAILURES) this.catchUpFailures.inc({ reason }, 0);
    // prom-client calls collect() with `this` bound to the gauge, so the sources
    // (replaced by watch()) are read through this arrow function instead.
    const sources = (): MetricsSources => this.sources;
    new Gauge({
      name: 'githa_replication_backlog',
      help: "Repositories queued or being worked on by this githa's replicator.",
      registers: [this.registry],
      collect() {
        this.set(sources().replicationBacklog?.() ?? 0);
      },
    });
    new Gauge({
      name: 'githa_redis_up',
      help: 'Whether Redis answered a PING within redis.commandTimeoutMs at scrape time (1) or not (0), as /readyz asks.',
      registers: [this.registry],
      async collect() {
        const up = sources().redisUp;
        if (up) this.set((await up().catch(() => false)) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'githa_backend_up',
      help: 'Whether this githa sees the backend up (1) or down (0).',
      labelNames: ['backend'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of sources().backendHealth?.() ?? []) this.set({ backend: b.id }, b.up ? 1 : 0);
      },
    });
    // What githa holds for clients (docs/security.md "Memory budgets"): alert on refusals, or held near the limit.
    new Gauge({
      name: 'githa_held_bytes',
      help: 'Bytes githa holds in memory for requests (command lists, held listings and bodies, push reports): now, the peak since start, and memory.maxHeldBytes.',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        const s = sources().heldBytes?.();
        if (s) for (const kind of ['held', 'peak', 'limit'] as const) this.set({ kind }, s[kind]);
      },
    });
    new Counter({
      name: 'githa_held_bytes_refusals_total',
      help: 'Requests refused by a memory budget: request (413, memory.maxHeldBytesPerRequest), process (503, memory.maxHeldBytes), heap (503, V8 heap near its limit).',
      labelNames: ['budget'] as const,
      registers: [this.registry],
      collect() {
        const s = sources().heldBytes?.();
        this.reset();
        for (const [budget, n] of Object.entries(s?.refused ?? {})) this.inc({ budget }, n);
      },
    });
    new Gauge({
      name: 'githa_backend_ssh_channels',
      help: "Exec channels open now on githa's pooled SSH connections to the backend (at most 40 per backend: docs/security.md).",
      labelNames: ['backend'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const b of sources().sshChannels?.() ?? []) this.set({ backend: b.id }, b.busy);
      },
    });
    // Repository-state gauges: from the cached snapshot, never a scan per scrape.
    const repositories = new Gauge({
      name: 'githa_repositories',
      help: 'Repositories per state (synchronized, partial, unsynchronized, ambiguous, frozen), from the cached status snapshot.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const frozen = new Gauge({
      name: 'githa_frozen_repositories',
      help: 'Repositories refusing writes (or reads), by reason (write-interrupted, leaders-lost, ambiguous, maintenance, other).',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const drifted = new Gauge({
      name: 'githa_drifted_copies',
      help: 'Copies whose refs differ from their recorded checksum (drift).',
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const stale = new Gauge({
      name: 'githa_stale_copies',
      help: 'Copies (repository, backend pairs) below their repository version: what replication still has to copy.',
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const copiesMissing = new Gauge({
      name: 'githa_copies_missing',
      help: 'Repositories recorded without a copy on the backend (from the managed backends\' listings and the records\' drift), from the cached status snapshot: also what filling a new backend has left.',
      labelNames: ['backend'] as const,
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const unrecorded = new Gauge({
      name: 'githa_inventory_repositories',
      help: 'Repositories needing an operator, by class: untracked (a copy, no record), ghost (recorded, no copy), leftover (deleted or renamed, a copy remains); from the managed backends\' listings.',
      labelNames: ['class'] as const,
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const work = new Gauge({
      name: 'githa_work_repositories',
      help: 'Repositories in the work index (they need work: a write marker, a freeze, a suspect or drifted copy, a stale or missing copy), by the first such reason.',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const known = new Gauge({
      name: 'githa_known_repositories',
      help: 'Repositories githa has a record of (githa:repos).',
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    const snapshotAt = new Gauge({
      name: 'githa_status_snapshot_timestamp_seconds',
      help: 'When the status snapshot the repository gauges come from was taken (Unix time).',
      registers: [this.registry],
      collect: () => this.fillSnapshotGauges(),
    });
    // The gauges above are collected concurrently: one fill per scrape, shared.
    let filling: Promise<void> | undefined;
    const fill = async (): Promise<void> => {
      // A failed refresh is logged by the status cache (its onError); the scrape then
      // leaves the repository gauges as they were rather than failing /metrics.
      const status = await this.sources.status?.get().catch(() => undefined);
      if (!status) return;
      for (const s of STATES) repositories.set({ state: s }, status.counts[s]);
      frozen.reset();
      for (const r of status.repositories) {
        if (r.state !== 'frozen' && r.state !== 'ambiguous') continue;
        const reason = r.state === 'ambiguous' ? 'ambiguous' : FREEZE_REASONS.has(r.reason ?? '') ? r.reason! : 'other';
        frozen.inc({ reason });
      }
      drifted.set(status.repositories.reduce((n, r) => n + r.drifted.length, 0));
      stale.set(status.backlog);
      // A work-scoped snapshot lists no backend: the listings' classes come from the last full one, when there is one.
      const listed = status.scope === 'work' ? (this.sources.fullStatus?.() ?? status) : status;
      copiesMissing.reset();
      for (const [backend, repos] of Object.entries(listed.copies?.missing ?? {})) copiesMissing.set({ backend }, repos.length);
      if (listed.copies && (listed.scope !== 'work' || listed.copies.listed.length > 0)) {
        unrecorded.set({ class: 'untracked' }, listed.copies.untracked.length);
        unrecorded.set({ class: 'ghost' }, listed.copies.ghosts.length);
        unrecorded.set({ class: 'leftover' }, listed.copies.leftovers.length);
      }
      const counts = (status as ClusterStatus & { work?: WorkCounts }).work;
      if (counts) {
        for (const [reason, n] of Object.entries(counts.reasons)) work.set({ reason }, n);
        known.set(counts.known);
      }
      snapshotAt.set(status.at / 1000);
    };
    this.fillSnapshotGauges = () =>
      (filling ??= fill().finally(() => {
        filling = undefined;
      }));
  }

  private readonly fillSnapshotGauges: () => Promise<void>;

  /** Tells the gauges where to read at scrape time. */
  watch(sources: MetricsSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** The exposition text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  request(r: { transport: 'http' | 'ssh' | 'git'; service: string; outcome: string; seconds: number; bytes: number; backend?: string | undefined }): void {
    const service = label(r.service);
    const outcome = label(r.outcome);
    this.requests.inc({ transport: r.transport, service, outcome });
    // Only configured ids name a backend (a bounded label); anything else is `other`.
    if (r.backend !== undefined) this.backendRequests.inc({ backend: this.backendIds.has(r.backend) ? r.backend : 'other', transport: r.transport, service, outcome });
    this.requestSeconds.observe({ transport: r.transport, service }, r.seconds);
    this.requestBytes.observe({ transport: r.transport, service }, Math.max(0, r.bytes || 0));
  }

  lockWait(seconds: number, outcome: string): void {
    this.lockWaitSeconds.observe({ outcome: label(outcome) }, seconds);
  }

  catchUp(r: { outcome: string; seconds: number; bytes: number; reason?: CatchUpFailure }): void {
    this.catchUpSeconds.observe({ outcome: label(r.outcome) }, r.seconds);
    if (r.outcome === 'failed' || r.outcome === 'not-recorded') this.catchUpFailures.inc({ reason: CATCH_UP_FAILURES.includes(r.reason!) ? r.reason! : 'other' });
    if (r.outcome === 'ok') this.catchUpBytes.observe(r.bytes);
  }

  replicationLag(seconds: number): void {
    this.lagSeconds.observe(seconds);
  }

  quorumCopy(outcome: string): void {
    this.quorumCopies.inc({ outcome: label(outcome) });
  }

  quorumMissed(): void {
    this.quorumMisses.inc();
  }

  readRetried(reason: string): void {
    this.readRetries.inc({ reason: label(reason) });
  }

  pushLimited(reason: string): void {
    this.pushesLimited.inc({ reason: label(reason) });
  }

  copyCreated(backend: string): void {
    this.copiesCreated.inc({ backend: label(backend) });
  }

  fillPending(backend: string, count: number): void {
    this.fillsPending.set({ backend: label(backend) }, count);
  }

  sshRefused(reason: string): void {
    this.sshRefusals.inc({ reason: label(reason) });
  }

  authFailure(outcome: 'wrong' | 'throttled' | 'busy'): void {
    this.authFailures.inc({ outcome });
  }
}
