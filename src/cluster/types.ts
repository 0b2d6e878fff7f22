import type { LentCredentials } from '../backends/types.js';
import type { BackendConfig } from '../config/schema.js';
import type { RefCommand } from '../protocol/receive-pack-request.js';
import type { ReportStatus } from '../protocol/report-status.js';
import type { WaitReporter } from './wait-report.js';

/*
 * What the cluster and its transports exchange (docs/architecture.md): the
 * cluster knows backends and their Git clients, never HTTP or SSH.
 */

export type Backend = BackendConfig;

/** An operator's runtime override of a backend's configured flags (stored in githa:backend:<id>). */
export interface BackendOverride {
  enabled?: boolean;
  writable?: boolean;
  /** Drained (`githa backend drain`): placement gives it nothing new (docs/architecture.md "Moves"). */
  drain?: boolean;
}

/** Where a read goes: try `candidates` in order. */
export interface ReadRoute {
  readonly repo: string;
  readonly version: number;
  readonly candidates: readonly Backend[];
  /** The leaders at `version`, for the message when none of them answers. */
  readonly leaders: readonly string[];
  /** What the record says each candidate holds: the checksum its answer is checked against (src/cluster/read-check.ts). */
  readonly checksums: ReadonlyMap<string, string>;
}

/** Which backends a front end can use (those with an endpoint for its transport). */
export type Accepts = (backend: Backend) => boolean;

export interface WriteRequest {
  repo: string;
  user: string;
  transport: string;
  /** The client's address (a trusted balancer's PROXY header's, else the TCP peer's), for the push log. */
  ip?: string | undefined;
  /** The command list, when the transport knows it before forwarding (HTTP). */
  commands?: readonly RefCommand[];
  accepts?: Accepts;
  /**
   * The client's credentials, for githa's listing of the target right after
   * the push only (passthrough mode, a backend without httpAuth; never stored).
   */
  lent?: LentCredentials | undefined;
  /**
   * githa has not verified the pusher (HTTP passthrough: the backend decides,
   * docs/security.md): such a push never creates a repository, since the
   * create would run before any backend authorized it.
   */
  unverified?: boolean | undefined;
  /** Where the push's waits (lock, catch-up, quorum copies) are told, if the client can be shown them (src/cluster/wait-report.ts). */
  waits?: WaitReporter | undefined;
}

/** How the transport's exchange with the target ended. */
export interface ForwardResult {
  /** 'complete': the whole answer arrived. 'cut': the pack never fully reached the backend, so no ref changed. 'unknown': anything else. */
  ending: 'complete' | 'cut' | 'unknown';
  report?: ReportStatus | undefined;
  bytes?: number;
  /** The command list, when the transport learned it while forwarding (SSH, git://). */
  commands?: readonly RefCommand[];
  /** Nothing can have changed: the client sent an empty command list, or the backend refused the request before receive-pack ran (HTTP 4xx). */
  noop?: boolean;
  /**
   * Fan-out (ForwardHooks.copies): how the same push went on each copy, by
   * backend id. A copy the transport could not send to at all is 'cut'. A
   * transport without fan-out leaves this out: every named copy then counts
   * as 'cut' (nothing reached it) and is copied after the push instead.
   */
  copies?: ReadonlyMap<string, CopyForward>;
}

/** How a fan-out push went on one copy (docs/architecture.md "Write quorum"). */
export interface CopyForward {
  /**
   * 'complete': the copy's whole answer arrived. 'cut': githa stopped sending
   * before the pack's last byte reached it (it could not be opened, it stalled
   * past replication.fanOutStallMs and was dropped, the client went away, or it
   * refused the request before receive-pack ran, HTTP 4xx): it cannot have
   * changed. 'unknown': the whole body went and the answer did not come whole.
   */
  ending: 'complete' | 'cut' | 'unknown';
  report?: ReportStatus | undefined;
  /** Why it was cut or failed, for the log. */
  reason?: string | undefined;
}

/** What a transport may tell the write session while it forwards (docs/architecture.md "SSH and git://"). */
export interface ForwardHooks {
  /**
   * The command list, as soon as the transport has read it and before the
   * pack goes on: recorded in the write's marker (await it), so that an
   * interruption can be resolved by adoption (docs/redis.md `writing`).
   * Resolves false when the marker does not hold them (Redis failed, or the
   * list is over the marker's cap): the transport then cuts every fan-out
   * copy before the chunk that ends the list, so only the target can take a
   * push whose interruption would be resolved blind (drifted, not adopted).
   */
  commands(commands: readonly RefCommand[]): Promise<boolean>;
  /**
   * Fan-out: the backends this push is sent to at the same time as the
   * target, each already named in the write's marker (reads avoid them).
   * The transport sends them the same bytes it sends the target (the SSH
   * and git:// advertisement each copy sends is read and dropped), with
   * backpressure from the slowest, never holding the pack in memory; only
   * the target's answer reaches the client. Empty when fan-out is off.
   */
  readonly copies: readonly Backend[];
  /** replication.fanOutStallMs: a copy that takes no bytes for this long while the others wait on it is dropped before the pack's end. */
  readonly stallMs: number;
}

/**
 * Proxies one push to `target`. Throws BackendUnavailableError with
 * bytesSent=false when nothing reached the backend (another leader is tried).
 * Must stop sending when `signal` aborts (the lock was lost).
 */
export type Forward = (target: Backend, signal: AbortSignal, hooks: ForwardHooks) => Promise<ForwardResult>;

export type WriteOutcome =
  | { kind: 'committed'; version: number; backend: string }
  | { kind: 'unchanged'; backend: string }
  /** Could not tell whether refs changed: the marker stays (docs/architecture.md "A push" 5). */
  | { kind: 'interrupted'; backend: string };
