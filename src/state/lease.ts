/**
 * How a lease talks to its store: the pair-lock scripts, or a redlock lock.
 * `extend` answers false when the lease is no longer this holder's.
 */
export interface LeaseDriver {
  extend(ttlMs: number): Promise<boolean>;
  release(): Promise<void>;
}

/** What a holder sees of a lease. */
export interface Held {
  /** The random value stored under the lock key: guarded scripts compare it. */
  readonly token: string;
  /** Aborted (with LockLostError) once the lease may have been lost: stop before the last byte. */
  readonly signal: AbortSignal;
}

/** How often a failed release is tried again, until the lease would have run out anyway. */
const RELEASE_RETRY_MS = 250;

/**
 * The one lease discipline of githa (docs/architecture.md "Leases"), for the
 * write lock and the copy locks alike:
 * - renewed a third of a lease before it ends, on a performance.now()
 *   schedule, so wall-clock jumps cannot stretch it;
 * - `signal` aborts as soon as the lease may be lost: a renewal refused, a
 *   renewal failing, or the lease's end reached with no renewal answered
 *   (an event loop blocked past the lease, a Redis reply delayed past it);
 * - a failed release (Redis failing over) is retried in the background until
 *   it succeeds or the lease has run out anyway: a lock left behind would
 *   keep every other holder waiting for a whole lease.
 */
export class Lease implements Held {
  private readonly controller = new AbortController();
  readonly signal: AbortSignal;
  private validUntil: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  private readonly lostError: (cause: unknown) => Error;

  constructor(
    readonly token: string,
    private readonly driver: LeaseDriver,
    private readonly ttlMs: number,
    /** When the lease was granted: performance.now() before the acquiring request was sent. */
    grantedAt: number,
    opts: {
      /** A signal of the caller's that aborts this lease's signal too. */
      outer?: AbortSignal | undefined;
      /** The error the signal aborts with when the lease may be lost. */
      lostError: (cause: unknown) => Error;
    },
  ) {
    this.lostError = opts.lostError;
    this.signal = opts.outer ? AbortSignal.any([opts.outer, this.controller.signal]) : this.controller.signal;
    this.validUntil = grantedAt + ttlMs;
    this.schedule();
  }

  /** Milliseconds of lease left as this process sees it (≤ 0: possibly lost). */
  remainingMs(): number {
    return this.validUntil - performance.now();
  }

  /**
   * Records a renewal that a script made on its own (a fence extends the
   * lease): `sentAt` is when its request left, the only safe start.
   */
  renewed(sentAt: number): void {
    if (this.stopped) return;
    this.validUntil = Math.max(this.validUntil, sentAt + this.ttlMs);
    this.schedule();
  }

  /** Marks the lease lost (a fence found it gone) and aborts its signal. */
  lost(cause: unknown): void {
    if (this.stopped) return;
    this.stop();
    this.controller.abort(this.lostError(cause));
  }

  private schedule(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    const now = performance.now();
    this.renewTimer = setTimeout(() => this.renew(), Math.max(0, this.validUntil - now - this.ttlMs / 3));
    this.renewTimer.unref();
    this.armExpiry();
  }

  /**
   * Aborts once the lease's end is reached with no renewal answered. A timer
   * can fire a little before performance.now() reaches its target (libuv
   * counts whole milliseconds), so an early one re-arms for the rest.
   */
  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const left = this.validUntil - performance.now();
    if (left <= 0) {
      this.lost(new Error('no renewal answered before the lease ended'));
      return;
    }
    this.expiryTimer = setTimeout(() => this.armExpiry(), Math.ceil(left) + 1);
    this.expiryTimer.unref();
  }

  private renew(): void {
    if (this.stopped) return;
    const sentAt = performance.now();
    this.driver.extend(this.ttlMs).then(
      (held) => {
        if (!held) this.lost(new Error('the lock is no longer this holder\'s'));
        else if (performance.now() >= this.validUntil) this.lost(new Error('the renewal was answered after the lease ended'));
        else this.renewed(sentAt);
      },
      (err: unknown) => this.lost(err),
    );
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }

  /** Stops renewing and frees the lock, retrying in the background while the lease could still be valid. */
  async release(): Promise<void> {
    this.stop();
    const until = this.validUntil;
    const attempt = (): Promise<boolean> =>
      this.driver.release().then(
        () => true,
        () => false,
      );
    if (await attempt()) return;
    const retry = (): void => {
      if (performance.now() > until) return;
      setTimeout(() => {
        void attempt().then((ok) => {
          if (!ok) retry();
        });
      }, RELEASE_RETRY_MS).unref();
    };
    retry();
  }
}
