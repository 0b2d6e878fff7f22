import { randomUUID } from 'node:crypto';
import { duplicateClient, type RedisClient } from './redis.js';

/**
 * How a write lock passes from one push to the next (docs/architecture.md
 * "Leases", "The lock's handoff"). Waiters of one githa for one repository
 * stand in line (first come, first served); only the first asks Redis. It is
 * woken the moment a release lands: this githa's own release wakes it
 * directly, another githa's through the `<prefix>lock-released` pub/sub
 * channel, on a subscriber connection of its own opened when this githa
 * first waits. A release nobody announces (a holder that died and let its
 * lease run out, a message lost while the subscriber reconnected) is found by
 * the first waiter's own timer: 100-150 ms while the channel is heard, from a
 * few ms up to 50 while it is not (src/state/lock.ts).
 */
export interface LockWaiter {
  /** Whether this waiter is first in this githa's line for the repository (only the first one asks Redis). */
  readonly first: boolean;
  /**
   * Resolves when woken (a release heard while first, or becoming first),
   * after `ms`, or at once when a wake-up came since the last call: a
   * release heard while an attempt was on its way is not lost.
   */
  next(ms: number): Promise<void>;
  /** Leaves the line. A waiter that did not get the lock wakes the next one, which then asks at once. */
  leave(granted: boolean): void;
}

class Waiter implements LockWaiter {
  private woken = false;
  private resolve: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly line: Waiter[],
    private readonly onEmpty: () => void,
  ) {}

  get first(): boolean {
    return this.line[0] === this;
  }

  wake(): void {
    this.woken = true;
    const resolve = this.resolve;
    this.resolve = undefined;
    clearTimeout(this.timer);
    resolve?.();
  }

  next(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.resolve = () => {
        this.woken = false;
        resolve();
      };
      this.timer = setTimeout(() => {
        this.resolve = undefined;
        resolve();
      }, ms);
    });
  }

  leave(granted: boolean): void {
    const wasFirst = this.first;
    const at = this.line.indexOf(this);
    if (at >= 0) this.line.splice(at, 1);
    clearTimeout(this.timer);
    if (this.line.length === 0) this.onEmpty();
    // The lock just taken is held: the next waiter waits for its release. A waiter that gave up passes its turn on at once.
    else if (wasFirst && !granted) this.line[0]!.wake();
  }
}

export class LockHandoff {
  private readonly lines = new Map<string, Waiter[]>();
  /** This githa's name on the channel: its own announcements are not heard twice. */
  private readonly id = randomUUID();
  private sub: RedisClient | undefined;
  private subscribed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly channel: string,
  ) {}

  /** Whether another githa's release reaches this githa's waiters now (the subscription is up). */
  get listening(): boolean {
    return this.subscribed;
  }

  /** Stands in the repository's line. */
  join(repo: string): LockWaiter {
    this.listen();
    let line = this.lines.get(repo);
    if (!line) {
      line = [];
      this.lines.set(repo, line);
    }
    const created = line;
    const waiter = new Waiter(created, () => {
      if (this.lines.get(repo) === created) this.lines.delete(repo);
    });
    created.push(waiter);
    return waiter;
  }

  /**
   * Tells the other githas that this one's release of `repo` is on its way:
   * sent right behind the release on the same connection, so Redis runs it
   * after the release (one turn for both).
   */
  announce(repo: string): Promise<unknown> {
    return this.redis.publish(this.channel, `${this.id} ${repo}`);
  }

  /** This githa's release of `repo` landed: its first waiter asks at once. */
  released(repo: string): void {
    this.lines.get(repo)?.[0]?.wake();
  }

  private heard(message: string): void {
    const space = message.indexOf(' ');
    if (space < 0 || message.slice(0, space) === this.id) return;
    this.released(message.slice(space + 1));
  }

  /** Subscribes on first use, on a connection of its own (a subscriber connection takes no other command). */
  private listen(): void {
    if (this.sub) return;
    const sub = duplicateClient(this.redis);
    this.sub = sub;
    // Connection errors end in a reconnect; meanwhile the waiters' own timers find releases.
    sub.on('error', () => {});
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.heard(message);
    });
    // ioredis subscribes again after a reconnect; until it has, releases are not heard.
    sub.on('ready', () => {
      sub.subscribe(this.channel).then(
        () => (this.subscribed = true),
        () => {},
      );
    });
    sub.on('close', () => (this.subscribed = false));
    // The state's connection closed for good (githa stops, a CLI command ends): so does this one.
    this.redis.once('end', () => this.stop());
  }

  /** Closes the subscriber connection. */
  stop(): void {
    this.subscribed = false;
    this.sub?.disconnect();
    this.sub = undefined;
  }
}
