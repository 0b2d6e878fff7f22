import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Cluster, ReadRoute } from '../../cluster/cluster.js';
import type { Config } from '../../config/schema.js';
import { BackendAuthRequiredError, RemoteFatalError, RepositoryNotFoundError } from '../../errors.js';
import { encodePkt } from '../../protocol/pkt-line.js';
import { classifyHttpRequest, type HttpGitRequest } from '../../protocol/request.js';
import { describeForLog, toClientError } from '../error-map.js';
import { Forwarder, hasHttp } from './forward.js';
import { sendBackendAnswer } from './backend-answer.js';
import { ReadRelay } from './read-relay.js';
import { handleReceivePack } from './receive-pack.js';
import { HttpAuth } from './auth.js';
import { AccessPolicy } from '../../auth/access.js';
import { guardHttpServer } from './limits.js';

/** Seams for the chaos harness only (startGitha's hooks); never set from configuration or the environment. */
export interface HttpFrontendHooks {
  /** See ReceivePackContext.ackBeforeCommit (src/frontends/http/receive-pack.ts). */
  ackBeforeCommit?: boolean;
}

export interface HttpFrontend {
  server: Server;
  close(): Promise<void>;
}

/**
 * The smart-HTTP front end (gitprotocol-http): classifies each request, asks
 * the cluster where it goes, and streams bytes both ways. It knows nothing of
 * versions; the cluster knows nothing of HTTP.
 */
export function createHttpFrontend(config: Config, cluster: Cluster, log: Logger, hooks: HttpFrontendHooks = {}): HttpFrontend {
  const forwarder = new Forwarder({ timeoutMs: 10 * 60_000 });
  // Who may do what (docs/security.md): checked in handle() before anything touches the cluster.
  const auth = new HttpAuth(config, AccessPolicy.compile(config.access, config.auth.groups, config.auth.anonymousUser), log, cluster.observer);
  // Reads are relayed from a candidate whose answer agrees with the record (src/frontends/http/read-relay.ts).
  const reads = new ReadRelay({ config, cluster, forwarder, auth });
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
      const r = await handleReceivePack({ lent: auth.lend(req), req, res, repo: git.repo, user, unverified: auth.mode === 'passthrough', refusal: denied, backendHeaders: (id) => auth.backendHeaders(caller, id), relayCookies: auth.relaysCookies, cluster, forwarder, log: rlog, maxCommands: config.http.maxCommands, maxInflatedBytes: config.http.maxInflatedBytes, ackBeforeCommit: hooks.ackBeforeCommit === true });
      return { ...fields, ...r };
    }
    if (denied) throw denied;
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
      const r = await reads.relay(req, res, git, route, caller, rlog, routeIt);
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

/** The request path without its query string, for logs (queries may carry tokens). */
function safeUrl(req: IncomingMessage): string {
  return (req.url ?? '').split('?')[0]?.slice(0, 300) ?? '';
}
