/**
 * Failed-login throttling (docs/security.md "Brute force"): failures are
 * counted per client address and per user name over a sliding window; an
 * address or a user with `limit` failures in the window is refused until the
 * oldest of them leaves it (429 + Retry-After), without verifying anything.
 * Pure and in-memory: each githa counts its own clients.
 */

export interface ThrottleOptions {
  windowMs: number;
  /** Failures per client address in the window (0: no limit). */
  perAddress: number;
  /** Failures per user name in the window (0: no limit). */
  perUser: number;
  /** Most addresses and users remembered; the least recently failed go first. */
  maxKeys?: number;
  now?: () => number;
}

export class FailureThrottle {
  /** key → failure times, oldest first, at most the key's limit of them. */
  private readonly failures = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(private readonly options: ThrottleOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** Milliseconds until `address` and `user` may try again; 0 when they may now. */
  blockedFor(address: string, user: string | undefined): number {
    const now = this.now();
    let wait = this.wait(`a:${address}`, this.options.perAddress, now);
    if (user !== undefined) wait = Math.max(wait, this.wait(`u:${user}`, this.options.perUser, now));
    return wait;
  }

  /** One failed attempt. */
  fail(address: string, user: string | undefined): void {
    const now = this.now();
    this.record(`a:${address}`, this.options.perAddress, now);
    if (user !== undefined) this.record(`u:${user}`, this.options.perUser, now);
  }

  /** A user who logged in starts afresh (the address does not: it may be shared with an attacker). */
  succeed(user: string): void {
    this.failures.delete(`u:${user}`);
  }

  private wait(key: string, limit: number, now: number): number {
    if (limit <= 0) return 0;
    const times = this.live(key, now);
    if (!times || times.length < limit) return 0;
    return Math.max(1, (times[times.length - limit] as number) + this.options.windowMs - now);
  }

  private record(key: string, limit: number, now: number): void {
    if (limit <= 0) return;
    const times = this.live(key, now) ?? [];
    times.push(now);
    if (times.length > limit) times.splice(0, times.length - limit);
    this.failures.delete(key);
    this.failures.set(key, times);
    const max = this.options.maxKeys ?? 100_000;
    while (this.failures.size > max) this.failures.delete(this.failures.keys().next().value as string);
  }

  /** The key's failures still in the window (expired ones dropped). */
  private live(key: string, now: number): number[] | undefined {
    const times = this.failures.get(key);
    if (!times) return undefined;
    while (times.length > 0 && (times[0] as number) + this.options.windowMs <= now) times.shift();
    if (times.length === 0) {
      this.failures.delete(key);
      return undefined;
    }
    return times;
  }
}
