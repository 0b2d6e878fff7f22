/**
 * githa as a git:// client of one backend (`git daemon`, gitprotocol-pack
 * "Git Transport"): `git://host[:port][/prefix]`, default port 9418.
 *
 * git daemon serves one request per TCP connection, so every request is a
 * new connection. The request is one pkt-line:
 *
 *   git-upload-pack /<prefix>/<repo without .git>\0host=<host>[:<port>]\0[\0version=2\0]
 *
 * (gitprotocol-v2 "TCP transport": extra parameters after a second NUL). The
 * socket then carries the service's stdin (its write side; end() is a
 * half-close) and stdout (its read side); there is no stderr and no exit
 * status (`exit` resolves with null once the socket closed). A missing or
 * not exported repository is answered with `ERR …` and a closed connection.
 * Pushes need `git daemon --enable=receive-pack`.
 */
import { connect, type Socket } from 'node:net';
import { BackendUnavailableError } from '../errors.js';
import { encodePkt } from '../protocol/pkt-line.js';
import { backendRepositoryName } from '../protocol/repository-name.js';
import { tcpGreeting } from './probe.js';
import { StreamGitClient } from './stream-client.js';
import type { BackendStream, OpenServiceOptions, StreamService } from './types.js';

export interface GitDaemonBackendOptions {
  id: string;
  /** `git://host[:port][/prefix]`. */
  url: string;
  /** Longest wait at any one point: connect, each answer, each write, the close. */
  timeoutMs: number;
}

export interface GitDaemonUrl {
  /** Host to connect to (IPv6 without brackets). */
  host: string;
  port: number;
  /** The `host=` parameter: the host as written, with the port when the URL has one. */
  hostParam: string;
  /** The path prefix without a trailing slash: '' or '/prefix'. */
  prefix: string;
}

/** Parses `git://host[:port][/prefix]` (no user, query or fragment). */
export function parseGitDaemonUrl(raw: string): GitDaemonUrl {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`invalid git:// backend URL ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'git:') throw new TypeError(`git daemon backend URL must start with git://, got ${JSON.stringify(raw)}`);
  if (url.username !== '' || url.password !== '') throw new TypeError('git:// backend URL must not contain a user');
  if (url.search !== '' || url.hash !== '') throw new TypeError('git:// backend URL must not have a query or fragment');
  if (url.hostname === '') throw new TypeError(`git:// backend URL without a host: ${JSON.stringify(raw)}`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 9418 : Number(url.port);
  const prefix = decodeURIComponent(url.pathname).replace(/\/+$/, '');
  if (/[\0\n\r]/.test(prefix)) throw new TypeError('git:// backend path contains a control character');
  return { host, port, hostParam: url.port === '' ? url.hostname : `${url.hostname}:${url.port}`, prefix };
}

/**
 * The first (and only) pkt-line of a git:// request. `protocol` is a
 * GIT_PROTOCOL value (`version=2`, or several `:`-separated parameters).
 */
export function encodeGitDaemonRequest(service: StreamService, path: string, hostParam: string, protocol?: string): Buffer {
  if (/[\0\n]/.test(path) || /[\0\n]/.test(hostParam)) throw new TypeError('NUL or LF in a git:// request');
  let line = `${service} ${path}\0host=${hostParam}\0`;
  const params = (protocol ?? '').split(':').filter((p) => p.length > 0);
  if (params.length > 0) {
    if (params.some((p) => /[\0\n]/.test(p))) throw new TypeError('NUL or LF in a git:// extra parameter');
    line += `\0${params.map((p) => `${p}\0`).join('')}`;
  }
  return encodePkt(line);
}

/** A git daemon backend: see the module comment. */
export class GitDaemonBackendClient extends StreamGitClient {
  readonly transport = 'git' as const;
  readonly target: GitDaemonUrl;
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(opts: GitDaemonBackendOptions) {
    super(opts.id, opts.timeoutMs);
    this.target = parseGitDaemonUrl(opts.url);
  }

  async openService(repo: string, service: StreamService, options: OpenServiceOptions = {}): Promise<BackendStream> {
    if (this.closed) throw new BackendUnavailableError(`backend ${this.id}: the git:// client is closed`, this.id);
    const { host, port, hostParam, prefix } = this.target;
    const request = encodeGitDaemonRequest(service, `${prefix}/${backendRepositoryName(repo)}`, hostParam, options.protocol);
    const signal = options.signal;
    signal?.throwIfAborted();
    const socket = await new Promise<Socket>((resolve, reject) => {
      const sock = connect({ host, port });
      const fail = (err: Error): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        sock.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new BackendUnavailableError(`backend ${this.id}: no git:// connection within ${this.timeoutMs} ms`, this.id)),
        this.timeoutMs,
      );
      const onAbort = (): void => fail(signal?.reason as Error);
      signal?.addEventListener('abort', onAbort, { once: true });
      sock.once('error', (err) =>
        fail(new BackendUnavailableError(`backend ${this.id} is unreachable over git://: ${err.message}`, this.id, { cause: err })),
      );
      sock.once('connect', () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        sock.removeAllListeners('error');
        resolve(sock);
      });
    });
    socket.on('error', () => {}); // surfaced by the session's own listeners
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    this.sockets.add(socket);
    const exit = new Promise<number | null>((resolve) => {
      socket.once('close', () => {
        this.sockets.delete(socket);
        resolve(null);
      });
    });
    socket.write(request);
    return {
      stdin: socket,
      stdout: socket,
      stderr: null,
      exit,
      destroy: () => socket.destroy(),
    };
  }

  /** git daemon speaks only after a request: a completed TCP connect is the liveness check. */
  override async probe(signal?: AbortSignal): Promise<void> {
    await tcpGreeting(this.target.host, this.target.port, { backendId: this.id, what: 'git://', timeoutMs: this.timeoutMs, signal });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}
