/**
 * What githa reports about its own work, for metrics (src/admin/metrics.ts
 * implements it with prom-client). The cluster and the front ends call it;
 * they never import prom-client. Every method must be cheap and must never
 * throw. Labels are bounded sets: no repository names, no users.
 */
export interface Observer {
  /** One client request, when its front end writes its log line. `seconds` from accept to end. */
  request(r: { transport: 'http' | 'ssh' | 'git'; service: string; outcome: string; seconds: number; bytes: number }): void;
  /** Time spent waiting for a repository's write lock; outcome `acquired`, `busy` or `unavailable`. */
  lockWait(seconds: number, outcome: string): void;
  /** One catch-up (outcome `ok`, `busy`, `not-recorded`, `failed`). */
  catchUp(r: { outcome: string; seconds: number; bytes: number }): void;
  /** A version caught up by the replicator: now − the time it was committed. */
  replicationLag(seconds: number): void;
  /** One write-quorum copy attempt: `copied`, `mismatch`, `failed` or `timeout`. */
  quorumCopy(outcome: string): void;
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
  readRetried: () => {},
  copyCreated: () => {},
  fillPending: () => {},
  pushLimited: () => {},
  sshRefused: () => {},
  authFailure: () => {},
};
