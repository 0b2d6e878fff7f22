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
import { type IncomingHttpHeaders, validateHeaderName, validateHeaderValue } from 'node:http';
import { Readable } from 'node:stream';
import { BackendProtocolError, BackendUnavailableError } from '../../errors.js';

/** A backend's head larger than this is refused (Node's own client allows 16 KB). */
const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk-size line or trailer line longer than this is not HTTP (RFC 9112 7.1). */
const MAX_LINE_BYTES = 4096;

/** Request headers being edited before they go: the part of ClientRequest that githa's header edits use. */
export class HeaderBag {
  private readonly map = new Map<string, string | string[]>();

  constructor(initial: IncomingHttpHeaders = {}) {
    for (const [k, v] of Object.entries(initial)) if (v !== undefined) this.setHeader(k, v);
  }

  getHeaderNames(): string[] {
    return [...this.map.keys()];
  }

  getHeader(name: string): string | string[] | undefined {
    return this.map.get(name.toLowerCase());
  }

  /** Validated as node's ClientRequest does (no CR, LF or other control bytes reach the backend's head). */
  setHeader(name: string, value: string | number | readonly string[]): this {
    validateHeaderName(name);
    const v = Array.isArray(value) ? (value as readonly string[]).map(String) : String(value as string | number);
    for (const one of Array.isArray(v) ? v : [v]) validateHeaderValue(name, one);
    this.map.set(name.toLowerCase(), v);
    return this;
  }

  removeHeader(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  /** The header lines, each ended by CRLF. */
  lines(): string {
    let out = '';
    for (const [k, v] of this.map) for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
    return out;
  }
}

/** One socket read of the answer's body: its bytes as received, and the payload slices inside them. */
export interface WirePiece {
  raw: Buffer;
  payload: Buffer[];
}

/** How the body is delimited (RFC 9112 6.3). */
export type Framing = 'chunked' | 'length' | 'close';

/**
 * Finds the payload in a chunked body (RFC 9112 7.1) as it passes, without
 * copying it: the size lines, the CRLF after each chunk and the trailers are
 * read, the data is sliced.
 */
export class ChunkedScanner {
  private state: 'size' | 'data' | 'crlf' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** The payload slices of `buf`, and where the message ended in it (buf.length if it did not). */
  scan(buf: Buffer, payload: Buffer[]): number {
    let i = 0;
    while (i < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.left, buf.length - i);
        payload.push(buf.subarray(i, i + n));
        i += n;
        this.left -= n;
        if (this.left === 0) this.state = 'crlf';
        continue;
      }
      if (this.state === 'crlf') {
        // Exactly CRLF after the data; `line` counts what was seen of it.
        const want = this.line.length === 0 ? 0x0d : 0x0a;
        if (buf[i] !== want) throw new BackendProtocolError('bad chunked framing in a backend answer (no CRLF after a chunk)');
        i++;
        this.line += '.';
        if (this.line.length === 2) {
          this.line = '';
          this.state = 'size';
        }
        continue;
      }
      const lf = buf.indexOf(0x0a, i);
      const end = lf < 0 ? buf.length : lf;
      this.line += buf.toString('latin1', i, end);
      if (this.line.length > MAX_LINE_BYTES) throw new BackendProtocolError('bad chunked framing in a backend answer (a line too long)');
      i = end;
      if (lf < 0) break;
      i++;
      const text = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      if (this.state === 'trailer') {
        if (text === '') this.state = 'done';
        continue;
      }
      const hex = (text.split(';', 1)[0] ?? '').trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new BackendProtocolError('bad chunked framing in a backend answer (a chunk size that is no number)');
      this.left = Number.parseInt(hex, 16);
      this.state = this.left === 0 ? 'trailer' : 'data';
    }
    return i;
  }
}

/** A backend's answer: its head parsed, its body read piece by piece as it came (with backpressure: nothing is read ahead). */
export class WireAnswer {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly framing: Framing;
  private ended = false;
  private readonly chunked: ChunkedScanner | undefined;
  private left: number;

  constructor(
    private readonly socket: Socket,
    private readonly it: AsyncIterator<Buffer>,
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
      const r = await this.it.next();
      if (r.done === true) {
        if (this.framing === 'close') {
          this.finish();
          return undefined;
        }
        throw new BackendProtocolError(`backend ${this.backendId} closed the connection in the middle of its answer`);
      }
      buf = r.value;
    }
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

  private finish(): void {
    this.ended = true;
    // One request per connection: the next one opens its own (nothing is left to read on this one).
    this.socket.destroy();
  }
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
      const it = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      readHead(it, q.backendId).then(({ head, rest }) => {
        try {
          resolve(new WireAnswer(socket, it, head, rest, q.backendId));
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
async function readHead(it: AsyncIterator<Buffer>, backendId: string): Promise<{ head: { status: number; headers: IncomingHttpHeaders }; rest: Buffer | undefined }> {
  let buf: Buffer = Buffer.alloc(0);
  for (;;) {
    let end = buf.indexOf('\r\n\r\n');
    while (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) throw new BackendProtocolError(`backend ${backendId} sent a head over ${MAX_HEAD_BYTES} bytes`);
      const r = await it.next();
      if (r.done === true) throw new BackendUnavailableError(`backend ${backendId} closed the connection before answering`, backendId, { bytesSent: true });
      buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
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
