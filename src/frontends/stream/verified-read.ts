/**
 * upload-pack over SSH and git://, checked against the record
 * (docs/architecture.md "Verified copies", "SSH and git:// reads"): the
 * backend's ref listing is held whole and compared with what Redis records
 * for that copy before the client gets a byte of it. A copy that is missing,
 * empty or contradicts its record is dropped and the next candidate serves;
 * the client never sees a byte of a dropped listing.
 *
 * - v0/v1: the backend speaks first; its advertisement (up to its flush) is
 *   the listing. The client sends nothing before it, so its bytes go to the
 *   backend only once the listing was passed on.
 * - v2: the capability advertisement carries no refs and is passed on as it
 *   comes. The client's first command, if it is `ls-refs`, is sent widened
 *   (src/protocol/ls-refs-widen.ts) and its whole answer checked; only the
 *   lines the client's prefixes select are passed on. Should another backend
 *   take over, it must advertise the same capabilities but for `agent=` (the
 *   client has already read and relies on them); otherwise the request is refused.
 * - After that, and for any other first command, bytes flow both ways
 *   unparsed: packs are never held.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackendStream } from '../../backends/types.js';
import type { Backend, ReadRoute } from '../../cluster/cluster.js';
import { saysBackendDown } from '../../cluster/health.js';
import type { LiveCopy } from '../../cluster/read-check.js';
import { DEFAULTS } from '../../config/defaults.js';
import { BackendUnavailableError, NoLeaderError } from '../../errors.js';
import { parseV2Command } from '../../protocol/command-request.js';
import { classifyFirstMessage, type HeldMessage, leadingErr, sameCapabilities } from '../../protocol/held-listing.js';
import type { Pkt } from '../../protocol/pkt-line.js';
import { widenLsRefs } from '../../protocol/ls-refs-widen.js';
import { holdFirstPacket, holdMessage } from './hold.js';
import { advertisementLive, lsRefsLive } from './judged-listing.js';
import { open, refuse, relay, type ClientChannel, type StreamDeps, type StreamRequest } from './relay.js';
import type { RequestBudget } from '../held-bytes.js';

/** Between routes that only waited for a landing write (catchUp.readWaitMs bounds them all), as over HTTP (read-relay.ts). */
const LANDING_POLL_MS = 50;

/** stderr of a backend kept while its listing is held (passed on once it serves; its tail names a missing repository). */
const MAX_HELD_STDERR = 8 * 1024;

/** One backend's running upload-pack, its stderr held until it serves. */
class Attempt {
  private stderr = '';
  private readonly onStderr = (chunk: Buffer): void => {
    this.stderr = (this.stderr + chunk.toString('utf8')).slice(-MAX_HELD_STDERR);
  };

  constructor(
    readonly backend: Backend,
    readonly stream: BackendStream,
  ) {
    stream.stderr?.on('data', this.onStderr);
  }

  /** The last line of its stderr, for the log (e.g. "fatal: '…' does not appear to be a git repository"). */
  detail(fallback: string): string {
    // eslint-disable-next-line no-control-regex -- a backend's stderr must not put control characters in a log line
    const last = this.stderr.trim().split('\n').at(-1)?.replace(/[\0-\x1f\x7f]/g, ' ').slice(0, 300);
    return last || fallback;
  }

  /** Whether its stderr says the repository is not there (SSH: "fatal: '…' does not appear to be a git repository"). */
  saysMissing(): boolean {
    return /does not appear to be a git repository|not a git repository|no such repositor|not exported|not found|does not exist/i.test(this.stderr);
  }

  /** Drops it: its output and stderr never reach the client. */
  drop(): void {
    this.stream.stderr?.off('data', this.onStderr);
    this.stream.destroy();
  }

  /** It serves: the stderr held so far goes to the client; relay() pipes the rest. */
  release(channel: ClientChannel): void {
    this.stream.stderr?.off('data', this.onStderr);
    if (this.stderr && channel.errors) channel.errors.write(this.stderr);
    this.stderr = '';
  }
}

type Opened = { kind: 'v0' | 'v2'; attempt: Attempt; first: HeldMessage } | { kind: 'over-cap'; attempt: Attempt; bytes: Buffer };

/** Serves git-upload-pack from the first candidate whose listing agrees with the record. */
export async function serveUploadPack(deps: StreamDeps, req: StreamRequest, channel: ClientChannel, route: ReadRoute, budget?: RequestBudget): Promise<Record<string, unknown>> {
  const gone = new AbortController();
  const onGone = (): void => gone.abort();
  if (channel.input.destroyed) onGone();
  else channel.input.once('close', onGone);
  try {
    return await new VerifiedRead(deps, req, channel, route, gone.signal, budget).serve();
  } finally {
    channel.input.off('close', onGone);
  }
}

class VerifiedRead {
  private readonly queue: Backend[];
  private readonly cap: number;
  /** The client's own bytes held at most (its first v2 command): a client must not make githa hold a listing's budget. */
  private readonly requestCap: number;
  /** Bytes the client got before the relay started. */
  private written = 0;
  /** Whether every answer dropped since the last route was a write landing on the copy (ReadVerdict 'landing'). */
  private landingOnly = true;
  /** Until when landing writes are waited out (catchUp.readWaitMs from the read's start). */
  private readonly until: number;

  constructor(
    private readonly deps: StreamDeps,
    private readonly req: StreamRequest,
    private readonly channel: ClientChannel,
    private route: ReadRoute,
    private readonly gone: AbortSignal,
    private readonly budget?: RequestBudget,
  ) {
    this.queue = [...route.candidates];
    this.cap = deps.maxHeldListingBytes ?? DEFAULTS.read.maxHeldListingBytes;
    this.requestCap = deps.maxHeldRequestBytes ?? DEFAULTS.read.maxReplayBodyBytes;
    this.until = performance.now() + deps.cluster.config.catchUp.readWaitMs;
  }

  async serve(): Promise<Record<string, unknown>> {
    for (;;) {
      let opened: Opened | 'gone' | undefined;
      try {
        opened = await this.next();
      } catch (err) {
        return refuse(this.deps, this.channel, err);
      }
      if (opened === undefined) return refuse(this.deps, this.channel, this.deps.cluster.unreachable(this.route));
      if (opened === 'gone') return { outcome: 'client-gone' };
      if (opened.kind === 'over-cap') {
        this.unchecked(opened.attempt, 'advertisement');
        this.send(opened.bytes);
        return this.relayFrom(opened.attempt);
      }
      if (opened.kind === 'v2') return this.serveV2(opened.attempt, opened.first);
      if ((await this.judge(opened.attempt, advertisementLive(opened.first))) === 'retry') continue;
      this.send(opened.first.bytes);
      return this.relayFrom(opened.attempt);
    }
  }

  /**
   * Protocol v2: the capability advertisement goes to the client as it came;
   * its first command, if ls-refs, is checked (on another backend with the
   * very same capabilities when this copy's answer is dropped).
   */
  private async serveV2(first: Attempt, caps: HeldMessage): Promise<Record<string, unknown>> {
    this.send(caps.bytes);
    const request = await holdMessage(this.channel.input, this.requestCap, this.gone, this.onHold);
    if (request.kind === 'gone' || request.kind === 'refused') {
      first.drop();
      return request.kind === 'gone' ? { outcome: 'client-gone' } : refuse(this.deps, this.channel, request.error);
    }
    if (request.kind !== 'message') {
      // The client ended, sent garbage or an oversized request: not a listing; the backend answers it as it would.
      first.stream.stdin.write(request.bytes);
      if (request.kind === 'ended') first.stream.stdin.end();
      return this.relayFrom(first, request.kind === 'ended' ? Promise.resolve() : undefined);
    }
    const widened = lsRefsRequest(request.message);
    if (widened === undefined) return this.serveCommand(first, caps.pkts, request.message);
    let attempt = first;
    for (;;) {
      attempt.stream.stdin.write(widened.request);
      const answer = await holdMessage(attempt.stream.stdout, this.cap, this.gone, this.onHold);
      if (answer.kind === 'gone' || answer.kind === 'refused') {
        attempt.drop();
        return answer.kind === 'gone' ? { outcome: 'client-gone' } : refuse(this.deps, this.channel, answer.error);
      }
      if (answer.kind === 'over-cap') {
        // gitprotocol-v2 "ls-refs": a server MAY show refs the prefixes do not select, so the whole answer is a valid one.
        this.unchecked(attempt, 'ls-refs answer');
        this.send(answer.bytes);
        return this.relayFrom(attempt);
      }
      const listing = answer.kind === 'message' ? lsRefsLive(answer.message, widened.prefixes) : undefined;
      const verdict = await this.judge(
        attempt,
        listing?.live ?? { kind: 'failed', detail: `ls-refs: ${answer.kind === 'broken' ? answer.detail : attempt.detail('ended before the end of its answer')}` },
      );
      if (verdict === 'serve' && listing?.forward) {
        this.send(listing.forward);
        return this.relayFrom(attempt);
      }
      attempt.drop();
      const next = await this.nextWithCapabilities(caps.pkts);
      if (next === 'gone') return { outcome: 'client-gone' };
      if (next === undefined) {
        const why = this.landingOnly
          ? `every leader of ${this.route.repo} that could take over this session is taking a push that is not recorded yet; try again`
          : `${this.route.repo}: the copy on ${attempt.backend.id} does not match its record and no other leader can take over this session; try again`;
        return refuse(this.deps, this.channel, new NoLeaderError(why));
      }
      attempt = next;
    }
  }

  /**
   * A first v2 command other than ls-refs (a `fetch` of exact objects: a
   * partial clone's lazy fetch, `git fetch <oid>`), as the HTTP path treats a
   * fetch POST: the answer's first packet is looked at; an `ERR` (a copy
   * without the objects, e.g. re-initialised) or no answer is a failed copy,
   * and the held command is replayed on the next candidate with the same
   * capabilities. When every one fails, the client gets the last answer as it is.
   * (A lone flush ends the session: no answer is its answer.)
   */
  private async serveCommand(first: Attempt, caps: readonly Pkt[], command: HeldMessage): Promise<Record<string, unknown>> {
    let attempt = first;
    for (;;) {
      attempt.stream.stdin.write(command.bytes);
      const answer = await holdFirstPacket(attempt.stream.stdout, this.gone);
      if (answer.kind === 'gone') {
        attempt.drop();
        return { outcome: 'client-gone' };
      }
      const err = leadingErr(answer.bytes);
      if (err === undefined && (answer.bytes.length > 0 || command.pkts.length === 0)) {
        this.send(answer.bytes);
        return this.relayFrom(attempt);
      }
      await this.judge(attempt, { kind: 'failed', detail: err !== undefined ? `ERR ${err}` : attempt.detail('ended without an answer') });
      const next = await this.nextWithCapabilities(caps);
      if (next === 'gone') {
        attempt.drop();
        return { outcome: 'client-gone' };
      }
      if (next === undefined) {
        this.send(answer.bytes);
        return this.relayFrom(attempt);
      }
      attempt.drop();
      attempt = next;
    }
  }

  /** The next candidate whose capability advertisement offers what the client already has (sameCapabilities). */
  private async nextWithCapabilities(caps: readonly Pkt[]): Promise<Attempt | 'gone' | undefined> {
    for (;;) {
      let opened: Opened | 'gone' | undefined;
      try {
        opened = await this.next();
      } catch (err) {
        this.deps.log.warn({ repo: this.route.repo, err: (err as Error).message }, 'no other leader could take over the read');
        continue;
      }
      if (opened === undefined || opened === 'gone') return opened;
      if (opened.kind === 'v2' && sameCapabilities(opened.first.pkts, caps)) return opened.attempt;
      this.deps.log.warn({ repo: this.route.repo, backend: opened.attempt.backend.id }, 'read not moved to a backend whose v2 capabilities differ from those the client has');
      opened.attempt.drop();
    }
  }

  /**
   * Every candidate was tried and an answer was dropped: the record may have
   * moved meanwhile (a push committed on a copy whose listing looked newer
   * than the route), so the read is routed once more, as over HTTP. Past
   * that second route only writes landing on the copies are waited out
   * (pushes one after another on the only leaders this transport reaches),
   * paced, until catchUp.readWaitMs.
   */
  private async rerouted(): Promise<Backend | undefined> {
    if (!this.dropped) return undefined;
    if (this.routedAgain) {
      if (!this.landingOnly || performance.now() >= this.until || this.gone.aborted) return undefined;
      await sleep(LANDING_POLL_MS);
    }
    this.routedAgain = true;
    this.landingOnly = true;
    const accepts = (b: Backend): boolean => (this.deps.clients.get(b.id)?.length ?? 0) > 0;
    this.route = await this.deps.cluster.routeRead(this.req.repo, accepts);
    this.queue.push(...this.route.candidates);
    return this.queue.shift();
  }

  private routedAgain = false;
  /** Whether a copy's answer was dropped (a second route may then find the record moved). */
  private dropped = false;

  /**
   * Opens the next candidate and holds its first message. A candidate that
   * refuses the connection is marked down (saysBackendDown); one whose copy is missing (no
   * advertisement, an ERR packet) or broken is checked and skipped.
   */
  private async next(): Promise<Opened | 'gone' | undefined> {
    for (;;) {
      const backend = this.queue.shift() ?? (await this.rerouted());
      if (backend === undefined) return undefined;
      let stream: BackendStream;
      try {
        stream = await open(this.deps, backend, this.req, this.gone);
      } catch (err) {
        if (this.gone.aborted) return 'gone';
        if (!(err instanceof BackendUnavailableError && !err.bytesSent)) throw err;
        // A busy backend (a timeout, a reset) is not down for everyone: the probes decide.
        this.landingOnly = false;
        if (saysBackendDown(err)) this.deps.cluster.health.markDown(backend.id);
        else this.deps.log.info({ backend: backend.id, err: err.message }, 'backend busy or slow; trying the next copy');
        continue;
      }
      const attempt = new Attempt(backend, stream);
      const held = await holdMessage(stream.stdout, this.cap, this.gone, this.onHold);
      if (held.kind === 'gone' || held.kind === 'refused') {
        attempt.drop();
        if (held.kind === 'refused') throw held.error;
        return 'gone';
      }
      if (held.kind === 'over-cap') return { kind: 'over-cap', attempt, bytes: held.bytes };
      if (held.kind === 'message') {
        const first = classifyFirstMessage(held.message.pkts);
        if (first.kind !== 'refused') return { kind: first.kind, attempt, first: held.message };
        await this.judge(attempt, { kind: 'missing', detail: first.message });
      } else if (held.kind === 'ended') {
        // An ERR packet and the end (git daemon's "not exported"), or nothing with SSH's "does not appear to be a git repository":
        // a missing copy. Nothing said (git daemon past its --max-connections drops a connection so) is a failed answer only.
        const err = leadingErr(held.bytes);
        const live: LiveCopy =
          err !== undefined || (held.bytes.length === 0 && attempt.saysMissing())
            ? { kind: 'missing', detail: err ?? attempt.detail('ended without an advertisement') }
            : { kind: 'failed', detail: attempt.detail(held.bytes.length === 0 ? 'ended without an advertisement' : 'ended in the middle of its advertisement') };
        await this.judge(attempt, live);
      } else {
        await this.judge(attempt, { kind: 'failed', detail: `advertisement: ${held.detail}` });
      }
      attempt.drop();
    }
  }

  private async judge(attempt: Attempt, live: LiveCopy): Promise<'serve' | 'retry'> {
    const reads = this.deps.cluster.reads;
    const verdict = reads.agrees(this.route, attempt.backend.id, live) ? 'serve' : await reads.check(this.route, attempt.backend.id, live);
    // Nothing of a missing or broken copy can be served, whatever the record says.
    if (verdict !== 'serve' || live.kind !== 'refs') {
      this.dropped = true;
      if (verdict !== 'landing') this.landingOnly = false;
      this.deps.log.info({ repo: this.route.repo, backend: attempt.backend.id, live: live.kind }, 'read moved to another leader: the copy does not match its record');
      return 'retry';
    }
    return 'serve';
  }

  private unchecked(attempt: Attempt, what: string): void {
    this.deps.log.warn(
      { repo: this.route.repo, backend: attempt.backend.id, maxHeldListingBytes: this.cap },
      `${what} larger than read.maxHeldListingBytes: relayed unchecked against the record`,
    );
  }

  /** A held listing counts against githa's memory budget (src/frontends/held-bytes.ts); past the process's it is refused (503). */
  private readonly onHold = (bytes: number): void => this.budget?.hold(bytes);

  private send(bytes: Buffer): void {
    this.written += bytes.length;
    this.channel.output.write(bytes);
  }

  /** Relays the rest both ways, unparsed. A service that ended without an exit status over SSH is not 'ok'. */
  private async relayFrom(attempt: Attempt, upload?: Promise<void>): Promise<Record<string, unknown>> {
    attempt.release(this.channel);
    this.budget?.release(); // nothing is held any more: the rest is relayed as it comes
    const result = await relay(attempt.stream, this.channel, this.channel.output, upload);
    const noStatus = result.status === null && attempt.stream.stderr !== null;
    const exitCode = noStatus ? 128 : result.exitCode;
    await this.channel.finish(exitCode);
    return {
      backend: attempt.backend.id,
      version: this.route.version,
      exitCode,
      bytes: this.written + result.bytes,
      outcome: exitCode === 0 ? 'ok' : 'backend-error',
    };
  }
}

/** The widened form of a client's first v2 command when it is `ls-refs` (gitprotocol-v2 "ls-refs"); undefined for any other. */
function lsRefsRequest(message: HeldMessage): { request: Buffer; prefixes: string[] } | undefined {
  const pkts = [...message.pkts, { type: 'flush' as const }];
  try {
    if (parseV2Command(pkts).command !== 'ls-refs') return undefined;
    return widenLsRefs(pkts);
  } catch {
    return undefined; // not a well-formed command: the backend answers it
  }
}
