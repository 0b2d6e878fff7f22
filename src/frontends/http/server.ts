import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Cluster, ReadRoute } from '../../cluster/cluster.js';
import type { Config } from '../../config/schema.js';
import { BackendProtocolError, BackendUnavailableError, RepositoryNotFoundError } from '../../errors.js';
import { encodePkt } from '../../protocol/pkt-line.js';
import { classifyHttpRequest, type HttpGitRequest } from '../../protocol/request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { Forwarder, hasHttp } from './forward.js';
import { handleReceivePack } from './receive-pack.js';
import { repositoryUrlPath } from '../../protocol/repository-name.js';

export interface HttpFrontend {
  server: Server;
  close(): Promise<void>;
}

/** Response headers of a backend that the client sees (the rest describe the backend's hop). */
const PASSED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'expires', 'pragma', 'content-encoding', 'www-authenticate', 'content-length'];

/**
 * The smart-HTTP front end (gitprotocol-http): classifies each request, asks
 * the cluster where it goes, and streams bytes both ways. It knows nothing of
 * versions; the cluster knows nothing of HTTP.
 */
export function createHttpFrontend(config: Config, cluster: Cluster, log: Logger): HttpFrontend {
  const forwarder = new Forwarder({ timeoutMs: 10 * 60_000 });
  const server = createServer((req, res) => {
    const started = performance.now();
    const rlog = log.child({ req: randomBytes(6).toString('hex') });
    const observe = (service: unknown, outcome: unknown, bytes: unknown): void =>
      cluster.observer.request({ transport: 'http', service: typeof service === 'string' ? service : 'none', outcome: String(outcome ?? 'unknown'), seconds: (performance.now() - started) / 1000, bytes: Number(bytes ?? 0) });
    handle(req, res, rlog).then(
      (fields) => {
        rlog.info({ method: req.method, ...fields, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
        observe(fields.service, fields.outcome, fields.bytes);
      },
      (err: unknown) => {
        const e = toClientError(err);
        const git = requestFields(req);
        rlog[e.level]({ method: req.method, url: safeUrl(req), ...git, user: basicUser(req.headers.authorization), outcome: e.code, code: e.code, bytes: 0, ms: Math.round(performance.now() - started), err: describeForLog(err) }, 'request failed');
        observe(git.service, e.code, 0);
        if (!res.headersSent) {
          const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' };
          if (e.retryAfter) headers['retry-after'] = String(e.retryAfter);
          res.writeHead(e.httpStatus, headers);
          res.end(`githa: ${e.message}\n`);
        } else {
          res.destroy();
        }
      },
    );
  });
  server.headersTimeout = config.http.headersTimeoutMs;
  server.keepAliveTimeout = config.http.keepAliveTimeoutMs;
  server.requestTimeout = 0; // a clone of a big repository may take hours

  async function handle(req: IncomingMessage, res: ServerResponse, rlog: Logger): Promise<Record<string, unknown>> {
    // The body is forwarded only once a backend is connected; node must not
    // answer `100 Continue` on the backend's behalf through http-proxy.
    delete req.headers.expect;
    const git = classifyHttpRequest(req.method ?? '', req.url ?? '/');
    const user = basicUser(req.headers.authorization);
    const fields = { repo: git.repo, service: git.service, kind: git.kind, user };
    if (git.kind === 'rpc' && git.service === 'git-receive-pack') {
      const r = await handleReceivePack({ req, res, repo: git.repo, user, cluster, forwarder, log: rlog, maxCommands: config.http.maxCommands });
      return { ...fields, ...r };
    }
    const route =
      git.kind === 'advertisement' && git.service === 'git-receive-pack'
        ? await cluster.routeWriteAdvertisement(git.repo, hasHttp)
        : await cluster.routeRead(git.repo, hasHttp);
    try {
      const r = await proxyRead(req, res, git, route);
      return { ...fields, ...r };
    } catch (err) {
      // An upload-pack POST cannot carry a text/plain error to the user; an ERR
      // packet can ("fatal: remote error: …", gitprotocol-pack).
      if (git.kind === 'rpc' && !res.headersSent) {
        const e = toClientError(err);
        rlog[e.level]({ ...fields, code: e.code, err: describeForLog(err) }, 'read refused');
        res.writeHead(200, { 'content-type': `application/x-${git.service}-result`, 'cache-control': 'no-cache' });
        res.end(encodePkt(`ERR githa: ${e.message}\n`));
        return { ...fields, outcome: e.code, bytes: 0 };
      }
      throw err;
    }
  }

  /** Streams a read from the first candidate that answers; others are tried while nothing reached the client. */
  async function proxyRead(req: IncomingMessage, res: ServerResponse, git: HttpGitRequest, route: ReadRoute): Promise<Record<string, unknown>> {
    const path =
      git.kind === 'advertisement' ? `${repositoryUrlPath(git.repo)}/info/refs?service=${git.service}` : `${repositoryUrlPath(git.repo)}/${git.service}`;
    const body = git.kind === 'rpc' ? req : undefined;
    // Built only when every candidate failed: a read that succeeds allocates no error.
    let lastError: Error | undefined;
    for (const backend of route.candidates) {
      if (!backend.http) continue;
      let fwd;
      try {
        fwd = await forwarder.send(req, res, { baseUrl: backend.http, backendId: backend.id, path, body });
      } catch (err) {
        if (err instanceof BackendUnavailableError && !err.bytesSent) {
          cluster.health.markDown(backend.id);
          lastError = err;
          continue;
        }
        throw err;
      }
      const status = fwd.res.statusCode ?? 502;
      if (status !== 200) {
        fwd.res.resume();
        if (status === 404) lastError = new RepositoryNotFoundError(`repository ${git.repo} not found on ${backend.id}`);
        else lastError = new BackendProtocolError(`backend ${backend.id} answered HTTP ${status}`);
        if (status === 401 || status === 403) {
          // The backend's own authentication decides (passthrough): show its answer.
          res.writeHead(status, pick(fwd.res.headers));
          res.end(`githa: backend refused: HTTP ${status}\n`);
          return { backend: backend.id, outcome: `backend-${status}`, bytes: 0 };
        }
        if (fwd.bodyStarted()) throw lastError;
        if (status >= 500) cluster.health.markDown(backend.id);
        continue;
      }
      cluster.health.markUp(backend.id);
      res.writeHead(200, pick(fwd.res.headers));
      let bytes = 0;
      fwd.res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('close', () => {
        if (!res.writableFinished) fwd.upstream.destroy();
      });
      await pipeline(fwd.res, res);
      return { backend: backend.id, version: route.version, bytes, outcome: 'ok' };
    }
    // Every leader refused the connection: name them and the way out (design: "Loss of leaders").
    throw lastError === undefined || lastError instanceof BackendUnavailableError ? cluster.unreachable(route) : lastError;
  }

  return {
    server,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Requests still running after a grace period are cut: a stop must not hang on a stalled client.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      forwarder.close();
    },
  };
}

function pick(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of PASSED_RESPONSE_HEADERS) {
    const v = headers[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}


/** The user name of Basic credentials (never the password); 'anonymous' otherwise. */
export function basicUser(authorization: string | undefined): string {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '');
  if (!m?.[1]) return 'anonymous';
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const name = decoded.split(':', 1)[0] ?? '';
  return /^[\w.@+-]{1,128}$/.test(name) ? name : 'anonymous';
}

/** Repository and service of a request, when it is a Git request at all (for the log line of a failed one). */
function requestFields(req: IncomingMessage): { repo?: string; service?: string } {
  try {
    const git = classifyHttpRequest(req.method ?? '', req.url ?? '/');
    return { repo: git.repo, service: git.service };
  } catch {
    return {};
  }
}

/** The request path without its query string, for logs (queries may carry tokens). */
function safeUrl(req: IncomingMessage): string {
  return (req.url ?? '').split('?')[0]?.slice(0, 300) ?? '';
}
