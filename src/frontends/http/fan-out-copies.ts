import { EventEmitter } from 'node:events';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Backend, CopyForward } from '../../cluster/types.js';
import { FanOut, discard } from '../fan-out.js';
import type { RequestBudget } from '../held-bytes.js';
import { HeldResponse } from '../held-response.js';
import { readCapped } from './backend-answer.js';
import type { Forwarder } from './forward.js';

/** What each copy's request holds of the push at most (besides the forwarder's own gate): the tee never holds the pack. */
const BRANCH_BYTES = 256 * 1024;

export interface HttpCopiesOptions {
  req: IncomingMessage;
  res: ServerResponse;
  forwarder: Forwarder;
  log: Logger;
  repo: string;
  /** The backend path of the push (…/git-receive-pack), as the target's. */
  path: string;
  copies: readonly Backend[];
  stallMs: number;
  /** Whether the client asked for side-band: each copy answers as the target does. */
  sideband: boolean;
  /** The target's header edits, for a copy's request (credentials, user header, the gzip rules). */
  editHeaders: (backendId: string) => (proxyReq: ClientRequest) => void;
  budget?: RequestBudget | undefined;
  /** The client's body is gzip, inflated on its way (the pack ends before the body does). */
  gzip?: boolean;
}

/**
 * The copies of a fan-out push over HTTP (docs/architecture.md "A push
 * (receive-pack)", fan-out): each gets the push's body through a branch of
 * the tee (src/frontends/fan-out.ts) on a request of its own, and its answer
 * is read to its end without reaching the client (progress dropped, the
 * report kept for the cluster). The target's body is `targetBody`; the tee
 * starts reading the push once the target's request takes its body, so a
 * target that cannot be reached leaves the body whole for another leader.
 */
export class HttpCopies {
  readonly targetBody = new PassThrough({ highWaterMark: BRANCH_BYTES });
  private readonly tee: FanOut;
  private readonly results: Array<Promise<[string, CopyForward]>>;
  private readonly cutters = new Map<string, AbortController>();

  constructor(body: Readable, private readonly o: HttpCopiesOptions) {
    const branches = o.copies.map((c) => ({ id: c.id, dest: new PassThrough({ highWaterMark: BRANCH_BYTES }), passThrough: true }));
    for (const c of o.copies) this.cutters.set(c.id, new AbortController());
    this.tee = new FanOut(body, this.targetBody, branches, {
      stallMs: o.stallMs,
      // A plain request body ends with the pack. An inflated one (gzip) has the gzip trailer after it: a copy
      // dropped between the pack's end and the body's may still have the whole pack, so only held bytes say 'cut'.
      sourceEndIsPackEnd: o.gzip !== true,
      onDrop: (id, reason) => {
        o.log.warn({ repo: o.repo, backend: id, reason }, 'fan-out copy dropped before the end of the push');
        this.cutters.get(id)?.abort(new Error(reason));
      },
    });
    // The forwarder pipes the target's body once its connection is up (src/frontends/http/forward.ts): only then is the push read.
    this.targetBody.once('resume', () => this.tee.start());
    this.results = o.copies.map((c, i) => this.send(c, branches[i]!.dest).then((r) => [c.id, r] as [string, CopyForward]));
  }

  /** Cuts every copy that has not taken the whole push yet (the lock was lost, the push was cut, the target's exchange ended first). */
  cut(reason: string): void {
    this.tee.cutCopies(reason);
  }

  /** Stops reading the push (its caller drains the rest); copies not yet sent all of it are cut. */
  detach(reason: string): void {
    this.tee.detach(reason);
  }

  /**
   * Every copy's outcome, once each has settled. With `graceMs` (the target
   * has answered): a copy whose answer has not come that long after is cut
   * off ('unknown' once its whole body went), so a copy that hangs after the
   * pack cannot hold the acknowledgement; the cluster then lists it.
   */
  async settled(graceMs?: number): Promise<Map<string, CopyForward>> {
    const timer = graceMs === undefined ? undefined : setTimeout(() => {
      for (const c of this.cutters.values()) c.abort(new Error(`no answer within ${graceMs} ms of the target's`));
    }, graceMs);
    try {
      return new Map(await Promise.all(this.results));
    } finally {
      clearTimeout(timer);
    }
  }

  private async send(copy: Backend, branch: PassThrough): Promise<CopyForward> {
    const { o } = this;
    const fail = (reason: string): CopyForward => {
      // No more bytes go to it (a no-op once its whole body left githa: it may then have run receive-pack).
      this.tee.dropCopy(copy.id, reason);
      const why = this.tee.dropReason(copy.id) ?? reason;
      return this.tee.cutShort(copy.id) ? { ending: 'cut', reason: why } : { ending: 'unknown', reason: why };
    };
    if (!copy.http) return fail(`backend ${copy.id} has no HTTP endpoint`);
    let fwd;
    try {
      fwd = await o.forwarder.send(standIn(o.req), o.res, {
        baseUrl: copy.http,
        backendId: copy.id,
        path: o.path,
        body: branch,
        signal: this.cutters.get(copy.id)!.signal,
        freshConnection: true,
        editHeaders: o.editHeaders(copy.id),
      });
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
    // The forwarder's signal stops a request only until its head arrives: a cut after that (the grace after the target's
    // answer, a lost lock) tears the exchange down here, so a copy that answers its head and then hangs holds nothing.
    const cutter = this.cutters.get(copy.id)!.signal;
    const tearDown = (): void => {
      const why = cutter.reason instanceof Error ? cutter.reason : new Error('the copy was cut');
      fwd.upstream.destroy(why);
      fwd.res.destroy(why);
    };
    if (cutter.aborted) tearDown();
    else cutter.addEventListener('abort', tearDown, { once: true });
    try {
      return await this.answer(copy, fwd, fail);
    } finally {
      cutter.removeEventListener('abort', tearDown);
    }
  }

  private async answer(copy: Backend, fwd: { res: IncomingMessage }, fail: (reason: string) => CopyForward): Promise<CopyForward> {
    const { o } = this;
    const status = fwd.res.statusCode ?? 502;
    if (status !== 200) {
      await readCapped(fwd.res, 64 * 1024).catch(() => Buffer.alloc(0));
      // A 4xx comes before receive-pack ran (docs/architecture.md "A push" 5): whatever was sent, nothing changed.
      if (status >= 400 && status < 500) {
        this.tee.dropCopy(copy.id, `HTTP ${status}`);
        return { ending: 'cut', reason: `HTTP ${status}` };
      }
      return fail(`HTTP ${status}`);
    }
    const held = new HeldResponse(discard(), { sideband: o.sideband });
    const ok = await new Promise<boolean>((resolve) => pipeline(fwd.res, held, (err) => resolve(!err)));
    // Held until the push is recorded, like the target's report: counted, never refused.
    o.budget?.charge(held.heldLength);
    if (!ok) return fail(this.tee.dropReason(copy.id) ?? 'its answer broke off');
    return { ending: 'complete', report: held.report() };
  }
}

/**
 * A stand-in for the client's request, one per copy: the forwarder keys its
 * pending calls by the request (src/frontends/http/forward.ts), and http-proxy
 * reads only its method, URL, headers and socket and listens for its errors.
 */
function standIn(req: IncomingMessage): IncomingMessage {
  const s = new EventEmitter() as unknown as Record<string, unknown>;
  Object.assign(s, { method: req.method, url: req.url, headers: { ...req.headers }, httpVersion: req.httpVersion, socket: req.socket, connection: req.socket });
  return s as unknown as IncomingMessage;
}
