/**
 * Limits on what one client can hold or make githa do, shared by the HTTP and
 * git:// front ends: connections per client address and in all, and the size
 * a gzip request body may inflate to.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform, type Duplex, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import { createGunzip } from 'node:zlib';
import { clientAddress } from '../proxy-listener.js';
import { LimitExceededError, ProtocolSyntaxError, ServerBusyError, TooManyConnectionsError, type GithaError } from '../../errors.js';

export interface ConnectionLimits {
  maxConnectionsPerClient: number;
  maxConnections: number;
}

export type Admission = { ok: true; release: () => void } | { ok: false; error: GithaError };

/**
 * Counts open connections per client address. A connection over a limit is
 * not counted: the front end answers it with a clear refusal (429 / 503 over
 * HTTP, an ERR packet over git://) and closes it.
 *
 * The address is the client's (src/frontends/proxy-listener.ts clientAddress):
 * the one a trusted load balancer's PROXY header names, else the TCP peer's.
 * Behind a balancer that sends no PROXY header every client is the balancer,
 * and maxConnectionsPerClient must be raised to maxConnections.
 */
export class ConnectionLimiter {
  private readonly perClient = new Map<string, number>();
  private total = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  admit(address: string | undefined): Admission {
    const client = clientKey(address);
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.limits.maxConnectionsPerClient) {
      return { ok: false, error: new TooManyConnectionsError(`too many connections from your address (at most ${this.limits.maxConnectionsPerClient}); try again later`) };
    }
    if (this.total >= this.limits.maxConnections) {
      return { ok: false, error: new ServerBusyError('githa is serving as many connections as it may; try again later') };
    }
    this.perClient.set(client, held + 1);
    this.total++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const n = (this.perClient.get(client) ?? 1) - 1;
        if (n <= 0) this.perClient.delete(client);
        else this.perClient.set(client, n);
      },
    };
  }

  /** Open (admitted) connections: in all, and of one address. */
  count(address?: string): number {
    return address === undefined ? this.total : (this.perClient.get(clientKey(address)) ?? 0);
  }
}

/** "::ffff:10.0.0.1" (an IPv4 client on a dual-stack socket) is 10.0.0.1. */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address.toLowerCase();
}

/** Whether a request body is gzip-encoded (git sends `Content-Encoding: gzip` for large fetch requests and pushes). */
export function isGzip(req: IncomingMessage): boolean {
  return /\bgzip\b/i.test(String(req.headers['content-encoding'] ?? ''));
}

/**
 * A gzip request body inflated as it streams, with at most `maxBytes`
 * inflated bytes: past them the stream fails with LimitExceededError (a gzip
 * bomb), and bad gzip fails with ProtocolSyntaxError. Nothing is buffered
 * beyond the streams' own high-water marks.
 */
export function inflateCapped(req: Readable, maxBytes: number): { body: Readable; error: () => GithaError | undefined } {
  let inflated = 0;
  let failure: GithaError | undefined;
  const gunzip = createGunzip();
  const counter = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      inflated += chunk.length;
      if (inflated > maxBytes) {
        fail(new LimitExceededError(`the gzip request body inflates to more than ${maxBytes} bytes`));
        return;
      }
      callback(null, chunk);
    },
  });
  // pipe(), not pipeline(): a failure must not destroy the client's request,
  // whose connection still has to carry githa's answer. The rest of the body
  // is read and dropped instead.
  const fail = (err: GithaError): void => {
    if (failure) return;
    failure = err;
    req.unpipe(gunzip);
    req.resume();
    gunzip.destroy();
    counter.destroy(err);
  };
  gunzip.on('error', (err: NodeJS.ErrnoException) => {
    // zlib's errors (Z_DATA_ERROR, …): the body is not what its Content-Encoding says.
    fail(new ProtocolSyntaxError(`the request body is not valid gzip: ${err.message}`, { cause: err }));
  });
  req.on('error', (err) => counter.destroy(err));
  // The failure reaches the caller through error() and the forwarder (which watches the body's 'close'), not as an event.
  counter.on('error', () => {});
  req.pipe(gunzip).pipe(counter);
  return { body: counter, error: () => failure };
}

export interface HttpGuardOptions extends ConnectionLimits {
  idleTimeoutMs: number;
  headersTimeoutMs: number;
  maxHeaderBytes: number;
}

/**
 * How long a refused connection may take to send the request its refusal
 * answers: git sends it as soon as it is connected. Short, so that refused
 * connections cannot pile up holding file descriptors (docs/security.md
 * "Connections").
 */
const REFUSED_GRACE_MS = 1_000;

/**
 * Connection accounting, the idle timeout, and clear answers to requests that
 * node's HTTP parser refuses before githa sees them (llhttp: a head over
 * maxHeaderSize, Transfer-Encoding together with Content-Length (RFC 9112
 * 6.3: a request smuggling vector), bad framing, a head not complete within
 * headersTimeout).
 *
 * A connection over a limit is still read: its first request is answered by
 * `check()` (429 or 503, `Retry-After`, a text/plain body that git shows as
 * `remote: …`) and the connection closes. Answering before the request was
 * read could reset the connection under the response, and the client would
 * see a bare "connection reset" instead of the reason.
 */
export function guardHttpServer(server: Server, options: HttpGuardOptions, log: Logger): { check(req: IncomingMessage, res: ServerResponse): void; limiter: ConnectionLimiter } {
  const limiter = new ConnectionLimiter(options);
  const refused = new WeakMap<Socket, GithaError>();
  // Node closes a socket idle this long in both directions; any byte either way restarts the clock.
  server.timeout = options.idleTimeoutMs;
  server.on('connection', (socket: Socket) => {
    const admission = limiter.admit(clientAddress(socket));
    if (admission.ok) {
      socket.once('close', admission.release);
      return;
    }
    refused.set(socket, admission.error);
    socket.setTimeout(Math.min(REFUSED_GRACE_MS, options.idleTimeoutMs));
  });
  server.on('clientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: Duplex) => {
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, text, message] = clientErrorAnswer(err, options);
    log.info({ ip: clientAddress(socket), code: err.code, status }, 'malformed HTTP request refused');
    const body = `githa: ${message}\n`;
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncache-control: no-cache\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    // Whatever the client still sends is not read: close for good once the answer is out.
    setTimeout(() => socket.destroy(), 1_000).unref();
  });
  return {
    limiter,
    check(req, res) {
      const error = refused.get(req.socket);
      if (!error) return;
      res.shouldKeepAlive = false;
      throw error;
    },
  };
}

function clientErrorAnswer(err: NodeJS.ErrnoException & { reason?: string }, options: HttpGuardOptions): [number, string, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'Request Header Fields Too Large', `the request head is larger than ${options.maxHeaderBytes} bytes`];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return [408, 'Request Timeout', `no complete request head within ${Math.round(options.headersTimeoutMs / 1000)} s`];
    default: {
      // llhttp's reasons are fixed strings ("Content-Length can't be present with Transfer-Encoding"), never client bytes.
      const reason = String(err.reason ?? err.code ?? 'parse error').replace(/[^\x20-\x7e]/g, '?').slice(0, 120);
      return [400, 'Bad Request', `malformed HTTP request: ${reason}`];
    }
  }
}
