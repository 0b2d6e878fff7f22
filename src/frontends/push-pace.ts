import { ClientTimeoutError } from '../errors.js';

/** push.* limits on how a push's bytes arrive while it holds the write lock (docs/security.md "Slow pushes"). */
export interface PushPaceLimits {
  /** The least a push must send, on average, over every `rateWindowMs` (bytes per second); 0: no rate check. */
  minBytesPerSecond: number;
  rateWindowMs: number;
  /** The longest a push may take to send its bytes under the lock; 0: no limit. */
  maxTransferMs: number;
}

export type PushCutReason = 'slow' | 'too-long';

/** Why githa stopped a push (ClientTimeoutError), as the git client shows it. */
export function pushCutError(reason: PushCutReason, limits: PushPaceLimits): ClientTimeoutError {
  const seconds = (ms: number): string => `${Math.round(ms / 100) / 10} s`;
  const why =
    reason === 'slow'
      ? `its data arrived at under ${limits.minBytesPerSecond} bytes/s over ${seconds(limits.rateWindowMs)} (push.minBytesPerSecond)`
      : `it took longer than ${seconds(limits.maxTransferMs)} to send (push.maxTransferMs)`;
  return new ClientTimeoutError(`push stopped: ${why}; the repository's write lock is released, try again`);
}

/**
 * Watches the client's bytes of a push that holds the repository's write lock
 * (docs/architecture.md "A push (receive-pack)"): a client that trickles its
 * pack (or sends nothing) would hold the lock, and refuse every other push of
 * the repository, for as long as it likes. When the bytes of the last
 * `rateWindowMs` fall under `minBytesPerSecond`, or the transfer outlasts
 * `maxTransferMs`, `cut` is called once; the transport then stops the
 * backend's receive-pack before the pack's end, so the push ends as a cut
 * push does (nothing changed on the target, the marker goes).
 *
 * The window is checked in quarters: a cut comes between 1 and 1.25 windows
 * after the rate fell. The first window starts with the watch, so a client's
 * silent "Compressing objects" phase of up to one window is allowed.
 */
export class PushPace {
  private total = 0;
  /** Totals at the last quarter-window ticks, oldest first (at most 4). */
  private readonly marks: number[] = [];
  private readonly ticker: NodeJS.Timeout | undefined;
  private readonly deadline: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly limits: PushPaceLimits,
    private readonly cut: (reason: PushCutReason) => void,
  ) {
    if (limits.minBytesPerSecond > 0 && limits.rateWindowMs > 0) {
      this.ticker = setInterval(() => this.tick(), Math.max(1, Math.floor(limits.rateWindowMs / 4)));
      this.ticker.unref();
    }
    if (limits.maxTransferMs > 0) {
      this.deadline = setTimeout(() => this.fire('too-long'), limits.maxTransferMs);
      this.deadline.unref();
    }
  }

  /** Bytes that arrived from the client. */
  add(bytes: number): void {
    this.total += bytes;
  }

  /** The client's bytes ended (or the push ended): nothing more is watched. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.ticker);
    clearTimeout(this.deadline);
  }

  private tick(): void {
    this.marks.push(this.total);
    if (this.marks.length < 4) return;
    // The total four quarters ago (at the start for the first window).
    const before = this.marks.length > 4 ? this.marks.shift()! : 0;
    if (this.total - before < (this.limits.minBytesPerSecond * this.limits.rateWindowMs) / 1000) this.fire('slow');
  }

  private fire(reason: PushCutReason): void {
    if (this.stopped) return;
    this.stop();
    this.cut(reason);
  }
}
