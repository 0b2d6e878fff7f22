import { pipeline, type Readable, type Transform } from 'node:stream';
import type { BackendStream } from '../../backends/types.js';
import type { Backend, CopyForward } from '../../cluster/types.js';
import { FanOut, discard } from '../fan-out.js';
import { HeldResponse } from '../held-response.js';
import { open, type StreamDeps, type StreamRequest } from './relay.js';

interface Copy {
  readonly backend: Backend;
  stream?: BackendStream;
  failed?: string;
  held?: HeldResponse;
  /** Its stdout read to its end (true) or broken off (false). */
  answer?: Promise<boolean>;
  /** Torn down for no answer within the grace after the target's: its stdout's end is then no sign that receive-pack is done. */
  unanswered?: boolean;
  /** Its stdout ended or broke off. */
  answered?: boolean;
}

/**
 * The copies of a fan-out push over SSH or git:// (docs/architecture.md "SSH
 * and git://"): each copy's receive-pack is opened next to the target's, its
 * advertisement read and dropped (unread, receive-pack would block on it), its
 * stderr dropped; the client's bytes after the command-list watch go to the
 * target and every copy through one tee (src/frontends/fan-out.ts); each
 * copy's answer is read to its end and its report kept for the cluster.
 */
export class StreamCopies {
  private tee: FanOut | undefined;
  private late = false;
  private readonly opening: Promise<void>;
  private readonly aborter = new AbortController();

  /** Starts opening every copy at once (call it as the target's open starts). */
  constructor(deps: StreamDeps, req: StreamRequest, backends: readonly Backend[]) {
    const copies: Copy[] = backends.map((backend) => ({ backend }));
    this.copies = copies;
    this.opening = Promise.all(copies.map((c) => this.openOne(deps, req, c))).then(() => undefined);
  }

  private readonly copies: Copy[];

  /** Waits for the copies to open, at most `waitMs` (the target is open): one not open by then is cut. */
  async ready(waitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, waitMs);
    });
    await Promise.race([this.opening, late]);
    clearTimeout(timer);
    this.late = true;
    this.aborter.abort();
    for (const c of this.copies) if (!c.stream) c.failed ??= `not open within ${waitMs} ms`;
  }

  /** The client's capabilities are known: each copy's answer is read as the target's is. */
  setSideband(sideband: boolean): void {
    for (const c of this.copies) c.held?.setSideband(sideband);
  }

  /**
   * Sends the client's input, through `via` (the command-list watch), to the
   * target and every open copy. Resolves true when it reached the target to its
   * end (as relay.ts feed).
   */
  feed(input: Readable, target: BackendStream, via: Transform, stallMs: number, log: StreamDeps['log'], repo: string): Promise<boolean> {
    const open = this.copies.filter((c) => c.stream);
    this.tee = new FanOut(
      via,
      target.stdin,
      open.map((c) => ({ id: c.backend.id, dest: c.stream!.stdin })),
      {
        stallMs,
        onDrop: (id, reason) => {
          log.warn({ repo, backend: id, reason }, 'fan-out copy dropped before the end of the push');
          // Its service is torn down: receive-pack sees its input end mid-pack and changes nothing.
          this.copies.find((c) => c.backend.id === id)?.stream?.destroy();
        },
      },
    );
    const tee = this.tee;
    return new Promise((resolve) => {
      const stdin = target.stdin;
      stdin.on('error', () => resolve(false));
      stdin.once('finish', () => resolve(true));
      stdin.once('close', () => resolve(false));
      via.on('error', (err) => {
        target.destroy(err);
        resolve(false);
      });
      input.pipe(via);
      tee.start();
    });
  }

  /**
   * Cuts every copy before the chunk that ends the command list has gone to
   * any (the marker does not hold the commands: ForwardHooks.commands): none
   * can have taken the pack, so each is 'cut', not 'unknown'.
   */
  cutBeforePack(reason: string): void {
    for (const c of this.copies) this.beforePack.add(c.backend.id);
    this.cut(reason);
  }

  private readonly beforePack = new Set<string>();

  /** Cuts every copy that has not taken the whole push (the lock was lost, the push was cut, the client or the target went first). */
  cut(reason: string): void {
    if (this.tee) {
      this.tee.cutCopies(reason);
      return;
    }
    // Not started: a copy still opening is closed as soon as it opens.
    this.late = true;
    this.aborter.abort();
    for (const c of this.copies) this.close(c, reason);
  }

  /**
   * Every copy's outcome, once each has settled. With `graceMs` (the target
   * has answered): a copy whose answer has not come that long after is torn
   * down ('unknown' once it had the whole pack), so a copy that hangs after
   * the pack cannot hold the acknowledgement; the cluster then lists it.
   */
  async settled(graceMs?: number): Promise<Map<string, CopyForward>> {
    // sshd closes a channel only once its service exited: a copy hanging after the pack (a hook, a paused disk) would hold
    // its answer and exit status, so past the grace they are not waited for (its channel is torn down and drained as it ends).
    let giveUp: () => void = () => {};
    const gaveUp = new Promise<void>((resolve) => (giveUp = resolve));
    const timer = graceMs === undefined ? undefined : setTimeout(() => {
      for (const c of this.copies) {
        if (!c.answered) c.unanswered = true;
        c.stream?.destroy();
      }
      giveUp();
    }, graceMs);
    try {
      const entries = await Promise.all(this.copies.map(async (c) => [c.backend.id, await this.outcome(c, gaveUp)] as [string, CopyForward]));
      return new Map(entries);
    } finally {
      clearTimeout(timer);
    }
  }

  private async outcome(c: Copy, gaveUp: Promise<void>): Promise<CopyForward> {
    const id = c.backend.id;
    if (!c.stream || !this.tee) {
      this.close(c, c.failed ?? 'the push never started');
      return { ending: 'cut', reason: c.failed ?? 'the push never started' };
    }
    const ok = await Promise.race([c.answer!, gaveUp.then(() => false)]);
    await Promise.race([c.stream.exit, gaveUp]);
    const dropped = this.tee.dropReason(id);
    // Dropped with bytes of the push still in githa: the pack never reached its end there.
    if (dropped !== undefined) return this.tee.cutShort(id) || this.beforePack.has(id) ? { ending: 'cut', reason: dropped } : { ending: 'unknown', reason: dropped };
    // Its answer came whole: its report says what it did (the client's input may stay open after the pack, so its end is no sign).
    if (ok && !c.unanswered) return { ending: 'complete', report: c.held!.report() };
    return { ending: 'unknown', reason: 'its answer broke off' };
  }

  private close(c: Copy, reason: string): void {
    c.failed ??= reason;
    c.stream?.destroy();
  }

  private async openOne(deps: StreamDeps, req: StreamRequest, c: Copy): Promise<void> {
    let stream: BackendStream;
    try {
      stream = await open(deps, c.backend, req, this.aborter.signal);
    } catch (err) {
      c.failed = err instanceof Error ? err.message : String(err);
      return;
    }
    if (this.late) {
      stream.destroy();
      return;
    }
    c.stream = stream;
    stream.stderr?.resume();
    // The advertisement is read and dropped; the answer after it is held for its report.
    const held = new HeldResponse(discard(), { advertisement: true });
    c.held = held;
    c.answer = new Promise((resolve) =>
      pipeline(stream.stdout, held, (err) => {
        c.answered = true;
        resolve(!err);
      }),
    );
  }
}
