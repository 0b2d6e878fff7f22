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
    /** A backend that refused a connection is skipped for this long. */
    downForMs: 5_000,
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
  gitDaemon: {
    /** git:// has no authentication: pushes over it are off unless enabled. */
    allowPush: false,
  },
} as const;
