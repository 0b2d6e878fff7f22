/**
 * Every default of githa's configuration, in one place. docs/config.md lists
 * them for operators; keep the two in step.
 */
export const DEFAULTS = {
  listen: {
    http: '127.0.0.1:8080',
    admin: '127.0.0.1:9090',
    /** No peer is trusted to send a PROXY protocol header (docs/security.md "Client addresses behind a load balancer"). */
    proxyProtocolFrom: [] as readonly string[],
  },
  tls: {
    /** TLS 1.0 and 1.1 are refused (RFC 8996); Node's own default is the same, pinned here so it stays. */
    minVersion: 'TLSv1.2' as 'TLSv1.2' | 'TLSv1.3',
    /** `optional`: a verified client certificate identifies a user; `require`: connections without one are refused. */
    clientCertificates: 'off' as 'off' | 'optional' | 'require',
  },
  redis: {
    url: 'redis://127.0.0.1:6379',
    prefix: 'githa:',
    /** A command that takes longer than this fails the request (fail closed). */
    commandTimeoutMs: 5_000,
    /** Sentinel mode (`redis.sentinels`): the master's name as the sentinels know it. */
    name: 'mymaster',
    /**
     * Replicas that must confirm each state change of the write path (Redis
     * WAIT) before githa acknowledges it. 0: none (a failover may lose the last
     * acknowledged version bumps): the default for one Redis (`url`).
     */
    waitReplicas: 0,
    /** The default with `sentinels` (docs/deploy.md#redis-sentinel); 0 there needs acceptFailoverLoss. */
    waitReplicasWithSentinels: 1,
    /** Allows `waitReplicas: 0` with `sentinels`: a failover may then lose acknowledged pushes. */
    acceptFailoverLoss: false,
    /** How long WAIT waits for those replicas; fewer in time fails the push (fail closed). */
    waitTimeoutMs: 1_000,
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
    /**
     * Lease of the per-(repository, backend) copy lock, renewed every third of
     * it while a copy runs: what a crashed githa's lock blocks that pair for.
     */
    pairLockMs: 15_000,
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
    /** Scan of the work index (the repositories that need work), besides following githa:events. */
    scanIntervalMs: 30_000,
    /** Full sweep of every repository that rebuilds the work index, by one githa per interval (docs/architecture.md "Background replication"). */
    sweepIntervalMs: 3_600_000,
    /** Back-off of a failing pair: first delay, doubled up to the maximum. */
    retryMinMs: 500,
    retryMaxMs: 60_000,
    /** How long a push waits for its quorum copies before it is refused. */
    quorumTimeoutMs: 30_000,
    /**
     * An assigned backend down (shared health) this long, and not disabled with
     * `--maintenance`, gets its repositories copied to other backends, keeping
     * each repository's factor (docs/architecture.md "Re-replication").
     */
    reReplicateAfterMs: 300_000,
    /**
     * Fan-out writes: the push's commands and pack stream to the target and
     * writeQuorum − 1 other leaders at once (docs/architecture.md "Write quorum"),
     * instead of a copy made after the push. Off by default: an interrupted
     * fan-out push can land late on every copy it reached (docs/architecture.md
     * "Fan-out writes", "Why fan-out is not the default").
     */
    fanOut: false,
    /** A fan-out copy that takes no bytes for this long while the others wait on it is dropped (before the pack's end: it cannot change) and a copy is made after the push instead. */
    fanOutStallMs: 5_000,
  },
  interruptions: {
    /** What githa does with a write whose owner died and whose backend changed: adopt it as a new version, or freeze for an operator. */
    onInterruptedWrite: 'adopt' as 'adopt' | 'freeze',
    /** A marker whose heartbeat is older than this (and whose lock is free) belongs to a dead owner. */
    staleAfterMs: 30_000,
    /** After a forced clear the backend is suspect for this long: no writes go to it, then its checksum is verified again. */
    suspectGraceMs: 600_000,
  },
  repositories: {
    createOnPush: false,
    trashDir: '.githa-trash',
    trashRetentionDays: 30,
    initialBranch: 'main',
    /** Stock git http-backend refuses pushes without REMOTE_USER unless http.receivepack is true (git-http-backend(1)). */
    gitConfig: { 'http.receivepack': 'true' } as Record<string, string>,
    fillConcurrency: 4,
  },
  push: {
    /**
     * A push holding the write lock must send at least this many bytes per second on average over every
     * rateWindowMs (0 = no check), or it is stopped (docs/security.md "Slow pushes").
     */
    minBytesPerSecond: 1024,
    /** The window of minBytesPerSecond; also the longest silence (a client's "Compressing objects") a push may start with. */
    rateWindowMs: 120_000,
    /** The longest a push may take to send its data under the write lock (0 = no limit). */
    maxTransferMs: 3_600_000,
    /** Write locks one user may hold at once in one githa (pushes to different repositories); the next push is refused. */
    maxLocksPerUser: 10,
  },
  pushLog: {
    /** Entries kept in each repository's push log (githa:repo:{R}:log), trimmed approximately (XADD MAXLEN ~). */
    maxLength: 10_000,
  },
  verify: {
    /**
     * How often every repository's copies are compared with their recorded checksums (0 = never): drift on an
     * idle repository is found within about this long, or one sweep's time when that is longer (docs/config.md "verify").
     */
    intervalMs: 300_000,
    /**
     * Backend ref listings per second for verification, per githa, when that finishes a sweep within 0.8 ×
     * intervalMs; a larger installation is paced faster, to fit (docs/config.md "verify").
     */
    perSecond: 10,
    /** Repositories one githa verifies at once (each lists its copies one by one): bounds the load a fast sweep puts on the backends. */
    concurrency: 8,
  },
  read: {
    /**
     * Largest backend listing (advertisement, ls-refs answer) held to be checked
     * against the record before the client gets it; a larger one is relayed unchecked.
     */
    maxHeldListingBytes: 32 * 1024 * 1024,
    /** Largest upload-pack request body held so the request can be replayed on another leader (HTTP). */
    maxReplayBodyBytes: 1024 * 1024,
  },
  memory: {
    /**
     * Bytes one request may hold (a push's command list, a held listing, a held
     * upload-pack body, a held report); a command list past it is refused 413,
     * a listing or body past it streams unheld. memory.maxHeldBytes (all
     * requests at once) defaults to a quarter of V8's heap limit.
     */
    maxHeldBytesPerRequest: 16 * 1024 * 1024,
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
    /**
     * A connection on which nothing moves either way for this long is closed.
     * Far above git's 5 s keep-alives and above githa's own silent stretches
     * (lock wait, quorum wait); data flowing resets it, so long transfers are never cut.
     */
    idleTimeoutMs: 300_000,
    /** Largest request head (request line + headers); over it: 431. */
    maxHeaderBytes: 16_384,
    /** Open connections per client address; the next one is answered 429 with Retry-After. */
    maxConnectionsPerClient: 256,
    /** Open connections in all; the next one is answered 503 with Retry-After. */
    maxConnections: 4_096,
    /** Most bytes githa inflates from a gzip body: a fetch's whole negotiation, a push's command list (never the pack). */
    maxInflatedBytes: 32 * 1024 * 1024,
  },
  log: {
    level: 'info',
  },
  ssh: {
    /** `ssh ops@githa status`: this login name authenticates against ssh.operatorKeys and gets the console. */
    operatorUser: 'ops',
    // SSH hardening (docs/security.md#ssh); sshd's equivalents in brackets.
    /** ssh.authorizedKeysCommand gets this long per key, then the key is refused. */
    authorizedKeysCommandTimeoutMs: 5_000,
    /** …and may print this much (authorized_keys lines). */
    authorizedKeysCommandMaxBytes: 1024 * 1024,
    /** An answer of ssh.authorizedKeysCommand (key found or not) is reused this long. */
    authorizedKeysCommandCacheMs: 10_000,
    /** Connections at once, all clients together; more are closed at once. */
    maxConnections: 1_000,
    /**
     * Unauthenticated connections at once, `start:rate:full` [MaxStartups 10:30:100]:
     * from `start` on, new ones are dropped with `rate`% rising to 100% at `full`.
     */
    maxStartups: '32:30:100' as number | string,
    /** Unauthenticated connections at once from one address [PerSourceMaxStartups]; more are closed at once. */
    maxStartupsPerClient: 8,
    /** Session channels at once on one connection [MaxSessions 10]; more are refused at the channel open. */
    maxSessions: 10,
    /** Git requests of one user at once, all SSH connections together; more are refused with a message. */
    maxRequestsPerUser: 20,
    /** Accept ssh-rsa (RSA with SHA-1) user signatures [PubkeyAcceptedAlgorithms]; off as in OpenSSH >= 8.8. */
    allowSshRsaSignatures: false,
    /** Connections at once from one address; more are refused with a message. */
    maxConnectionsPerClient: 50,
    /** A connection not authenticated after this long is closed [LoginGraceTime 120]. */
    loginGraceMs: 60_000,
    /** Failed authentication attempts per connection before it is closed [MaxAuthTries 6]. */
    maxAuthTries: 6,
    /** A connection without any traffic for this long is closed: far above git's 5 s keep-alives. */
    idleTimeoutMs: 600_000,
  },
  auth: {
    /** The identity of git:// and of HTTP requests without verified credentials (docs/security.md). */
    anonymousUser: 'anonymous',
    http: {
      /** `passthrough`: Authorization goes to the backends, which decide. `githa`: githa checks Basic credentials against auth.http.usersFile. */
      mode: 'passthrough' as 'passthrough' | 'githa',
      /** The realm of the 401 challenge (WWW-Authenticate: Basic realm="…"). */
      realm: 'githa',
      /** How long a bcrypt/argon2 verification result is remembered (git sends credentials with every request). */
      cacheMs: 60_000,
      /** Worker threads that verify passwords (bcrypt/argon2 never run on the event loop). */
      verifyWorkers: 2,
      /** Password checks that may wait for a worker; more are refused 503 + Retry-After. */
      verifyQueue: 64,
      /** The window failed logins are counted over (auth.http.maxFailuresPerAddress / PerUser). */
      failureWindowMs: 60_000,
      /** Failed logins from one client address in the window before it gets 429 + Retry-After (0: no limit). */
      maxFailuresPerAddress: 20,
      /** Failed logins for one user name in the window before that name gets 429 + Retry-After (0: no limit). */
      maxFailuresPerUser: 10,
    },
  },
  access: {
    /** With an `access` section but no `access.default`: what nobody's rule grants is refused. (No section at all: everything allowed.) */
    default: 'none' as 'none' | 'read' | 'write',
  },
  metrics: {
    /** /metrics and /status read every repository's state from a snapshot at most this old (one scan of githa:repos per refresh, never one per scrape). */
    statusRefreshMs: 15_000,
    /** The copies gauges that need every managed backend's listing (untracked, ghost, leftover, missing) come from a full snapshot at most this old. */
    inventoryRefreshMs: 600_000,
  },
  gitDaemon: {
    /** git:// has no authentication: pushes over it are off unless enabled. */
    allowPush: false,
    /** A client must send its request line within this long (git sends it at once). */
    requestTimeoutMs: 10_000,
    /**
     * After the request line, a connection without a byte either way for this
     * long is closed (with the backend connection it holds): git answers an
     * advertisement at once and upload-pack sends keep-alives while it works.
     */
    idleTimeoutMs: 30_000,
    /**
     * Open git:// connections per client address; the next one is refused with
     * an ERR packet. Each holds a backend's git daemon child (32 by default per
     * daemon), so one address must not be able to take them all.
     */
    maxConnectionsPerClient: 16,
    /** Open git:// connections in all. */
    maxConnections: 1_024,
  },
} as const;
