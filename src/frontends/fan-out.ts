import { Writable, type Readable } from 'node:stream';

/**
 * The tee of a fan-out push (docs/architecture.md "A push (receive-pack)",
 * "Fan-out"): the client's bytes go to the target and to every copy at once,
 * as they arrive. githa holds at most each destination's own buffer (its
 * highWaterMark), never the pack: the source is paused while any live
 * destination is full and resumed once all have drained.
 *
 * A copy may not hold the push back for long: one that has taken no bytes
 * for `stallMs` while the source waits on it alone (the target is not full,
 * so only that copy keeps the push waiting) is dropped, and so is one still
 * holding bytes `stallMs` after the source ended. Dropping destroys its
 * destination before its last byte left githa, so the caller's teardown
 * (the backend request, the SSH channel) cuts the pack short on that copy:
 * it cannot have changed (CopyForward 'cut'). A copy whose destination fails
 * is dropped the same way; the target and the other copies go on. The
 * target's own failure is its caller's business, as without copies.
 */
export interface FanOutCopy {
  readonly id: string;
  readonly dest: Writable;
  /**
   * `dest` is a PassThrough whose readable side is what is sent on (an HTTP
   * request's body): its bytes have left githa once that side ended, not
   * when its writable side finished. (A socket or SSH channel is a Duplex
   * too, but its readable side is the service's output.)
   */
  readonly passThrough?: boolean;
}

export interface FanOutOptions {
  /** replication.fanOutStallMs. */
  readonly stallMs: number;
  /** A copy was dropped (stalled, failed, or cut by the caller) before all of its bytes left githa. */
  readonly onDrop?: (id: string, reason: string) => void;
  /**
   * The source's end is the pack's (an HTTP body): a copy dropped before it
   * was handed the end cannot have had the whole pack. Otherwise (SSH,
   * git://: the client's input may stay open after its pack) only a copy
   * dropped with bytes of ours still buffered for it was certainly cut short.
   */
  readonly sourceEndIsPackEnd?: boolean;
}

interface Entry {
  readonly id: string;
  readonly dest: Writable;
  readonly target: boolean;
  /** When it last became full (the source waits on it), or when the source ended with bytes still in it. */
  waitSince: number;
  dropped?: string;
  /** It closed (on its own, or destroyed): it gets no more bytes. */
  closed: boolean;
  /** Bytes of ours still buffered for it when it was dropped. */
  heldAtDrop: number;
  /** It was handed the source's end. */
  gotEnd: boolean;
  readonly passThrough: boolean;
  /** Every byte of ours has left its buffer (its writable side finished and, for a Duplex, its readable side ended). */
  flushed: boolean;
  readonly cleanup: () => void;
}

export class FanOut {
  private readonly entries: Entry[] = [];
  private readonly waiting = new Set<Entry>();
  /** Since when the target has not been full (it is then not what the source waits on). */
  private targetFreeSince = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private ended = false;
  private detached = false;

  constructor(
    private readonly source: Readable,
    target: Writable,
    copies: readonly FanOutCopy[],
    private readonly options: FanOutOptions,
  ) {
    this.entries.push(this.entry('target', target, true, false));
    for (const c of copies) this.entries.push(this.entry(c.id, c.dest, false, c.passThrough === true));
  }

  /** Starts reading the source (once the target can take bytes: the source stays whole until then). */
  start(): void {
    if (this.started || this.detached) return;
    this.started = true;
    this.source.on('data', this.onData);
    this.source.once('end', this.onEnd);
    this.source.once('error', this.onError);
    this.source.resume();
  }

  /** Whether the source ended and its end was handed to `id` (so the whole body went, unless it was dropped). */
  endedTo(id: string): boolean {
    const e = this.find(id);
    return this.ended && e !== undefined && e.dropped === undefined;
  }

  /** Why copy `id` was dropped, if it was. */
  dropReason(id: string): string | undefined {
    return this.find(id)?.dropped;
  }

  /**
   * Whether copy `id` was dropped before the pack's last byte left githa for
   * it (so it cannot have changed): see FanOutOptions.sourceEndIsPackEnd.
   */
  cutShort(id: string): boolean {
    const e = this.find(id);
    if (!e || e.dropped === undefined) return false;
    return e.heldAtDrop > 0 || (this.options.sourceEndIsPackEnd === true && !e.gotEnd);
  }

  /** Whether every byte handed to copy `id` has left its buffer. */
  flushed(id: string): boolean {
    return this.find(id)?.flushed ?? false;
  }

  /** Drops copy `id` (its backend failed): it gets no more bytes and the push no longer waits on it. */
  dropCopy(id: string, reason: string): void {
    const e = this.find(id);
    if (e) this.drop(e, reason);
  }

  /** Drops every live copy that still holds or awaits bytes (the target's exchange ended first, the lock was lost, the client went away). */
  cutCopies(reason: string): void {
    for (const e of this.entries) if (!e.target && !e.flushed) this.drop(e, reason);
  }

  /** Stops reading the source (the caller then drains it itself); copies not yet flushed are cut. */
  detach(reason: string): void {
    if (this.detached) return;
    this.cutCopies(reason);
    this.detached = true;
    this.source.off('data', this.onData);
    this.source.off('end', this.onEnd);
    this.source.off('error', this.onError);
    clearTimeout(this.timer);
    for (const e of this.entries) e.cleanup();
  }

  private find(id: string): Entry | undefined {
    return this.entries.find((e) => !e.target && e.id === id);
  }

  private entry(id: string, dest: Writable, target: boolean, duplex: boolean): Entry {
    const onDrain = (): void => this.drained(e);
    const onError = (err: Error): void => {
      if (!e.target) this.drop(e, `failed: ${err.message}`);
    };
    const onClose = (): void => {
      e.closed = true;
      // A destination closed under us with bytes of ours still in it: a copy is dropped; the target is left alone (its caller
      // decides). One that took all it was given closed on its own (an SSH channel or socket once its service is done).
      if (!e.target && !e.flushed && (this.waiting.has(e) || dest.writableLength > 0)) this.drop(e, 'closed before taking the push');
      else this.drained(e);
    };
    const onFinished = (): void => {
      if (dest.writableFinished && (!duplex || (dest as unknown as Readable).readableEnded)) {
        e.flushed = true;
        this.drained(e);
      }
    };
    dest.on('drain', onDrain);
    dest.on('error', onError);
    dest.on('close', onClose);
    dest.on('finish', onFinished);
    if (duplex) dest.on('end', onFinished);
    const e: Entry = {
      id,
      dest,
      target,
      waitSince: 0,
      flushed: false,
      heldAtDrop: 0,
      gotEnd: false,
      closed: false,
      passThrough: duplex,
      cleanup: () => {
        dest.off('drain', onDrain);
        dest.off('close', onClose);
        dest.off('finish', onFinished);
        if (duplex) dest.off('end', onFinished);
        // The 'error' listener stays: a destination destroyed later must not throw as unhandled.
      },
    };
    return e;
  }

  private live(): Entry[] {
    return this.entries.filter((e) => e.dropped === undefined && !e.closed && !e.dest.destroyed);
  }

  private readonly onData = (chunk: Buffer): void => {
    for (const e of this.live()) {
      if (e.dest.write(chunk)) continue;
      if (!this.waiting.has(e)) {
        this.waiting.add(e);
        e.waitSince = Date.now();
        if (e.target) clearTimeout(this.timer);
      }
    }
    if (this.waiting.size > 0) {
      this.source.pause();
      this.schedule();
    }
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    const now = Date.now();
    this.targetFreeSince = now;
    for (const e of this.live()) {
      e.gotEnd = true;
      e.dest.end();
      // Bytes still in it: it is watched until they have left (a copy stuck there is dropped like a full one).
      if (!e.flushed && !e.target) {
        this.waiting.add(e);
        e.waitSince = Math.max(e.waitSince, now);
      } else this.waiting.delete(e);
    }
    this.schedule();
  };

  private readonly onError = (err: Error): void => {
    // The client's side broke off: every destination is destroyed with its error, so each backend request stops short.
    for (const e of this.live()) e.dest.destroy(err);
    clearTimeout(this.timer);
  };

  private drained(e: Entry): void {
    if (e.target && this.waiting.has(e)) this.targetFreeSince = Date.now();
    if (this.ended && !e.flushed && e.dropped === undefined && !e.closed && !e.dest.destroyed && !e.target) {
      // After the end a copy is watched until its bytes have left; one that took some has its clock start again.
      e.waitSince = Date.now();
      this.schedule();
      return;
    }
    this.waiting.delete(e);
    if (this.waiting.size === 0 || this.waitingOnDropped()) this.resumeIfFree();
    else this.schedule();
  }

  private waitingOnDropped(): boolean {
    for (const w of this.waiting) if (w.dropped === undefined && !w.dest.destroyed) return false;
    return true;
  }

  private resumeIfFree(): void {
    this.waiting.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.ended && !this.detached && this.started) this.source.resume();
  }

  /** Sets the timer for the first copy to pass its stall limit; none while the target is full (the copies are then not what holds the push). */
  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.detached) return;
    let first = Infinity;
    for (const e of this.waiting) {
      if (e.target) return;
      first = Math.min(first, this.deadline(e));
    }
    if (first === Infinity) return;
    this.timer = setTimeout(() => this.expire(), Math.max(0, first - Date.now()));
    this.timer.unref?.();
  }

  private deadline(e: Entry): number {
    return Math.max(e.waitSince, this.targetFreeSince) + this.options.stallMs;
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const e of [...this.waiting]) if (!e.target && this.deadline(e) <= now) this.drop(e, 'stalled');
    if (this.waiting.size === 0) this.resumeIfFree();
    else this.schedule();
  }

  private drop(e: Entry, reason: string): void {
    // A copy that took all of our bytes is no longer the tee's: its caller judges its answer.
    if (e.dropped !== undefined || e.target || e.flushed) return;
    e.dropped = reason;
    e.heldAtDrop = e.dest.writableLength + (e.passThrough ? (e.dest as unknown as Readable).readableLength : 0);
    this.waiting.delete(e);
    if (!e.dest.destroyed) e.dest.destroy(new Error(`fan-out copy ${e.id} ${reason}`));
    this.options.onDrop?.(e.id, reason);
    if (this.waiting.size === 0) this.resumeIfFree();
  }
}

/** Where a copy's answer goes once read: nowhere (only the target's reaches the client; a copy's report is kept by its HeldResponse). */
export function discard(): Writable {
  return new Writable({
    write(_chunk, _enc, callback) {
      callback();
    },
  });
}
