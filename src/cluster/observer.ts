/**
 * Why a catch-up recorded nothing (src/cluster/catch-up.ts): a bounded set, the
 * `reason` label of githa_catchup_failures_total (docs/observability.md).
 * Not recorded: `current` (the target records that version already),
 * `writing` (a write is in flight on it), `moved` (no backend records the
 * copied version any more), `unassigned` (the target left the assignment
 * during the copy: a move switched it out), `mismatch` (the source or the target changed
 * during the copy), `contradicts` (the target is off its record: drifted and
 * repaired). Failed: `source-missing`, `target-missing` (a new or replaced
 * backend; a fill creates it), `lock-lost` (the copy lock expired),
 * `unsupported` (the target lacks report-status or delete-refs), `refused`
 * (the target's receive-pack refused the copy), `backend-unavailable`,
 * `backend-protocol`, `state-unavailable` (Redis), `aborted`, `other`.
 */
export const CATCH_UP_FAILURES = [
  'current',
  'writing',
  'moved',
  'unassigned',
  'mismatch',
  'contradicts',
  'source-missing',
  'target-missing',
  'lock-lost',
  'unsupported',
  'refused',
  'backend-unavailable',
  'backend-protocol',
  'state-unavailable',
  'aborted',
  'other',
] as const;
export type CatchUpFailure = (typeof CATCH_UP_FAILURES)[number];

/**
 * What githa reports about its own work, for metrics (src/admin/metrics.ts
 * implements it with prom-client). The cluster and the front ends call it;
 * they never import prom-client. Every method must be cheap and must never
 * throw. Labels are bounded sets: no repository names, no users.
 */
export interface Observer {
  /**
   * One client request, when its front end writes its log line. `seconds` from accept to end;
   * `backend`: the backend that served it (the log line's `backend`), absent when none was reached.
   */
  request(r: { transport: 'http' | 'ssh' | 'git'; service: string; outcome: string; seconds: number; bytes: number; backend?: string | undefined }): void;
  /** Time spent waiting for a repository's write lock; outcome `acquired`, `busy` or `unavailable`. */
  lockWait(seconds: number, outcome: string): void;
  /** One catch-up (outcome `ok`, `busy`, `not-recorded`, `failed`); `reason` for `not-recorded` and `failed`. */
  catchUp(r: { outcome: string; seconds: number; bytes: number; reason?: CatchUpFailure }): void;
  /** A version caught up by the replicator: now − the time it was committed. */
  replicationLag(seconds: number): void;
  /** One write-quorum copy attempt: `copied`, `contradicts`, `mismatch`, `failed` or `timeout`. */
  quorumCopy(outcome: string): void;
  /** A push recorded with fewer copies than replication.writeQuorum (the client is told; the repository shows as partial or unsynchronized). */
  quorumMissed(): void;
  /** A read dropped a copy's answer and went to another leader (src/cluster/read-check.ts RetryReason). */
  readRetried(reason: string): void;
  /** A missing copy created on `backend` through its admin account (src/cluster/fill.ts). */
  copyCreated(backend: string): void;
  /** Fills of missing copies queued or running on `backend` in this githa, now. */
  fillPending(backend: string, count: number): void;
  /** A push stopped or refused by push.* limits (docs/security.md "Slow pushes"): `slow`, `too-long` or `user-locks`. */
  pushLimited(reason: string): void;
  /** The SSH front end refused a connection, a channel, a request or a key by a limit (`reason`: docs/security.md#ssh). */
  sshRefused(reason: string): void;
  /** A refused HTTP login (mode githa): `wrong` credentials, `throttled` (429), `busy` (verification queue full, 503). */
  authFailure(outcome: 'wrong' | 'throttled' | 'busy'): void;
}

/** The default: observes nothing. */
export const NO_OBSERVER: Observer = {
  request: () => {},
  lockWait: () => {},
  catchUp: () => {},
  replicationLag: () => {},
  quorumCopy: () => {},
  quorumMissed: () => {},
  readRetried: () => {},
  copyCreated: () => {},
  fillPending: () => {},
  pushLimited: () => {},
  sshRefused: () => {},
  authFailure: () => {},
};
