/**
 * Every failure githa can report has its own class with a stable `code`
 * (in the manner of undici's errors). Front ends never build messages of their
 * own: they map these classes to what each transport shows the client in one
 * place (src/frontends/error-map.ts).
 *
 * `message` is safe to show to a git client: it never contains secrets,
 * credentials or internal addresses.
 */
export abstract class GithaError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

// ---- Wire protocol (src/protocol) -------------------------------------------

/** A pkt-line with bad hex, a length of 1..3, or a length over 65520. */
export class PktLineError extends GithaError {
  readonly code = 'GITHA_ERR_PKT_LINE';
}

/** Well-formed pkt-lines that do not follow gitprotocol-pack / gitprotocol-v2. */
export class ProtocolSyntaxError extends GithaError {
  readonly code = 'GITHA_ERR_PROTOCOL_SYNTAX';
}

/** A side-band packet on an unknown band, or an empty one. */
export class SidebandError extends GithaError {
  readonly code = 'GITHA_ERR_SIDEBAND';
}

/**
 * The remote sent a fatal error on side-band 3 or as an `ERR` packet. The
 * message is the remote's own text: a front end passes it to the client as
 * the backend would have shown it directly (docs/protocol.md).
 */
export class RemoteFatalError extends GithaError {
  readonly code = 'GITHA_ERR_REMOTE_FATAL';
  /** The backend that sent it, when known (for githa's log). */
  readonly backendId: string | undefined;
  constructor(message: string, options?: { cause?: unknown; backendId?: string }) {
    super(message, options);
    this.backendId = options?.backendId;
  }
}

/** A request exceeded a hard limit (command count, body size, line length). */
export class LimitExceededError extends GithaError {
  readonly code = 'GITHA_ERR_LIMIT';
}

/** One client address holds more connections than its share (http/gitDaemon.maxConnectionsPerClient). */
export class TooManyConnectionsError extends GithaError {
  readonly code = 'GITHA_ERR_TOO_MANY_CONNECTIONS';
}

/** githa holds as many connections as it may (http/gitDaemon.maxConnections). */
export class ServerBusyError extends GithaError {
  readonly code = 'GITHA_ERR_SERVER_BUSY';
}

/** A client sent nothing (or not a whole request) for too long. */
export class ClientTimeoutError extends GithaError {
  readonly code = 'GITHA_ERR_CLIENT_TIMEOUT';
}

// ---- Request classification --------------------------------------------------

/** A repository path that is not canonical-able: `..`, absolute, NUL, `\`, … */
export class InvalidRepositoryNameError extends GithaError {
  readonly code = 'GITHA_ERR_INVALID_REPOSITORY';
}

/** A service other than git-upload-pack, git-receive-pack, git-upload-archive. */
export class UnknownServiceError extends GithaError {
  readonly code = 'GITHA_ERR_UNKNOWN_SERVICE';
}

/** A request githa does not serve: dumb HTTP, unknown path, bad method. */
export class UnsupportedRequestError extends GithaError {
  readonly code = 'GITHA_ERR_UNSUPPORTED_REQUEST';
}

/** An SSH exec command that is not exactly one git command with one path. */
export class InvalidCommandError extends GithaError {
  readonly code = 'GITHA_ERR_INVALID_COMMAND';
}

// ---- Cluster state --------------------------------------------------------------

/** Redis is unreachable or answered with an error: githa fails closed. */
export class ClusterStateUnavailableError extends GithaError {
  readonly code = 'GITHA_ERR_STATE_UNAVAILABLE';
}

/** The write lock could not be taken within the configured wait. */
export class RepositoryBusyError extends GithaError {
  readonly code = 'GITHA_ERR_REPOSITORY_BUSY';
}

/** The repository is frozen for this kind of access; `reason` says why. */
export class RepositoryFrozenError extends GithaError {
  readonly code = 'GITHA_ERR_REPOSITORY_FROZEN';
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** No leader of the repository is reachable. */
export class NoLeaderError extends GithaError {
  readonly code = 'GITHA_ERR_NO_LEADER';
}

/** Fewer backends are up than replication.writeQuorum needs: writes are refused, reads go on. */
export class QuorumUnavailableError extends GithaError {
  readonly code = 'GITHA_ERR_QUORUM_UNAVAILABLE';
}

/**
 * The push reached a backend and is recorded, but fewer copies than the write
 * quorum could be made in time: githa cannot acknowledge it (the client is
 * told so; replication goes on in the background).
 */
export class QuorumNotReachedError extends GithaError {
  readonly code = 'GITHA_ERR_QUORUM_NOT_REACHED';
}

/**
 * Redis holds a lower version than githa already saw (e.g. restored from an
 * old snapshot): githa fails closed rather than serve a guess (docs/operations.md "Redis lost or restored from an old snapshot").
 */
export class StateRegressionError extends GithaError {
  readonly code = 'GITHA_ERR_STATE_REGRESSION';
}

/** The repository exists on no backend. */
export class RepositoryNotFoundError extends GithaError {
  readonly code = 'GITHA_ERR_REPOSITORY_NOT_FOUND';

  /**
   * The answer for a repository on no backend, and (src/auth/access.ts) for
   * one the caller may not read: one message, so the two cannot drift apart
   * and tell a client that a repository exists.
   */
  static missing(repo: string): RepositoryNotFoundError {
    return new RepositoryNotFoundError(`repository ${repo} not found`);
  }

  /**
   * Set when no backend has the repository (not when it is refused as
   * nested, or hidden by the access rules): a push may create it
   * (`repositories.createOnPush`). The message is missing()'s.
   */
  nowhere = false;

  /** missing(), for a repository found on no backend. */
  static nowhere(repo: string): RepositoryNotFoundError {
    const e = RepositoryNotFoundError.missing(repo);
    e.nowhere = true;
    return e;
  }

  /** What a push to a repository that exists nowhere is told when pushes do not create repositories. */
  static forPush(repo: string): RepositoryNotFoundError {
    return new RepositoryNotFoundError(`repository ${repo} not found; an operator creates it with: githa create ${repo}`);
  }
}

/**
 * The repository was deleted or renamed (docs/operations.md "Repository
 * lifecycle"): its tombstone (`githa:repo:{R}:gone`) answers every read and
 * push at once, before any backend is asked.
 */
export class RepositoryGoneError extends GithaError {
  readonly code = 'GITHA_ERR_REPOSITORY_GONE';

  static deleted(repo: string): RepositoryGoneError {
    return new RepositoryGoneError(`repository ${repo} was deleted (an operator can restore it: githa restore ${repo})`);
  }

  static renamed(repo: string, to: string): RepositoryGoneError {
    return new RepositoryGoneError(`repository ${repo} was renamed to ${to}: point your remote at it (git remote set-url origin <url of ${to}>)`);
  }

  /** A delete or rename is under way: the repository answers nothing until it ends. */
  static changing(repo: string, what: 'deleted' | 'renamed', to?: string): RepositoryGoneError {
    return new RepositoryGoneError(`repository ${repo} is being ${what}${to ? ` to ${to}` : ''}; try again in a moment`);
  }
}

/** A lifecycle command would overwrite something: the repository (or the new name) exists already. */
export class RepositoryExistsError extends GithaError {
  readonly code = 'GITHA_ERR_REPOSITORY_EXISTS';
}

/** `githa repo factor R N` cannot do what it is asked (no room on distinct hosts, or no current copy would stay assigned). */
export class ReplicationFactorError extends GithaError {
  readonly code = 'GITHA_ERR_REPLICATION_FACTOR';
}

/**
 * A lifecycle command needs a backend githa may not manage (no `admin`, or
 * unreachable): refused before anything changes; the message names what an
 * operator runs there by hand.
 */
export class BackendNotManagedError extends GithaError {
  readonly code = 'GITHA_ERR_BACKEND_NOT_MANAGED';
}

/** A command on a backend's admin account failed (deploy/backend/githa-admin). */
export class BackendAdminError extends GithaError {
  readonly code = 'GITHA_ERR_BACKEND_ADMIN';
  constructor(
    message: string,
    readonly backendId: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The guarded commit script refused: the lock or the marker is no longer ours. */
export class CommitRefusedError extends GithaError {
  readonly code = 'GITHA_ERR_COMMIT_REFUSED';
}

/** The write lock was lost (could not be extended) while a push was running. */
export class LockLostError extends GithaError {
  readonly code = 'GITHA_ERR_LOCK_LOST';
}

// ---- Backends --------------------------------------------------------------------

/** A backend could not be reached, or failed before sending anything. */
export class BackendUnavailableError extends GithaError {
  readonly code = 'GITHA_ERR_BACKEND_UNAVAILABLE';
  constructor(
    message: string,
    readonly backendId: string,
    options?: { cause?: unknown; bytesSent?: boolean },
  ) {
    super(message, options);
    this.bytesSent = options?.bytesSent ?? false;
  }
  /** True when part of the request had already reached the backend. */
  readonly bytesSent: boolean;
}

/** A backend answered, but not as a Git server should (bad status, bad bytes). */
export class BackendProtocolError extends GithaError {
  readonly code = 'GITHA_ERR_BACKEND_PROTOCOL';
}

/**
 * A backend asked githa's own request for credentials (401) or refused them
 * (403), where githa had no service credentials of its own for it
 * (backends[].httpAuth): the request went with a client's credentials, or with
 * none. `answer` is what the backend sent (status, challenge, a short body),
 * so a passthrough front end can put the challenge to the client
 * (docs/security.md "Authentication"); elsewhere it is the backend's fault.
 */
export class BackendAuthRequiredError extends GithaError {
  readonly code = 'GITHA_ERR_BACKEND_AUTH_REQUIRED';
  constructor(
    message: string,
    readonly backendId: string,
    readonly answer: { status: number; headers: Record<string, string | string[]>; body: Buffer },
  ) {
    super(message);
  }
}

/**
 * The backend failed after the push reached it: githa cannot tell whether refs
 * changed, so the marker stays and the repository refuses writes until resolved.
 */
export class WriteInterruptedError extends GithaError {
  readonly code = 'GITHA_ERR_WRITE_INTERRUPTED';
  constructor(
    readonly repo: string,
    readonly backendId: string,
  ) {
    super(
      `the push to ${repo} on backend ${backendId} was interrupted; it may or may not have been applied, ` +
        `and writes to ${repo} are frozen until it is resolved (githa thaw ${repo} --demote ${backendId}); reads go on`,
    );
  }
}

/**
 * A push's target turned out not to hold the recorded refs when the push
 * landed (its listing with the push's commands undone differs from the
 * recorded pre-push checksum: a ref rolled back by a crash, a restore). The
 * push is not recorded, the copy stops leading and is repaired (the pushed
 * commits it holds are kept), and the client is told to push again: the next
 * push goes to another leader (docs/architecture.md "Verified copies").
 */
export class CopyContradictsRecordError extends GithaError {
  readonly code = 'GITHA_ERR_COPY_CONTRADICTS_RECORD';
  constructor(
    readonly repo: string,
    readonly backendId: string,
  ) {
    super(
      `the push to ${repo} was not acknowledged: backend ${backendId} did not hold the recorded refs when it landed, ` +
        `so nothing was recorded; that copy is being repaired, push again (it goes to another copy)`,
    );
  }
}

/** Copying a repository from a leader to a stale backend failed. */
export class CatchUpError extends GithaError {
  readonly code = 'GITHA_ERR_CATCH_UP';
  /** Why, as githa_catchup_failures_total counts it (CatchUpFailure in src/cluster/observer.ts). */
  readonly reason: 'source-missing' | 'target-missing' | 'lock-lost' | 'unsupported' | 'refused' | 'other';
  constructor(message: string, options?: { cause?: unknown; reason?: CatchUpError['reason'] }) {
    super(message, options);
    this.reason = options?.reason ?? 'other';
  }
}

/**
 * A copy's target has no repository by that name: the Git protocol cannot
 * create one, so it is created through the backend's admin account when it
 * has one (src/cluster/fill.ts), else an operator runs the command githa logs.
 */
export class CopyTargetMissingError extends CatchUpError {
  constructor(
    readonly repo: string,
    readonly backendId: string,
  ) {
    super(`${repo} does not exist on ${backendId}; create it there (stock Git servers cannot create repositories over the Git protocol)`, { reason: 'target-missing' });
  }
}

// ---- Authentication and authorization (src/auth, docs/security.md) ---------------

/** HTTP with `auth.http.mode: githa`: no credentials where they are needed, or wrong ones (401 with a challenge). */
export class AuthenticationRequiredError extends GithaError {
  readonly code = 'GITHA_ERR_AUTHENTICATION_REQUIRED';
}

/**
 * HTTP with `auth.http.mode: githa`: too many failed logins from the client's
 * address or for the user name lately (429; docs/security.md "Brute force").
 */
export class AuthenticationThrottledError extends GithaError {
  readonly code = 'GITHA_ERR_AUTHENTICATION_THROTTLED';
  constructor(
    message: string,
    /** Seconds until a try is counted again (HTTP Retry-After). */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/**
 * The identity may read the repository but not push to it. (No read access is
 * answered with RepositoryNotFoundError, exactly as for a missing repository.)
 */
export class AccessDeniedError extends GithaError {
  readonly code = 'GITHA_ERR_ACCESS_DENIED';
}

// ---- Configuration ----------------------------------------------------------------

/** The configuration file is missing, unreadable or invalid. */
export class ConfigError extends GithaError {
  readonly code = 'GITHA_ERR_CONFIG';
}
