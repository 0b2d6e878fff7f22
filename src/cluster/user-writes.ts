import { TooManyConnectionsError } from '../errors.js';

/**
 * The write locks each user holds at once in this githa (push.maxLocksPerUser;
 * docs/security.md "Slow pushes"): one user pushing to many repositories at
 * once would otherwise hold all of their locks, and refuse everyone else's
 * pushes to them, with nothing but connections. Counted per process: the
 * count lives with the pushes, so a githa that dies takes its count with it.
 */
export class UserWrites {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts one more lock held by `user`; the returned function gives it back (once). Throws over the cap. */
  take(user: string): () => void {
    const now = this.held.get(user) ?? 0;
    if (now >= this.max) {
      throw new TooManyConnectionsError(
        `${user} already has ${now} pushes in progress (push.maxLocksPerUser ${this.max}); try again when one has ended`,
      );
    }
    this.held.set(user, now + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.held.get(user) ?? 1) - 1;
      if (left > 0) this.held.set(user, left);
      else this.held.delete(user);
    };
  }

  /** Locks `user` holds now (for tests and logs). */
  count(user: string): number {
    return this.held.get(user) ?? 0;
  }
}
