import { Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import { BackendUnavailableError } from '../../errors.js';
import { cleanBackendRequest, type HeaderEditor } from './headers.js';
import { HeaderBag } from './wire-framing.js';
import { sendWire, type WireAnswer } from './wire.js';

/**
 * One forwarded request to one backend, on http-proxy (which is unmaintained:
 * githa attaches its own error handlers and destroys the upstream request when
 * the client goes away).
 *
 * The request body is held back until the backend's socket is connected, so a
 * backend that refuses the connection has received nothing and the untouched
 * body can be sent to another backend (docs/architecture.md "A read (upload-pack, ls-refs, fetch)" 3).
 */
export interface ForwardAttempt {
  /** Base URL with trailing slash, e.g. http://10.0.0.1/git/ */
  baseUrl: string;
  backendId: string;
  /** Path under the base, already encoded: `team/app.git/info/refs?service=git-upload-pack` */
  path: string;
  /** The body to send (the client's request, or a transformed stream); none for GET. */
  body?: Readable | undefined;
  /** Header edits before the request leaves (e.g. drop Content-Encoding after inflating). */
  editHeaders?: ((proxyReq: ClientRequest) => void) | undefined;
  /**
   * Send on a new connection rather than a kept-alive one. For a push this
   * matters: a kept-alive connection that the backend closes at the moment
   * githa reuses it would look like a push that reached the backend, and
   * freeze the repository.
   */
  freshConnection?: boolean;
  /**
   * Stops the request: aborted before the backend answered, the body and the
   * upstream request are destroyed with the signal's reason (a push cut for
   * its pace, src/frontends/push-pace.ts), and the call rejects.
   */
  signal?: AbortSignal | undefined;
}

export interface ForwardedResponse {
  res: IncomingMessage;
  /** The upstream request, to destroy when the client goes away. */
  upstream: ClientRequest;
  /** Whether any body byte was handed to the backend. */
  bodyStarted(): boolean;
}

/** A request with a held body, sent through githa's own HTTP/1.1 client (src/frontends/http/wire.ts). */
export interface WireAttempt {
  baseUrl: string;
  backendId: string;
  path: string;
  body: Buffer;
  editHeaders?: ((headers: HeaderEditor) => void) | undefined;
}

export interface WireForward {
  answer: WireAnswer;
  /** Whether any byte of the request was handed to the backend. */
  bodyStarted(): boolean;
}

type Pending = {
  attempt: ForwardAttempt;
  resolve: (r: ForwardedResponse) => void;
  reject: (e: Error) => void;
  /** The body's stand-in handed to http-proxy; the body flows into it once connected. */
  gate: PassThrough;
  upstream?: ClientRequest;
  started: boolean;
};

export class Forwarder {
  private readonly proxy: httpProxy;
  private readonly pending = new WeakMap<IncomingMessage, Pending>();
  private readonly agent: Agent;
  private readonly stripHeaders: readonly string[];
  private readonly timeoutMs: number;

  /** `stripHeaders`: more header names no client may send a backend (auth.http.userHeader), in any spelling (src/frontends/http/headers.ts). */
  constructor(opts: { timeoutMs: number; stripHeaders?: readonly string[] }) {
    this.stripHeaders = opts.stripHeaders ?? [];
    this.timeoutMs = opts.timeoutMs;
    // Idle sockets close after 4 s, before the common server limits (5 s), so a
    // request is rarely sent on a connection the backend is closing.
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: 64, timeout: 4_000 });
    this.proxy = httpProxy.createProxyServer({
      agent: this.agent,
      changeOrigin: true,
      ignorePath: true,
      selfHandleResponse: true,
      // githa sets X-Forwarded-* itself, after removing the client's (cleanBackendRequest); http-proxy's xfwd would append to them.
      xfwd: false,
      proxyTimeout: opts.timeoutMs,
    });
    this.proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req));
    this.proxy.on('proxyRes', (proxyRes, req) => {
      const p = this.pending.get(req);
      if (!p || !p.upstream) return;
      this.pending.delete(req);
      const upstream = p.upstream;
      p.resolve({ res: proxyRes, upstream, bodyStarted: () => p.started });
    });
    // Errors arrive through the per-call callback; this keeps http-proxy from throwing.
    this.proxy.on('error', () => {});
    // When the client's socket is gone, http-proxy reports the failure as
    // 'econnreset' and never calls the callback: settle the call here, or its
    // caller (a push holding the write lock) would wait forever. Never tried on
    // another backend (bytesSent): there is nobody left to answer.
    this.proxy.on('econnreset', (err, req) => {
      const p = this.pending.get(req);
      if (!p) return;
      this.pending.delete(req);
      p.reject(
        new BackendUnavailableError(`the client went away while its request was forwarded to backend ${p.attempt.backendId}`, p.attempt.backendId, {
          cause: err,
          bytesSent: true,
        }),
      );
    });
  }

  /** Sends one request to one backend; resolves with its response head. */
  send(req: IncomingMessage, res: ServerResponse, attempt: ForwardAttempt): Promise<ForwardedResponse> {
    return new Promise((resolve, reject) => {
      const gate = new PassThrough({ highWaterMark: 64 * 1024 });
      // A body that fails (the client went away, bad gzip) destroys the gate with
      // its error; the failure reaches the caller through the upstream request.
      gate.on('error', () => {});
      const signal = attempt.signal;
      const onAbort = (): void => {
        const reason = signal?.reason instanceof Error ? signal.reason : new Error('the request was stopped');
        gate.destroy(reason);
        // Destroying the upstream request settles the call through http-proxy's error callback.
        if (p.upstream) p.upstream.destroy(reason);
        else p.reject(new BackendUnavailableError(`the request to backend ${attempt.backendId} was stopped`, attempt.backendId, { cause: reason, bytesSent: p.started }));
      };
      const settle =
        <T>(fn: (v: T) => void) =>
        (v: T): void => {
          signal?.removeEventListener('abort', onAbort);
          fn(v);
        };
      const p: Pending = { attempt, resolve: settle(resolve), reject: settle(reject), gate, started: false };
      if (signal?.aborted) return p.reject(new BackendUnavailableError(`the request to backend ${attempt.backendId} was stopped`, attempt.backendId));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(req, p);
      this.proxy.web(
        req,
        res,
        {
          target: `${attempt.baseUrl}${attempt.path}`,
          buffer: attempt.body ? gate : endedStream(),
          // http-proxy hands `agent` to http.request: false means a connection of its own.
          ...(attempt.freshConnection ? { agent: false as unknown as Agent } : {}),
        },
        (err: Error) => {
          if (this.pending.get(req) === p) this.pending.delete(req);
          const code = (err as NodeJS.ErrnoException).code ?? '';
          p.reject(
            new BackendUnavailableError(`backend ${attempt.backendId} failed: ${code || err.message}`, attempt.backendId, {
              cause: err,
              bytesSent: p.started,
            }),
          );
        },
      );
    });
  }

  /** Whether githa's own client can reach this backend (plain HTTP; an HTTPS backend goes through send()). */
  static wireable(baseUrl: string): boolean {
    return baseUrl.startsWith('http://');
  }

  /**
   * Sends a POST whose body is held (an upload-pack request) through githa's
   * own HTTP/1.1 client, with the headers send() would give it; resolves with
   * the answer's head, its body read as it comes on the wire
   * (docs/architecture.md "The fetch answer's data path").
   */
  sendWire(req: IncomingMessage, attempt: WireAttempt): Promise<WireForward> {
    const headers = new HeaderBag(req.headers);
    cleanBackendRequest(headers, req, this.stripHeaders);
    headers.setHeader('accept-encoding', 'identity');
    attempt.editHeaders?.(headers);
    let started = false;
    const q = { baseUrl: attempt.baseUrl, backendId: attempt.backendId, method: req.method ?? 'POST', path: attempt.path, headers, body: attempt.body, timeoutMs: this.timeoutMs };
    return sendWire(q, () => (started = true)).then((answer) => ({ answer, bodyStarted: () => started }));
  }

  close(): void {
    this.proxy.close();
    this.agent.destroy();
  }

  private onProxyReq(proxyReq: ClientRequest, req: IncomingMessage): void {
    const p = this.pending.get(req);
    if (!p) return;
    p.upstream = proxyReq;
    // Hop-by-hop, identity and forwarding headers of the client go; githa's own are set (docs/security.md "Headers a backend sees").
    cleanBackendRequest(proxyReq, req, this.stripHeaders);
    if (!p.attempt.body) {
      // No body goes (a GET): a framing header left over would make the backend wait for, or misread, bytes that never come.
      proxyReq.removeHeader('content-length');
      proxyReq.removeHeader('transfer-encoding');
    }
    // githa reads what a backend answers (a listing checked against the record, an upload-pack answer's
    // first packet, a push's report: docs/architecture.md "Verified copies"): it asks for it uncompressed,
    // whatever the client accepts (git sends Accept-Encoding with every request; a web server set to gzip would comply).
    proxyReq.setHeader('accept-encoding', 'identity');
    p.attempt.editHeaders?.(proxyReq);
    const body = p.attempt.body;
    const gate = p.gate;
    if (!body) return;
    const start = (): void => {
      if (p.started) return;
      p.started = true;
      // A body that broke off (the client went away, bad gzip), even before it
      // was piped, must not leave the backend waiting for the rest.
      const fail = (): void => {
        if (body.readableEnded) return;
        const err = body.errored ?? new Error('the request body broke off');
        gate.destroy(err);
        proxyReq.destroy(err);
      };
      if (body.destroyed) return fail();
      body.pipe(gate);
      body.once('close', fail);
    };
    const socket = proxyReq.socket;
    if (socket && !socket.connecting) start();
    else socket?.once('connect', start);
  }
}

/** The HTTP front end serves from backends with an HTTP endpoint. */
export function hasHttp(b: { http?: string | undefined }): boolean {
  return Boolean(b.http);
}

function endedStream(): PassThrough {
  const s = new PassThrough();
  s.end();
  return s;
}
