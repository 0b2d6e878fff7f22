/**
 * githa as a Git client of one backend over a stateful transport (an SSH exec
 * channel or a git:// connection): the BackendClient operations built on
 * `openService()`, which gives the byte streams of a running
 * `git-upload-pack` / `git-receive-pack` as if it were a local process.
 *
 * What real servers do (checked against git 2.39 over OpenSSH and git daemon):
 *
 * - protocol v2 (upload-pack with GIT_PROTOCOL=version=2): the server speaks
 *   first (capability advertisement, flush), then answers one command per
 *   request. On a stateful connection the session ends with an empty request,
 *   a lone flush-pkt (what git's own client sends; closing stdin works too).
 *   githa sends the flush, then closes its side and waits for the exit.
 * - a server that ignores GIT_PROTOCOL (sshd without `AcceptEnv GIT_PROTOCOL`,
 *   the default on most systems) answers with a v0 ref advertisement instead;
 *   ls-refs and fetch then fall back to v0 (the advertisement itself, and a
 *   v0 want/have/done negotiation without multi_ack).
 * - receive-pack is v0 only; an empty command list (a lone flush) ends it
 *   cleanly without touching anything.
 * - a missing repository: over SSH upload-pack/receive-pack write nothing on
 *   stdout, `fatal: '<path>' does not appear to be a git repository` on
 *   stderr, and exit with 128; git daemon answers with one packet
 *   `ERR no such repository: <path>` (`--informative-errors`) or `ERR access
 *   denied or repository not exported: <path>` (the default), then closes.
 *   Both are "no such repository" (null) here.
 *
 * Streams are never buffered whole: reads pull one chunk at a time (the
 * transport is paused meanwhile, so a slow consumer slows the backend down),
 * writes wait for 'drain'. Every wait for the backend is bounded by
 * `timeoutMs` of inactivity. Any failure tears the stream down.
 */
import { BackendProtocolError, BackendUnavailableError, GithaError, LimitExceededError, PktLineError, ProtocolSyntaxError, RemoteFatalError, SidebandError } from '../errors.js';
import { parseAdvertisement, type RefAdvertisement } from '../protocol/advertisement.js';
import { capabilityValue } from '../protocol/capabilities.js';
import { parseCapabilityAdvertisement, type V2Capabilities } from '../protocol/capability-advertisement.js';
import { encodeFetchRequest, FetchResponseReader } from '../protocol/fetch.js';
import { encodeLsRefsRequest, parseLsRefsResponse } from '../protocol/ls-refs.js';
import { encodePkt, errPktMessage, FLUSH_PKT, isErrPkt, type Pkt, PktLineDecoder, pktText } from '../protocol/pkt-line.js';
import { encodeReceivePackRequest, type RefCommand } from '../protocol/receive-pack-request.js';
import { ReceivePackResponseReader, type ReportStatus } from '../protocol/report-status.js';
import { parseSidebandPayload } from '../protocol/sideband.js';
import { AGENT } from './http.js';
import type { BackendStream, OpenServiceOptions, RefTip, StreamBackendClient, StreamService } from './types.js';

/** Largest ref advertisement / ls-refs answer githa reads whole. */
const MAX_SMALL_ANSWER = 64 * 1024 * 1024;
/** stderr kept for error messages and missing-repository detection (its tail). */
const MAX_STDERR = 8 * 1024;
/** How long a finished session may take to exit before it is torn down. */
const MAX_EXIT_WAIT_MS = 10_000;

/** stderr of git when the path is not a repository (upload-pack, receive-pack, upload-archive). */
const MISSING_REPO_STDERR = /does not appear to be a git repository|not a git repository/i;
/** git daemon's ERR line for a missing (or not exported) repository. */
const MISSING_REPO_ERR = /^(no such repository|access denied or repository not exported)\b/i;

/**
 * The BackendClient operations over `openService()`; SshBackendClient and
 * GitDaemonBackendClient only provide the transport.
 */
export abstract class StreamGitClient implements StreamBackendClient {
  abstract readonly transport: 'ssh' | 'git';

  /**
   * @param id the backend's id (in every error)
   * @param timeoutMs longest wait for the backend at any one point (connect,
   *   each answer, each write to drain, the exit)
   */
  protected constructor(
    readonly id: string,
    protected readonly timeoutMs: number,
  ) {}

  abstract openService(repo: string, service: StreamService, options?: OpenServiceOptions): Promise<BackendStream>;
  abstract close(): Promise<void>;

  async listRefs(repo: string, signal?: AbortSignal): Promise<RefTip[] | null> {
    const s = await this.start(repo, 'git-upload-pack', 'version=2', signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) return null;
      let refs: RefTip[];
      if (isV2(first)) {
        const caps = s.parse(() => parseCapabilityAdvertisement(first));
        if (!caps.capabilities.has('ls-refs')) throw s.protocolError('its upload-pack offers no ls-refs');
        await s.write(encodeLsRefsRequest({ agent: AGENT, ...objectFormat(caps) }));
        const answer = await s.readMessage('the ls-refs answer');
        refs = s.parse(() => parseLsRefsResponse(answer)).map((e) => ({ name: e.name, oid: e.oid }));
        await s.write(FLUSH_PKT); // the empty request: end of the v2 session
      } else {
        // v0/v1: the advertisement is the answer; a flush ("no wants") ends upload-pack.
        refs = s.parse(() => parseAdvertisement(first)).refs.map((r) => ({ name: r.name, oid: r.oid }));
        await s.write(FLUSH_PKT);
      }
      await s.finish();
      return refs;
    } catch (err) {
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  async receivePackAdvertisement(repo: string, signal?: AbortSignal): Promise<RefAdvertisement | null> {
    const s = await this.start(repo, 'git-receive-pack', undefined, signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) return null;
      const adv = s.parse(() => parseAdvertisement(first));
      await s.write(FLUSH_PKT); // an empty command list: receive-pack ends, nothing changes
      await s.finish();
      return adv;
    } catch (err) {
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  async *fetchPack(repo: string, wants: readonly string[], haves: readonly string[], signal?: AbortSignal): AsyncIterable<Buffer> {
    const s = await this.start(repo, 'git-upload-pack', 'version=2', signal);
    try {
      const first = await s.readFirstMessage();
      if (first === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      if (isV2(first)) {
        const caps = s.parse(() => parseCapabilityAdvertisement(first));
        if (!caps.capabilities.has('fetch')) throw s.protocolError('its upload-pack offers no fetch');
        await s.write(
          s.parse(() =>
            encodeFetchRequest({ wants: [...wants], haves: [...haves], done: true, ofsDelta: true, noProgress: true, agent: AGENT, ...objectFormat(caps) }),
          ),
        );
        const reader = new FetchResponseReader();
        reader.write(s.takeBuffered());
        for (;;) {
          for (let ev = s.parse(() => reader.next()); ev; ev = s.parse(() => reader.next())) {
            if (ev.type === 'pack') yield ev.data;
            else if (ev.type === 'end') {
              await s.write(FLUSH_PKT); // end of the v2 session
              await s.finish();
              return;
            }
          }
          const chunk = await s.readChunk();
          if (chunk === null) throw await s.endedEarly('in the middle of the fetch response');
          reader.write(chunk);
        }
      } else {
        yield* this.fetchV0(s, first, wants, haves);
      }
    } catch (err) {
      throw s.fail(err);
    } finally {
      // Also when the consumer stops early (return()): the stream goes.
      s.dispose();
    }
  }

  /**
   * v0 fetch on a server that ignored GIT_PROTOCOL: want lines (capabilities
   * on the first), flush, have lines, done. Without multi_ack the answer is
   * one "ACK <oid>" or "NAK", then the pack on side-band until a flush.
   */
  private async *fetchV0(s: Session, first: Pkt[], wants: readonly string[], haves: readonly string[]): AsyncGenerator<Buffer> {
    const adv = s.parse(() => parseAdvertisement(first));
    const offered = adv.capabilities;
    const band = offered.includes('side-band-64k') ? 'side-band-64k' : offered.includes('side-band') ? 'side-band' : undefined;
    if (band === undefined) throw s.protocolError('its upload-pack offers no side-band');
    if (wants.length === 0) {
      await s.write(FLUSH_PKT);
      await s.finish();
      return;
    }
    const caps = [band, ...['ofs-delta', 'no-progress'].filter((c) => offered.includes(c))];
    if (offered.some((c) => c.startsWith('agent='))) caps.push(`agent=${AGENT}`);
    const format = capabilityValue(offered, 'object-format');
    if (format !== undefined) caps.push(`object-format=${format}`);
    const lines: Buffer[] = wants.map((oid, i) => encodePkt(i === 0 ? `want ${oid} ${caps.join(' ')}\n` : `want ${oid}\n`));
    lines.push(FLUSH_PKT);
    for (const oid of haves) lines.push(encodePkt(`have ${oid}\n`));
    lines.push(encodePkt('done\n'));
    await s.write(s.parse(() => Buffer.concat(lines)));
    let inPack = false;
    for (;;) {
      const pkt = await s.readPkt();
      if (pkt === null) throw await s.endedEarly('in the middle of the fetch response');
      if (pkt.type === 'flush') {
        if (!inPack) throw s.protocolError('ended its fetch response before the pack');
        await s.finish();
        return;
      }
      if (pkt.type !== 'data') throw s.protocolError(`sent an unexpected ${pkt.type} packet in its fetch response`);
      if (isErrPkt(pkt.payload)) throw new RemoteFatalError(errPktMessage(pkt.payload));
      if (!inPack) {
        const text = pktText(pkt.payload);
        if (text === 'NAK' || text.startsWith('ACK ')) continue;
        inPack = true;
      }
      const frame = s.parse(() => parseSidebandPayload(pkt.payload));
      if (frame.band === 1) yield frame.payload;
      else if (frame.band === 3) throw new RemoteFatalError(pktText(frame.payload));
    }
  }

  async pushPack(
    repo: string,
    commands: readonly RefCommand[],
    capabilities: readonly string[],
    pack: AsyncIterable<Buffer> | null,
    signal?: AbortSignal,
  ): Promise<ReportStatus> {
    const s = await this.start(repo, 'git-receive-pack', undefined, signal);
    let sourceError: { err: unknown } | undefined;
    try {
      const first = await s.readFirstMessage();
      if (first === null) throw new BackendProtocolError(`backend ${this.id} does not have ${repo}`);
      s.parse(() => parseAdvertisement(first));
      if (commands.length === 0) {
        await s.write(FLUSH_PKT);
        await s.finish();
        return { unpackOk: true, refs: [] };
      }
      const head = s.parse(() => encodeReceivePackRequest([...commands], [...capabilities]));
      const sideband = capabilities.includes('side-band-64k') || capabilities.includes('side-band');
      // The answer is read while the pack is sent: progress or an early fatal
      // error never stalls the backend, and a report wins over a write error.
      const answer = readReport(s, sideband);
      answer.catch(() => {});
      try {
        await s.write(head);
        if (pack) {
          s.sending = true;
          const it = pack[Symbol.asyncIterator]();
          let complete = false;
          let pending = false;
          try {
            for (;;) {
              // Waits for the source, but not past a failure of the target.
              const next = await Promise.race([
                it.next().then(
                  (r) => ({ r }),
                  (err: unknown) => ({ err }),
                ),
                s.whenFailed().then(() => null),
              ]);
              if (next === null) {
                pending = true;
                s.checkFailed();
              } else if ('err' in next) {
                sourceError = { err: next.err };
                throw next.err;
              } else {
                if (next.r.done) break;
                await s.write(next.r.value);
              }
            }
            complete = true;
          } finally {
            // Stops the source (e.g. the leader's fetch) when the push failed. With a
            // read still pending, the source stops when that read ends (its own timeout).
            if (!complete) {
              const stopped = it.return?.(undefined).catch(() => undefined);
              if (!pending) await stopped;
            }
          }
          s.sending = false;
        }
        s.end();
      } catch (err) {
        if (sourceError) throw err;
        // The backend stopped reading: its report (e.g. "unpack failed") says more than EPIPE.
        const report = await answer.catch(() => undefined);
        if (report) return report;
        throw err;
      }
      const report = await answer;
      await s.finish();
      return report;
    } catch (err) {
      // A failed source cuts the push (receive-pack dies in its quarantine) and is reported as is.
      if (sourceError) {
        s.destroy();
        throw sourceError.err;
      }
      throw s.fail(err);
    } finally {
      s.dispose();
    }
  }

  /** Opens the service and wraps it; connection failures are BackendUnavailableError (bytesSent=false). */
  private async start(repo: string, service: StreamService, protocol: string | undefined, signal: AbortSignal | undefined): Promise<Session> {
    signal?.throwIfAborted();
    let stream: BackendStream;
    try {
      stream = await this.openService(repo, service, { protocol, signal });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof GithaError) throw err;
      throw new BackendUnavailableError(`backend ${this.id} is unreachable: ${(err as Error).message}`, this.id, { cause: err });
    }
    return new Session(this.id, `${service} ${repo}`, stream, this.timeoutMs, signal);
  }
}

/** Reads receive-pack's answer to a push: the report (or its absence, or a fatal error). */
async function readReport(s: Session, sideband: boolean): Promise<ReportStatus> {
  const reader = new ReceivePackResponseReader(sideband);
  let report: ReportStatus | undefined;
  reader.write(s.takeBuffered());
  for (;;) {
    for (let ev = s.parse(() => reader.next()); ev; ev = s.parse(() => reader.next())) {
      if (ev.type === 'report') report = ev.report;
      else if (ev.type === 'fatal') throw s.protocolError(`refused the push: ${ev.message}`);
      else if (ev.type === 'end') {
        if (!report) throw s.protocolError('sent no report-status');
        return report;
      }
    }
    const chunk = await s.readChunk();
    if (chunk === null) {
      if (report) return report;
      throw await s.endedEarly('before its report-status');
    }
    reader.write(chunk);
  }
}

function isV2(first: Pkt[]): boolean {
  const p = first[0];
  return p !== undefined && p.type === 'data' && pktText(p.payload) === 'version 2';
}

function objectFormat(caps: V2Capabilities): { objectFormat?: string } {
  const format = caps.capabilities.get('object-format');
  return typeof format === 'string' && format !== 'sha1' ? { objectFormat: format } : {};
}

/** Wire-format errors from src/protocol: the backend broke the protocol. */
function isProtocolError(err: unknown): err is GithaError {
  return (
    err instanceof PktLineError ||
    err instanceof ProtocolSyntaxError ||
    err instanceof SidebandError ||
    err instanceof RemoteFatalError ||
    err instanceof LimitExceededError
  );
}

type Waiter = () => void;

/**
 * One running service: pull-based reads of stdout (one chunk buffered, the
 * transport paused meanwhile), writes with backpressure, the tail of stderr,
 * the exit status, the abort signal and inactivity timeouts. Every failure
 * destroys the stream; `dispose()` always releases it.
 */
class Session {
  private readonly decoder = new PktLineDecoder();
  private readonly chunks: Buffer[] = [];
  private eof = false;
  private failure: unknown;
  private waiters: Waiter[] = [];
  private stderrTail = '';
  private exitCode: number | null | undefined;
  private stdinEnded = false;
  private finished = false;
  private disposed = false;
  private received = 0;
  /** True once anything was written to the service. */
  bytesSent = false;
  /**
   * True while githa streams a request body (a pack) it gets from elsewhere:
   * the backend legitimately says nothing meanwhile, so reads do not time
   * out (writes still do, and so does the source).
   */
  sending = false;
  private failedSignal: Promise<void> | undefined;
  private resolveFailed: (() => void) | undefined;
  private readonly onAbort: () => void;

  constructor(
    private readonly backendId: string,
    /** "git-upload-pack team/app.git", for messages. */
    private readonly what: string,
    private readonly stream: BackendStream,
    private readonly timeoutMs: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    const { stdout, stdin, stderr } = stream;
    stdout.on('data', (chunk: Buffer) => {
      if (this.finished || this.disposed) return; // draining after the end
      this.chunks.push(chunk);
      this.received += chunk.length;
      stdout.pause();
      this.notify();
    });
    stdout.once('end', () => this.onEof());
    stdout.once('close', () => this.onEof());
    stdout.on('error', (err: Error) => this.onStreamError(err));
    if (stdin !== (stdout as unknown)) stdin.on('error', (err: Error) => this.onStreamError(err));
    stdin.on('drain', () => this.notify());
    if (stderr) {
      stderr.on('data', (chunk: Buffer) => {
        this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-MAX_STDERR);
      });
      stderr.on('error', () => {});
    }
    stream.exit.then(
      (code) => {
        this.exitCode = code;
        this.notify();
      },
      () => {
        this.exitCode = null;
        this.notify();
      },
    );
    this.onAbort = () => {
      this.setFailure(this.signal?.reason ?? new Error('aborted'));
      this.stream.destroy();
    };
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  // ---- reading ----------------------------------------------------------------

  /** The next chunk of stdout (raw), or null at its end. */
  async readChunk(): Promise<Buffer | null> {
    for (;;) {
      this.throwIfFailed();
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        if (this.chunks.length === 0 && !this.eof) this.stream.stdout.resume();
        return chunk;
      }
      if (this.eof) return null;
      this.stream.stdout.resume();
      await this.wait('waiting for its answer', this.timeoutMs, !this.sending);
    }
  }

  /** The next pkt-line, or null at the end of stdout (with a partial packet, a protocol error). */
  async readPkt(): Promise<Pkt | null> {
    for (;;) {
      const pkt = this.parse(() => this.decoder.next());
      if (pkt !== undefined) return pkt;
      const chunk = await this.readChunk();
      if (chunk === null) {
        if (this.decoder.bufferedLength > 0) throw await this.endedEarly('in the middle of a pkt-line');
        return null;
      }
      this.decoder.write(chunk);
    }
  }

  /** Packets up to the next flush (excluded); the end of stdout before it is an error. */
  async readMessage(what: string): Promise<Pkt[]> {
    const pkts: Pkt[] = [];
    let bytes = 0;
    for (;;) {
      const pkt = await this.readPkt();
      if (pkt === null) throw await this.endedEarly(`before the end of ${what}`);
      if (pkt.type === 'flush') return pkts;
      bytes += pkt.type === 'data' ? pkt.payload.length + 4 : 4;
      if (bytes > MAX_SMALL_ANSWER) throw this.protocolError(`sent more than ${MAX_SMALL_ANSWER} bytes of ${what}`);
      pkts.push(pkt);
    }
  }

  /**
   * The server's first message (advertisement), or null when the repository
   * does not exist there (see the module comment for how that looks).
   */
  async readFirstMessage(): Promise<Pkt[] | null> {
    const first = await this.readPkt();
    if (first === null) {
      if (await this.missingRepository()) return null;
      throw await this.endedEarly('without a word');
    }
    if (first.type === 'data' && isErrPkt(first.payload)) {
      const message = errPktMessage(first.payload);
      if (MISSING_REPO_ERR.test(message)) return null;
      throw this.protocolError(`refused ${this.what}: ${message}`);
    }
    if (first.type === 'flush') return []; // an empty advertisement (very old servers, empty repository)
    const rest = await this.readMessage('the advertisement');
    return [first, ...rest];
  }

  /** Bytes read from stdout but not yet returned as packets (to hand over to another reader). */
  takeBuffered(): Buffer {
    return this.decoder.bufferedLength > 0 ? this.decoder.rest() : Buffer.alloc(0);
  }

  // ---- writing ----------------------------------------------------------------

  /** Writes to stdin; resolves once the transport can take more (backpressure). */
  async write(data: Buffer): Promise<void> {
    this.throwIfFailed();
    if (data.length === 0) return;
    this.bytesSent = true;
    if (this.stream.stdin.write(data)) return;
    for (;;) {
      this.throwIfFailed();
      if (!this.stream.stdin.writableNeedDrain) return;
      if (this.eof || this.exitCode !== undefined) throw await this.endedEarly('while githa was still sending');
      await this.wait('waiting for it to read what githa sends');
    }
  }

  /** Closes stdin (EOF for the service; a half-close on git://). */
  end(): void {
    if (this.stdinEnded) return;
    this.stdinEnded = true;
    this.stream.stdin.end();
  }

  /**
   * After a complete exchange: closes stdin, drops whatever stdout still
   * holds, and waits (bounded) for the service to exit, so the channel or
   * socket is gone when the operation returns.
   */
  async finish(): Promise<void> {
    this.end();
    this.finished = true;
    this.chunks.length = 0;
    this.stream.stdout.resume();
    if (this.exitCode === undefined) {
      const deadline = Date.now() + Math.min(this.timeoutMs, MAX_EXIT_WAIT_MS);
      while (this.exitCode === undefined && !this.failure && Date.now() < deadline) {
        await this.wait('waiting for it to exit', deadline - Date.now(), false);
      }
    }
    if (this.exitCode === undefined) this.stream.destroy();
  }

  // ---- failures ---------------------------------------------------------------

  /** Runs pure protocol code; its wire-format errors become BackendProtocolError. */
  parse<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (isProtocolError(err)) throw this.protocolError(err.message, err);
      throw err;
    }
  }

  protocolError(message: string, cause?: unknown): BackendProtocolError {
    return new BackendProtocolError(`backend ${this.backendId}: ${this.what}: ${message}`, { cause: cause ?? this.stderrCause() });
  }

  unavailable(message: string, cause?: unknown): BackendUnavailableError {
    return new BackendUnavailableError(`backend ${this.backendId}: ${this.what}: ${message}`, this.backendId, {
      cause: cause ?? this.stderrCause(),
      bytesSent: this.bytesSent,
    });
  }

  /** The error for a service that ended (or broke off) before the exchange was complete. */
  async endedEarly(when: string): Promise<Error> {
    this.throwIfFailed();
    await this.waitForExit();
    const status = this.exitCode === undefined || this.exitCode === null ? '' : ` (exit code ${this.exitCode})`;
    const fatal = lastFatalLine(this.stderrTail);
    return this.unavailable(`ended ${when}${status}${fatal ? `: ${fatal}` : ''}`);
  }

  /** Normalises any error of an operation and tears the stream down. */
  fail(err: unknown): unknown {
    this.destroy();
    if (this.signal?.aborted) return this.signal.reason;
    if (err instanceof BackendUnavailableError || err instanceof BackendProtocolError) return err;
    if (isProtocolError(err)) return this.protocolError(err.message, err);
    if (err instanceof GithaError) return err;
    return this.unavailable(`failed: ${(err as Error)?.message ?? String(err)}`, err);
  }

  destroy(): void {
    if (this.finished && this.exitCode !== undefined) return;
    // Concurrent readers and writers of this session stop too.
    if (this.failure === undefined) this.setFailure(this.unavailable('the stream was torn down'));
    this.finished = true;
    this.chunks.length = 0;
    this.stream.destroy();
    this.stream.stdout.resume();
  }

  /** Always called at the end of an operation. */
  dispose(): void {
    if (this.disposed) return;
    if (!this.finished) this.destroy();
    this.disposed = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.stream.stdout.resume();
    this.notify();
  }

  private async missingRepository(): Promise<boolean> {
    if (this.received > 0) return false;
    await this.waitForExit();
    return MISSING_REPO_STDERR.test(this.stderrTail) && (this.exitCode === 128 || this.exitCode === null || this.exitCode === undefined);
  }

  /** After stdout ended: gives stderr and the exit status a moment to arrive. */
  private async waitForExit(): Promise<void> {
    const deadline = Date.now() + Math.min(this.timeoutMs, 2_000);
    while (this.exitCode === undefined && !this.failure && Date.now() < deadline) {
      await this.wait('waiting for it to exit', deadline - Date.now(), false);
    }
  }

  private stderrCause(): Error | undefined {
    const text = this.stderrTail.trim();
    return text ? new Error(`stderr of ${this.what}: ${text}`) : undefined;
  }

  private onEof(): void {
    if (this.eof) return;
    this.eof = true;
    this.notify();
  }

  private onStreamError(err: Error): void {
    if (this.finished || this.failure) return;
    this.setFailure(this.unavailable(`connection failed: ${err.message}`, err));
    this.stream.destroy(err);
  }

  private setFailure(err: unknown): void {
    this.failure ??= err;
    this.resolveFailed?.();
    this.notify();
  }

  /** Resolves once the session has failed (never rejects). */
  whenFailed(): Promise<void> {
    this.failedSignal ??=
      this.failure !== undefined
        ? Promise.resolve()
        : new Promise((resolve) => {
            this.resolveFailed = resolve;
          });
    return this.failedSignal;
  }

  /** Throws the session's failure, if any. */
  checkFailed(): void {
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Waits for the next event (data, end, drain, exit, failure). After
   * `ms` without one: with `fatal`, the session fails (the backend hangs);
   * else it just returns.
   */
  private wait(doing: string, ms = this.timeoutMs, fatal = true): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        if (fatal) {
          this.setFailure(this.unavailable(`no answer for ${Math.round(ms / 1000)} s while ${doing}`));
          this.stream.destroy();
        }
        resolve();
      }, Math.max(1, ms));
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
    });
  }
}

/** The last "fatal: …" / "error: …" line of stderr, made safe for a one-line message. */
function lastFatalLine(stderr: string): string | undefined {
  const lines = stderr.split(/\r?\n/).filter((l) => /^(fatal|error|ERROR):/.test(l));
  const line = lines[lines.length - 1];
  return line?.replace(/[\0-\x1f\x7f]/g, ' ').slice(0, 300);
}
