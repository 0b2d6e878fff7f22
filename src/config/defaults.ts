/**
 * Every default of githa's configuration, in one place. docs/config.md lists
 * them for operators; keep the two in step.
 */
export const DEFAULTS = {
  listen: {
    http: '127.0.0.1:8080',
    admin: '127.0.0.1:9090',
  },
  redis: {
    url: 'redis://127.0.0.1:6379',
    prefix: 'githa:',
    /** A command that takes longer than this fails the request (fail closed). */
    commandTimeoutMs: 5_000,
  },
  locks: {
    /** Redlock lease; extended automatically while a push runs. */
    leaseMs: 10_000,
    /** How long a push waits for another push to the same repository. */
    waitMs: 30_000,
  },
  catchUp: {
    /** A read waits this long for a stale same-zone backend, then uses a leader. */
    readWaitMs: 10_000,
    /** Lease of the per-(repository, backend) copy lock. */
    pairLockMs: 60_000,
  },
  health: {
    /** A backend that refused a connection during a request is skipped for this long (unless a probe finds it up sooner). */
    downForMs: 5_000,
    /** How often each githa probes each backend endpoint. */
    intervalMs: 2_000,
    /** A probe that takes longer than this failed. */
    timeoutMs: 2_000,
    /** Consecutive failed probes before a backend is marked down. */
    failuresToDown: 2,
    /** Consecutive good probes before a down backend is marked up again. */
    successesToUp: 2,
    /** How long a probe result shared in Redis stays valid. */
    ttlMs: 15_000,
  },
  replication: {
    /** Copies an acknowledged push must be on; absent = a majority of the configured backends. */
    writeQuorum: undefined as number | undefined,
    /** Background replication (events + scans). Off, stale copies are caught up only when a read or write needs them. */
    background: true,
    /** Background copies one githa runs at once. */
    concurrency: 4,
    /** Full scan for stale (repository, backend) pairs, besides following githa:events. */
    scanIntervalMs: 30_000,
    /** Back-off of a failing pair: first delay, doubled up to the maximum. */
    retryMinMs: 500,
    retryMaxMs: 60_000,
    /** How long a push waits for its quorum copies before it is refused. */
    quorumTimeoutMs: 30_000,
  },
  interruptions: {
    /** What githa does with a write whose owner died and whose backend changed: adopt it as a new version, or freeze for an operator. */
    onInterruptedWrite: 'adopt' as 'adopt' | 'freeze',
    /** A marker whose heartbeat is older than this (and whose lock is free) belongs to a dead owner. */
    staleAfterMs: 30_000,
    /** After a forced clear the backend is suspect for this long: no writes go to it, then its checksum is verified again. */
    suspectGraceMs: 600_000,
  },
  pushLog: {
    /** Entries kept in each repository's push log (githa:repo:{R}:log), trimmed approximately (XADD MAXLEN ~). */
    maxLength: 10_000,
  },
  verify: {
    /** How often every repository's copies are compared with their recorded checksums (0 = never). */
    intervalMs: 3_600_000,
    /** At most this many backend ref listings per second for verification. */
    perSecond: 5,
  },
  backendDefaults: {
    enabled: true,
    writable: true,
  },
  http: {
    /** Requests that send no header for this long are closed (git keep-alives are 5 s). */
    headersTimeoutMs: 60_000,
    /** An idle keep-alive connection is closed after this long. */
    keepAliveTimeoutMs: 65_000,
    /** Largest receive-pack command list githa parses before it sees the pack. */
    maxCommands: 100_000,
    /** Timeout for githa's own requests to backends (catch-up, checksums). */
    backendTimeoutMs: 30_000,
  },
  log: {
    level: 'info',
  },
  ssh: {
    /** `ssh ops@githa status`: this login name authenticates against ssh.operatorKeys and gets the console. */
    operatorUser: 'ops',
  },
  metrics: {
    /** /metrics and /status read every repository's state from a snapshot at most this old (one scan of githa:repos per refresh, never one per scrape). */
    statusRefreshMs: 15_000,
  },
  gitDaemon: {
    /** git:// has no authentication: pushes over it are off unless enabled. */
    allowPush: false,
  },
} as const;
