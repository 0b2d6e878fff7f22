/**
 * One running Git service on a stateful transport, as githa's Git client
 * sees it (src/backends/stream-client.ts): pull-based reads, writes with
 * backpressure, stderr tail, exit status, abort and inactivity timeouts.
 */
import { BackendProtocolError, BackendUnavailableError, GithaError, LimitExceededError, PktLineError, ProtocolSyntaxError, RemoteFatalError, SidebandError } from '../errors.js';
import { errPktMessage, isErrPkt, type Pkt, PktLineDecoder } from '../protocol/pkt-line.js';
import type { BackendStream } from './types.js';

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
export class Session {
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
      // stderr only feeds the diagnostic tail; stdout, stdin and the exit status decide the outcome.
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
  // eslint-disable-next-line no-control-regex -- a backend's stderr must not put control characters in a log line
  return line?.replace(/[\0-\x1f\x7f]/g, ' ').slice(0, 300);
}
