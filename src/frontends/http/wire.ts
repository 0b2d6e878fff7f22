/**
 * githa's own minimal HTTP/1.1 client for one kind of request: an upload-pack
 * POST whose body is held (docs/architecture.md "Reads over HTTP", "The fetch
 * answer's data path"). It writes the request itself, parses the backend's
 * status line and headers itself, and then hands on the body *as it came on
 * the wire*: each socket read is one piece, its bytes untouched (the chunked
 * framing included) next to the payload slices inside them, so the relay can
 * pass a pack through with one write per socket read instead of one callback
 * and one re-chunked write per backend chunk (lighttpd's ~12 KB CGI chunks).
 * Everything else (listings, pushes, streamed bodies, HTTPS backends) goes
 * through http-proxy (src/frontends/http/forward.ts).
 */
import { connect, type Socket } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable, type Writable } from 'node:stream';
import { BackendProtocolError, BackendUnavailableError } from '../../errors.js';
import { ChunkedScanner, type HeaderBag } from './wire-framing.js';

/** A backend's head larger than this is refused (Node's own client allows 16 KB). */
const MAX_HEAD_BYTES = 64 * 1024;

/** One socket read of the answer's body: its bytes as received, and the payload slices inside them. */
export interface WirePiece {
  raw: Buffer;
  payload: Buffer[];
}

/** How the body is delimited (RFC 9112 6.3). */
export type Framing = 'chunked' | 'length' | 'close';

/**
 * A backend's answer: its head parsed, its body read piece by piece as it
 * came, with backpressure (nothing is read ahead of what the relay took):
 * next() pulls one socket read (the held first part), pump() relays the rest
 * in flowing mode (one write per socket read, paused while the client's
 * socket is full), as cheap per read as piping two sockets.
 */
export class WireAnswer {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly framing: Framing;
  private ended = false;
  private readonly chunked: ChunkedScanner | undefined;
  private left: number;

  constructor(
    private readonly socket: Socket,
    head: { status: number; headers: IncomingHttpHeaders },
    private rest: Buffer | undefined,
    private readonly backendId: string,
  ) {
    this.statusCode = head.status;
    this.headers = head.headers;
    const te = head.headers['transfer-encoding'];
    const length = head.headers['content-length'];
    // RFC 9112 6.3: a Transfer-Encoding wins over a Content-Length; a final coding other than chunked reads to the close.
    if (te !== undefined) this.framing = /(?:^|,)\s*chunked\s*$/i.test(te) ? 'chunked' : 'close';
    else if (length !== undefined || head.status === 204 || head.status === 304) this.framing = 'length';
    else this.framing = 'close';
    this.chunked = this.framing === 'chunked' ? new ChunkedScanner() : undefined;
    this.left = head.status === 204 || head.status === 304 ? 0 : Number(length ?? 0);
    if (this.framing === 'length' && !(Number.isSafeInteger(this.left) && this.left >= 0 && /^\d+$/.test(String(length ?? '0')))) {
      throw new BackendProtocolError(`backend ${backendId} answered a bad Content-Length`);
    }
    if (this.framing === 'length' && this.left === 0) this.finish();
  }

  /** The next socket read of the body; undefined once the message has ended. */
  async next(): Promise<WirePiece | undefined> {
    if (this.ended) return undefined;
    let buf = this.rest;
    this.rest = undefined;
    if (buf === undefined || buf.length === 0) {
      buf = await readOnce(this.socket);
      if (buf === undefined) {
        if (this.framing === 'close') {
          this.finish();
          return undefined;
        }
        throw this.cutShort();
      }
    }
    return this.piece(buf);
  }

  /**
   * Relays the rest of the body to `out` in flowing mode: each socket read is
   * cut into a piece, `each` says what to write of it (its bytes, or its payload),
   * and the socket is paused while `out` is full. Ends `out` after the
   * message's end; resolves once `out` has finished, rejects when either side
   * breaks off (the caller then destroys the answer).
   */
  pump(out: Writable, each: (p: WirePiece) => Buffer[]): Promise<void> {
    const socket = this.socket;
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (err?: Error): void => {
        if (settled) return;
        settled = true;
        socket.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onError);
        out.off('drain', onDrain).off('close', onOutClose).off('finish', onFinish).off('error', onError);
        // Nothing more is read for nobody: the caller destroys the answer.
        if (err) socket.pause();
        if (err) reject(err);
        else resolve();
      };
      const take = (buf: Buffer): void => {
        // Past the message's end nothing is relayed (the socket is destroyed; a read it had buffered may still come).
        if (this.ended) return;
        let ok = true;
        try {
          for (const b of each(this.piece(buf))) ok = out.write(b) && ok;
        } catch (err) {
          return settle(err as Error);
        }
        if (this.ended) out.end();
        else if (!ok) socket.pause();
      };
      const onData = (buf: Buffer): void => take(buf);
      const onEnd = (): void => {
        if (this.ended) return;
        if (this.framing !== 'close') return settle(this.cutShort());
        this.finish();
        out.end();
      };
      const onClose = (): void => {
        if (!this.ended) settle(this.cutShort());
      };
      const onError = (err: Error): void => settle(err);
      const onDrain = (): void => void socket.resume();
      const onOutClose = (): void => settle(Object.assign(new Error('the client went away while its answer was relayed'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
      const onFinish = (): void => settle();
      out.on('drain', onDrain).on('close', onOutClose).on('finish', onFinish).on('error', onError);
      const rest = this.rest;
      this.rest = undefined;
      if (rest !== undefined && rest.length > 0) take(rest);
      if (this.ended) {
        if (!out.writableEnded) out.end();
        return;
      }
      if (socket.readableEnded) return onEnd();
      socket.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onError);
      socket.resume();
    });
  }

  /** The body decoded, as a stream (an answer read whole: a refusal, an error page). */
  body(): Readable {
    return Readable.from(this.decoded());
  }

  private async *decoded(): AsyncGenerator<Buffer> {
    try {
      for (let p = await this.next(); p !== undefined; p = await this.next()) yield* p.payload;
    } finally {
      this.destroy();
    }
  }

  /** Stops reading: the backend's request goes (its upload-pack stops at its next write). */
  destroy(err?: Error): void {
    this.ended = true;
    this.socket.destroy(err);
  }

  /** One socket read as a piece: its payload, and its bytes up to the message's end. */
  private piece(read: Buffer): WirePiece {
    let buf = read;
    const payload: Buffer[] = [];
    if (this.chunked) {
      const end = this.chunked.scan(buf, payload);
      if (this.chunked.done) {
        buf = buf.subarray(0, end);
        this.finish();
      }
    } else if (this.framing === 'length') {
      if (buf.length >= this.left) {
        buf = buf.subarray(0, this.left);
        this.left = 0;
        this.finish();
      } else this.left -= buf.length;
      payload.push(buf);
    } else payload.push(buf);
    return { raw: buf, payload };
  }

  private cutShort(): Error {
    return new BackendProtocolError(`backend ${this.backendId} closed the connection in the middle of its answer`);
  }

  private finish(): void {
    this.ended = true;
    // One request per connection: the next one opens its own (nothing is left to read on this one).
    this.socket.destroy();
  }
}

/** One socket read (the socket is left paused), or undefined at its end. */
function readOnce(socket: Socket): Promise<Buffer | undefined> {
  if (socket.readableEnded) return Promise.resolve(undefined);
  if (socket.destroyed) return Promise.reject(socket.errored ?? new Error('the backend connection is closed'));
  return new Promise((resolve, reject) => {
    const done = (): void => {
      socket.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onError);
      socket.pause();
    };
    const onData = (buf: Buffer): void => {
      done();
      resolve(buf);
    };
    const onEnd = (): void => {
      done();
      resolve(undefined);
    };
    const onClose = (): void => {
      done();
      reject(socket.errored ?? new Error('the backend connection closed'));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    socket.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onError);
    socket.resume();
  });
}

export interface WireRequest {
  /** http://host:port/base/ */
  baseUrl: string;
  backendId: string;
  method: string;
  /** Path under the base, already encoded. */
  path: string;
  headers: HeaderBag;
  body: Buffer;
  timeoutMs: number;
}

/**
 * Sends one request on a connection of its own and resolves with the answer's
 * head. A connection refused (or reset before it opened) is a
 * BackendUnavailableError with nothing sent; after it opened, `bytesSent`.
 */
export function sendWire(q: WireRequest, started: () => void): Promise<WireAnswer> {
  const url = new URL(q.path, q.baseUrl);
  return new Promise((resolve, reject) => {
    let connected = false;
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80), noDelay: true });
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err instanceof BackendProtocolError ? err : new BackendUnavailableError(`backend ${q.backendId} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, q.backendId, { cause: err, bytesSent: connected }));
    };
    socket.setTimeout(q.timeoutMs, () => socket.destroy(new Error('the backend sent nothing within the timeout')));
    // Reported through the iterator (once answering) or `fail` (before): never an unhandled 'error' event.
    socket.on('error', () => {});
    socket.once('connect', () => {
      connected = true;
      started();
      q.headers.setHeader('host', url.host);
      q.headers.setHeader('content-length', String(q.body.length));
      q.headers.removeHeader('transfer-encoding');
      const head = `${q.method} ${url.pathname}${url.search} HTTP/1.1\r\n${q.headers.lines()}\r\n`;
      socket.write(Buffer.concat([Buffer.from(head, 'latin1'), q.body]));
      readHead(socket, q.backendId).then(({ head, rest }) => {
        try {
          resolve(new WireAnswer(socket, head, rest, q.backendId));
        } catch (err) {
          fail(err as Error);
        }
      }, fail);
    });
    socket.once('close', () => {
      if (!connected) fail(new BackendUnavailableError(`backend ${q.backendId} refused the connection`, q.backendId));
    });
    socket.once('error', (err) => {
      if (!connected) fail(err);
    });
  });
}

/** Reads the status line and headers (RFC 9112 4, 5), skipping interim 1xx answers; `rest`: the body bytes read with them. */
async function readHead(socket: Socket, backendId: string): Promise<{ head: { status: number; headers: IncomingHttpHeaders }; rest: Buffer | undefined }> {
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    let end = buf.indexOf('\r\n\r\n');
    while (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) throw new BackendProtocolError(`backend ${backendId} sent a head over ${MAX_HEAD_BYTES} bytes`);
      const r = await readOnce(socket);
      if (r === undefined) throw new BackendUnavailableError(`backend ${backendId} closed the connection before answering`, backendId, { bytesSent: true });
      buf = buf.length === 0 ? r : Buffer.concat([buf, r]);
      end = buf.indexOf('\r\n\r\n');
    }
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (!m) throw new BackendProtocolError(`backend ${backendId} answered something that is not HTTP/1.1`);
    const status = Number(m[1]);
    const rest = buf.subarray(end + 4);
    if (status >= 100 && status < 200) {
      if (status === 101) throw new BackendProtocolError(`backend ${backendId} switched protocols`);
      buf = rest;
      continue;
    }
    const headers: IncomingHttpHeaders = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0 || line.startsWith(' ') || line.startsWith('\t')) throw new BackendProtocolError(`backend ${backendId} sent a malformed header line`);
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      const prev = headers[name];
      if (name === 'set-cookie') headers[name] = [...((prev as string[] | undefined) ?? []), value];
      else if (name === 'content-length' && prev !== undefined && prev !== value) throw new BackendProtocolError(`backend ${backendId} sent two different Content-Length headers`);
      else headers[name] = prev === undefined || name === 'content-length' ? value : `${prev as string}, ${value}`;
    }
    return { head: { status, headers }, rest: rest.length > 0 ? rest : undefined };
  }
}
