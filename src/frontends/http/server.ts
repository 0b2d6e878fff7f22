import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import type { Cluster, ReadRoute } from '../../cluster/cluster.js';
import type { Config } from '../../config/schema.js';
import { BackendAuthRequiredError, PktLineError, ProtocolSyntaxError, RemoteFatalError, UnknownServiceError } from '../../errors.js';
import { encodePkt } from '../../protocol/pkt-line.js';
import { classifyHttpRequest, type HttpGitRequest } from '../../protocol/request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { Forwarder, hasHttp } from './forward.js';
import { sendBackendAnswer } from './backend-answer.js';
import { ReadRelay, type Body } from './read-relay.js';
import { handleReceivePack } from './receive-pack.js';
import { HttpAuth } from './auth.js';
import { AccessPolicy } from '../../auth/access.js';
import { guardHttpServer } from './limits.js';
import { HeldBytes, type RequestBudget } from '../held-bytes.js';
import { clientAddress, listenerFor } from '../proxy-listener.js';

/** Seams for the chaos harness only (startGitha's hooks); never set from configuration or the environment. */
export interface HttpFrontendHooks {
  /** See ReceivePackContext.ackBeforeCommit (src/frontends/http/receive-pack.ts). */
  ackBeforeCommit?: boolean;
}

export interface HttpFrontend {
  server: Server;
  /**
   * What to bind: `server` itself, or with listen.proxyProtocolFrom set a net.Server that reads
   * trusted peers' PROXY headers first and hands each socket on to `server` (src/frontends/proxy-listener.ts).
   */
  listener: NetServer;
  close(): Promise<void>;
}

/**
 * The smart-HTTP front end (gitprotocol-http): classifies each request, asks
 * the cluster where it goes, and streams bytes both ways. It knows nothing of
 * versions; the cluster knows nothing of HTTP.
 */
export function createHttpFrontend(
  config: Config,
  cluster: Cluster,
  log: Logger,
  hooks: HttpFrontendHooks = {},
  // The process's one accountant of held bytes (src/githa.ts shares it with SSH and git://).
  heldBytes = new HeldBytes(config.memory.maxHeldBytes ?? HeldBytes.defaultLimit(), config.memory.maxHeldBytesPerRequest),
): HttpFrontend {
  // A client's own auth.http.userHeader never reaches a backend, in any spelling (src/frontends/http/headers.ts).
  const forwarder = new Forwarder({ timeoutMs: 10 * 60_000, stripHeaders: config.auth.http.userHeader ? [config.auth.http.userHeader] : [] });
  // Who may do what (docs/security.md): checked in handle() before anything touches the cluster.
  const auth = new HttpAuth(config, AccessPolicy.compile(config.access, config.auth.groups, config.auth.anonymousUser), log, cluster.observer);
  // Reads are relayed from a candidate whose answer agrees with the record (src/frontends/http/read-relay.ts).
  const reads = new ReadRelay({ config, cluster, forwarder, auth });
  // maxHeaderSize: a larger head is refused 431 (guardHttpServer's clientError answer); connectionsCheckingInterval: how often headersTimeout is checked.
  const server = createServer({ maxHeaderSize: config.http.maxHeaderBytes, connectionsCheckingInterval: Math.min(30_000, Math.max(250, config.http.headersTimeoutMs / 4)) }, (req, res) => {
    const started = performance.now();
    // ip: the client's address (a trusted balancer's PROXY header's, else the TCP peer's).
    const rlog = log.child({ req: randomBytes(6).toString('hex'), ip: clientAddress(req.socket) });
    const observe = (service: unknown, outcome: unknown, bytes: unknown, backend?: unknown): void =>
      cluster.observer.request({ transport: 'http', service: typeof service === 'string' ? service : 'none', outcome: String(outcome ?? 'unknown'), seconds: (performance.now() - started) / 1000, bytes: Number(bytes ?? 0), backend: typeof backend === 'string' ? backend : undefined });
    // What this request holds (docs/security.md "Memory budgets"), released when it ends.
    let budget: RequestBudget | undefined;
    const opened = (b: RequestBudget): RequestBudget => (budget = b);
    handle(req, res, rlog, opened).finally(() => budget?.release()).then(
      (fields) => {
        rlog.info({ method: req.method, ...fields, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
        observe(fields.service, fields.outcome, fields.bytes, fields.backend);
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

  async function handle(req: IncomingMessage, res: ServerResponse, rlog: Logger, opened: (b: RequestBudget) => RequestBudget): Promise<Record<string, unknown>> {
    // The body is forwarded only once a backend is connected; node must not
    // answer `100 Continue` on the backend's behalf through http-proxy.
    delete req.headers.expect;
    guard.check(req, res);
    // New work is refused (503) while the process holds all it may (src/frontends/held-bytes.ts).
    const budget = opened(heldBytes.open());
    const git = classifyHttpRequest(req.method ?? '', req.url ?? '/');
    // git http-backend serves upload-pack and receive-pack only (it answers anything else 403, which githa would
    // take for a refusal of its service credentials); git itself runs upload-archive over SSH and git:// only.
    if (git.service === 'git-upload-archive') throw new UnknownServiceError('git-upload-archive is not served over HTTP (git http-backend does not offer it); use SSH or git://');
    // A listing is a GET without a body (gitprotocol-http): one that declares a body is refused, so that no
    // backend is sent a length with no bytes, or bytes it would read as the next request.
    if (git.kind === 'advertisement' && declaresBody(req)) throw new ProtocolSyntaxError('a GET request must not have a body (Content-Length or Transfer-Encoding)');
    const caller = await auth.identify(req);
    const user = caller.user;
    const fields = { repo: git.repo, service: git.service, kind: git.kind, user };
    // Authorization, from the name alone: no Redis, no lock, no backend yet.
    const denied = auth.denial(caller, git.repo, git.service);
    // Refused before the body is read (docs/security.md "Memory budgets"): a caller without access
    // makes githa hold nothing. The answer rests on the name alone, so it says nothing of the repository.
    if (denied) throw denied;
    if (git.kind === 'rpc' && git.service === 'git-receive-pack') {
      const r = await handleReceivePack({ lent: auth.lend(req), req, res, repo: git.repo, user, unverified: auth.mode === 'passthrough', budget, backendHeaders: (id) => auth.backendHeaders(caller, id), relayCookies: auth.relaysCookies, cluster, forwarder, log: rlog, maxCommands: config.http.maxCommands, maxInflatedBytes: config.http.maxInflatedBytes, ackBeforeCommit: hooks.ackBeforeCommit === true });
      return { ...fields, ...r };
    }
    // An upload-pack request's body is read (held up to read.maxReplayBodyBytes) and its framing checked before routing.
    let body: Body = { kind: 'none' };
    if (git.kind === 'rpc') {
      try {
        body = await reads.requestBody(req, budget);
      } catch (err) {
        // A broken pkt-line is a 400 like any malformed request (docs/security.md); a body over a limit (a gzip bomb) is
        // told to git in an ERR packet, which it shows (an RPC's text/plain answer it does not).
        if (err instanceof PktLineError || res.headersSent) throw err;
        return sendErrPkt(res, git, rlog, fields, err, `githa: ${toClientError(err).message}`);
      }
    }
    let route: ReadRoute;
    // Passthrough: the client's credentials go with githa's listing of a repository it has no record of yet (HttpAuth.lend).
    const lent = auth.lend(req);
    const routeIt = (): Promise<ReadRoute> =>
      git.kind === 'advertisement' && git.service === 'git-receive-pack' ? cluster.routeWriteAdvertisement(git.repo, hasHttp, lent, auth.mode === 'passthrough' ? undefined : user) : cluster.routeRead(git.repo, hasHttp, lent);
    try {
      route = await routeIt();
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
      const r = await reads.relay(req, res, git, route, caller, rlog, routeIt, body, budget);
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

  const listener = listenerFor(server, { trusted: config.listen.proxyProtocolFrom }, log);
  return {
    server,
    listener,
    async close() {
      if (listener !== server) await new Promise<void>((resolve) => listener.close(() => resolve()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Requests still running after a grace period are cut: a stop must not hang on a stalled client.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
      forwarder.close();
      await auth.close();
    },
  };
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

/** Whether a request says it has a body: a Transfer-Encoding, or a Content-Length other than 0. */
function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && Number(length) !== 0);
}

/** The request path without its query string, for logs (queries may carry tokens). */
function safeUrl(req: IncomingMessage): string {
  return (req.url ?? '').split('?')[0]?.slice(0, 300) ?? '';
}
