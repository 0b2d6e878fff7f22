import { randomBytes } from 'node:crypto';
import { createServer, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Cluster, ReadRoute } from '../../cluster/cluster.js';
import type { Config } from '../../config/schema.js';
import { BackendAuthRequiredError, BackendProtocolError, BackendUnavailableError, RemoteFatalError, RepositoryNotFoundError } from '../../errors.js';
import { encodePkt } from '../../protocol/pkt-line.js';
import { classifyHttpRequest, type HttpGitRequest } from '../../protocol/request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { Forwarder, hasHttp } from './forward.js';
import { readBackendAnswer, sendBackendAnswer } from './backend-answer.js';
import { handleReceivePack } from './receive-pack.js';
import { HttpAuth, type HttpCaller } from './auth.js';
import { AccessPolicy } from '../../auth/access.js';
import { guardHttpServer, inflateCapped, isGzip } from './limits.js';
import { backendRepositoryName, repositoryUrlPath } from '../../protocol/repository-name.js';

/** Seams for the chaos harness only (startGitha's hooks); never set from configuration or the environment. */
export interface HttpFrontendHooks {
  /** See ReceivePackContext.ackBeforeCommit (src/frontends/http/receive-pack.ts). */
  ackBeforeCommit?: boolean;
}

export interface HttpFrontend {
  server: Server;
  close(): Promise<void>;
}

/** Response headers of a backend that the client sees (the rest describe the backend's hop; Set-Cookie: see HttpAuth.relaysCookies). */
const PASSED_RESPONSE_HEADERS = ['content-type', 'cache-control', 'expires', 'pragma', 'content-encoding', 'www-authenticate', 'content-length'];
const WITH_COOKIES = [...PASSED_RESPONSE_HEADERS, 'set-cookie'];

/**
 * The smart-HTTP front end (gitprotocol-http): classifies each request, asks
 * the cluster where it goes, and streams bytes both ways. It knows nothing of
 * versions; the cluster knows nothing of HTTP.
 */
export function createHttpFrontend(config: Config, cluster: Cluster, log: Logger, hooks: HttpFrontendHooks = {}): HttpFrontend {
  const forwarder = new Forwarder({ timeoutMs: 10 * 60_000 });
  // Who may do what (docs/security.md): checked in handle() before anything touches the cluster.
  const auth = new HttpAuth(config, AccessPolicy.compile(config.access, config.auth.groups, config.auth.anonymousUser), log);
  // maxHeaderSize: a larger head is refused 431 (guardHttpServer's clientError answer); connectionsCheckingInterval: how often headersTimeout is checked.
  const server = createServer({ maxHeaderSize: config.http.maxHeaderBytes, connectionsCheckingInterval: Math.min(30_000, Math.max(250, config.http.headersTimeoutMs / 4)) }, (req, res) => {
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
        rlog[e.level]({ method: req.method, url: safeUrl(req), ...git, user: auth.logUser(req), outcome: e.code, code: e.code, bytes: 0, ms: Math.round(performance.now() - started), err: describeForLog(err) }, 'request failed');
        observe(git.service, e.code, 0);
        if (!res.headersSent) {
          const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' };
          if (e.retryAfter) headers['retry-after'] = String(e.retryAfter);
          // RFC 9110 11.6.1: a 401 carries the challenge; git then asks its credential helper and retries.
          if (e.httpStatus === 401) headers['www-authenticate'] = auth.challenge;
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
  // Connection limits, idle timeout, and clear answers to what node's parser refuses (src/frontends/http/limits.ts).
  const guard = guardHttpServer(server, config.http, log);

  async function handle(req: IncomingMessage, res: ServerResponse, rlog: Logger): Promise<Record<string, unknown>> {
    // The body is forwarded only once a backend is connected; node must not
    // answer `100 Continue` on the backend's behalf through http-proxy.
    delete req.headers.expect;
    guard.check(req, res);
    const git = classifyHttpRequest(req.method ?? '', req.url ?? '/');
    const caller = await auth.identify(req);
    const user = caller.user;
    const fields = { repo: git.repo, service: git.service, kind: git.kind, user };
    // Authorization, from the name alone: no Redis, no lock, no backend yet.
    const denied = auth.denial(caller, git.repo, git.service);
    if (git.kind === 'rpc' && git.service === 'git-receive-pack') {
      // No read access: answered after the command list is read, as a missing repository's push is.
      if (denied && !(denied instanceof RepositoryNotFoundError)) throw denied;
      const r = await handleReceivePack({ lent: auth.lend(req), req, res, repo: git.repo, user, refusal: denied, backendHeaders: (id) => auth.backendHeaders(caller, id), relayCookies: auth.relaysCookies, cluster, forwarder, log: rlog, maxCommands: config.http.maxCommands, maxInflatedBytes: config.http.maxInflatedBytes, ackBeforeCommit: hooks.ackBeforeCommit === true });
      return { ...fields, ...r };
    }
    if (denied) throw denied;
    let route: ReadRoute;
    // Passthrough: the client's credentials go with githa's listing of a repository it has no record of yet (HttpAuth.lend).
    const lent = auth.lend(req);
    try {
      route =
        git.kind === 'advertisement' && git.service === 'git-receive-pack'
          ? await cluster.routeWriteAdvertisement(git.repo, hasHttp, lent)
          : await cluster.routeRead(git.repo, hasHttp, lent);
    } catch (err) {
      if (err instanceof BackendAuthRequiredError && auth.mode !== 'githa' && !res.headersSent) {
        // The backend asked that listing for credentials: the client gets the backend's
        // challenge, as it would directly, and git prompts and retries with credentials,
        // which the next listing borrows (docs/security.md "Authentication").
        rlog.info({ ...fields, backend: err.backendId, status: err.answer.status }, 'backend asks for credentials');
        sendBackendAnswer(res, err.answer);
        return { ...fields, backend: err.backendId, outcome: `backend-${err.answer.status}`, bytes: 0 };
      }
      // A backend's own ERR packet (githa's listing met it): the client sees it as it would directly.
      if (err instanceof RemoteFatalError && !res.headersSent) return sendErrPkt(res, git, rlog, fields, err, err.message);
      throw err;
    }
    try {
      const r = await proxyRead(req, res, git, route, caller);
      return { ...fields, ...r };
    } catch (err) {
      // An upload-pack POST cannot carry a text/plain error to the user; an ERR
      // packet can ("fatal: remote error: …", gitprotocol-pack).
      if (git.kind === 'rpc' && !res.headersSent) return sendErrPkt(res, git, rlog, fields, err, `githa: ${toClientError(err).message}`);
      throw err;
    }
  }

  /**
   * Answers with one `ERR` packet (gitprotocol-pack "Pkt-Line Format"): git
   * prints `fatal: remote error: <message>`, for an advertisement (which it
   * reads with PACKET_READ_DIE_ON_ERR_PACKET) and an RPC result alike.
   */
  function sendErrPkt(res: ServerResponse, git: HttpGitRequest, rlog: Logger, fields: Record<string, unknown>, err: unknown, message: string): Record<string, unknown> {
    const e = toClientError(err);
    rlog[e.level]({ ...fields, code: e.code, ...(err instanceof RemoteFatalError && err.backendId ? { backend: err.backendId } : {}), err: describeForLog(err) }, 'read refused');
    const kind = git.kind === 'rpc' ? 'result' : 'advertisement';
    res.writeHead(200, { 'content-type': `application/x-${git.service}-${kind}`, 'cache-control': 'no-cache' });
    // A backend's words reach the client's terminal: no control characters (ESC sequences) pass.
    // eslint-disable-next-line no-control-regex -- control characters are what is removed
    res.end(encodePkt(`ERR ${message.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 1000)}\n`));
    return { ...fields, outcome: e.code, bytes: 0 };
  }

  /** Streams a read from the first candidate that answers; others are tried while nothing reached the client. */
  async function proxyRead(req: IncomingMessage, res: ServerResponse, git: HttpGitRequest, route: ReadRoute, caller: HttpCaller): Promise<Record<string, unknown>> {
    // `X`, not `X.git`: the backend's git finds X/.git, X or X.git (backendRepositoryName).
    const at = repositoryUrlPath(backendRepositoryName(git.repo));
    const path = git.kind === 'advertisement' ? `${at}/info/refs?service=${git.service}` : `${at}/${git.service}`;
    // A gzip body is inflated here, capped (http.maxInflatedBytes: a gzip bomb), and sent on plain.
    const inflated = git.kind === 'rpc' && isGzip(req) ? inflateCapped(req, config.http.maxInflatedBytes) : undefined;
    const body = git.kind === 'rpc' ? (inflated?.body ?? req) : undefined;
    const editHeaders = inflated
      ? (p: ClientRequest): void => {
          p.removeHeader('content-encoding');
          p.removeHeader('content-length');
        }
      : undefined;
    // Built only when every candidate failed: a read that succeeds allocates no error.
    let lastError: Error | undefined;
    for (const backend of route.candidates) {
      if (!backend.http) continue;
      let fwd;
      try {
        const authHeaders = auth.backendHeaders(caller, backend.id);
        fwd = await forwarder.send(req, res, {
          baseUrl: backend.http,
          backendId: backend.id,
          path,
          body,
          editHeaders: (p) => {
            editHeaders?.(p);
            authHeaders(p);
          },
        });
      } catch (err) {
        // The body failed (too large inflated, not gzip): the client's fault, whatever the backend saw.
        const bodyError = inflated?.error();
        if (bodyError) throw bodyError;
        if (err instanceof BackendUnavailableError && !err.bytesSent) {
          cluster.health.markDown(backend.id);
          lastError = err;
          continue;
        }
        throw err;
      }
      const status = fwd.res.statusCode ?? 502;
      const bodyError = inflated?.error();
      if (bodyError) {
        fwd.res.resume();
        throw bodyError;
      }
      if (status !== 200) {
        if ((status === 401 || status === 403) && auth.mode !== 'githa') {
          // The backend's own authentication decides (passthrough): relay its answer whole,
          // challenge and body, with a length that matches the bytes sent.
          sendBackendAnswer(res, await readBackendAnswer(fwd.res, `githa: backend refused: HTTP ${status}\n`, { cookies: auth.relaysCookies }));
          return { backend: backend.id, outcome: `backend-${status}`, bytes: 0 };
        }
        fwd.res.resume();
        if (status === 404) lastError = new RepositoryNotFoundError(`repository ${git.repo} not found on ${backend.id}`);
        else lastError = new BackendProtocolError(`backend ${backend.id} answered HTTP ${status}`);
        if ((status === 401 || status === 403) && auth.mode === 'githa') {
          // githa authenticated the client: a backend refusing githa's service credentials is a backend fault, never the client's challenge.
          lastError = new BackendProtocolError(`backend ${backend.id} refused githa's service credentials (HTTP ${status}); check backends[].httpAuth`);
          continue;
        }
        if (fwd.bodyStarted()) throw lastError;
        if (status >= 500) cluster.health.markDown(backend.id);
        continue;
      }
      cluster.health.markUp(backend.id);
      res.writeHead(200, pick(fwd.res.headers, auth.relaysCookies ? WITH_COOKIES : PASSED_RESPONSE_HEADERS));
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
    // Every leader refused the connection: name them and the way out (docs/operations.md "No reachable leader").
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

function pick(headers: IncomingMessage['headers'], names: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of names) {
    const v = headers[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
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
