import {
  AccessDeniedError,
  AuthenticationRequiredError,
  AuthenticationThrottledError,
  BackendAuthRequiredError,
  BackendProtocolError,
  BackendUnavailableError,
  CatchUpError,
  ClusterStateUnavailableError,
  CommitRefusedError,
  CopyContradictsRecordError,
  GithaError,
  InvalidCommandError,
  InvalidRepositoryNameError,
  LimitExceededError,
  ClientTimeoutError,
  ServerBusyError,
  TooManyConnectionsError,
  LockLostError,
  NoLeaderError,
  PktLineError,
  QuorumNotReachedError,
  QuorumUnavailableError,
  StateRegressionError,
  ProtocolSyntaxError,
  RemoteFatalError,
  RepositoryBusyError,
  RepositoryFrozenError,
  RepositoryNotFoundError,
  RepositoryGoneError,
  RepositoryExistsError,
  BackendNotManagedError,
  BackendAdminError,
  SidebandError,
  UnknownServiceError,
  UnsupportedRequestError,
  WriteInterruptedError,
} from '../errors.js';

/** What a transport shows the git client for a failure, and how loudly githa logs it. */
export interface ClientFacingError {
  code: string;
  /** HTTP status for the smart-HTTP front end. */
  httpStatus: number;
  /** One line, shown as `remote: githa: …` or in `fatal: …`; safe to show. */
  message: string;
  /** Seconds a client may wait before trying again (HTTP Retry-After). */
  retryAfter?: number;
  level: 'info' | 'warn' | 'error';
}

type Rule = [new (...args: never[]) => GithaError, number, ClientFacingError['level'], number?];

/** The one place where failures become client answers (DEVELOPERS.md: "one error class per failure"). */
const RULES: Rule[] = [
  [InvalidRepositoryNameError, 400, 'info'],
  [UnknownServiceError, 400, 'info'],
  [InvalidCommandError, 400, 'info'],
  [UnsupportedRequestError, 404, 'info'],
  [PktLineError, 400, 'info'],
  [ProtocolSyntaxError, 400, 'info'],
  [SidebandError, 400, 'info'],
  [LimitExceededError, 413, 'info'],
  [TooManyConnectionsError, 429, 'info', 5],
  [ServerBusyError, 503, 'warn', 5],
  [ClientTimeoutError, 408, 'info'],
  [AuthenticationRequiredError, 401, 'info'],
  [AuthenticationThrottledError, 429, 'warn'],
  [AccessDeniedError, 403, 'info'],
  [RepositoryNotFoundError, 404, 'info'],
  // Deleted or renamed (docs/operations.md "Repository lifecycle"): git shows the message, then "not found".
  [RepositoryGoneError, 404, 'info'],
  [RepositoryExistsError, 409, 'info'],
  [BackendNotManagedError, 503, 'warn'],
  [BackendAdminError, 502, 'error'],
  [RepositoryBusyError, 503, 'warn', 5],
  [RepositoryFrozenError, 503, 'warn', 30],
  [NoLeaderError, 503, 'error', 10],
  [QuorumUnavailableError, 503, 'error', 10],
  [QuorumNotReachedError, 503, 'error', 10],
  [StateRegressionError, 503, 'error'],
  [ClusterStateUnavailableError, 503, 'error', 5],
  [CommitRefusedError, 503, 'error', 5],
  [LockLostError, 503, 'error', 5],
  [WriteInterruptedError, 502, 'error'],
  // Nothing was recorded and the copy is repaired: pushing again succeeds on another leader.
  [CopyContradictsRecordError, 503, 'error', 1],
  [BackendUnavailableError, 502, 'error', 5],
  [BackendProtocolError, 502, 'error'],
  // Reaches a client as a 502 only where no challenge can be relayed (mode githa, SSH, git://): the operator's to fix (backends[].httpAuth).
  [BackendAuthRequiredError, 502, 'warn'],
  [RemoteFatalError, 502, 'error'],
  [CatchUpError, 502, 'error'],
];

export function toClientError(err: unknown): ClientFacingError {
  if (err instanceof GithaError) {
    for (const [cls, httpStatus, level, retryAfter] of RULES) {
      if (!(err instanceof cls)) continue;
      // An error that knows its own wait (a throttle's window) says so; the rest have the class's.
      const wait = err instanceof AuthenticationThrottledError ? err.retryAfterSeconds : retryAfter;
      return { code: err.code, httpStatus, level, message: oneLine(err.message), ...(wait ? { retryAfter: wait } : {}) };
    }
    return { code: err.code, httpStatus: 500, level: 'error', message: oneLine(err.message) };
  }
  return { code: 'GITHA_ERR_INTERNAL', httpStatus: 500, level: 'error', message: 'internal error in githa; the operator can find it in githa\'s log' };
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').slice(0, 1000);
}

/** The error and its causes, for githa's own log (never for the client). */
export function describeForLog(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
  }
  return parts.join(' <- ');
}
